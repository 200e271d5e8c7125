"""Read and write the guidelines Markdown (app_settings key "guidelines") and render it safely."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import is_postgres
from app.models import AppSetting, utcnow
from app.ops.errors import check_no_nul

KEY = "guidelines"
MAX_CHARS = 100_000

DEFAULT = """\
*No guidelines have been written yet.* An admin can edit them under **Admin → Guidelines**.

Until then:

- Prefer the answer that is **helpful**, **honest** and **harmless**, in that order of tie-break.
- Judge what was asked: a shorter correct answer beats a longer wrong one.
- Use **Tie** when the answers are equally good, **Both bad** when neither is acceptable.
- Flag answers that are toxic, dangerous or factually wrong, whatever their rank.
- Skip (with a reason) when you cannot judge a task.
"""

# html=False: raw HTML in the Markdown is shown as text; markdown-it also refuses javascript: links
_md = MarkdownIt("commonmark", {"html": False})


@dataclass
class Guidelines:
    markdown: str
    updated_at: datetime | None

    @property
    def html(self) -> Markup:
        """Rendered HTML; safe to embed because the renderer escapes every piece of text."""
        return render(self.markdown or DEFAULT)


def render(markdown: str) -> Markup:
    """Markdown -> HTML with raw HTML disabled."""
    return Markup(_md.render(markdown))


async def get(session: AsyncSession) -> Guidelines:
    """The stored guidelines (empty Markdown when none were saved)."""
    row = await session.scalar(select(AppSetting).where(AppSetting.key == KEY))
    return Guidelines(row.value, row.updated_at) if row else Guidelines("", None)


def audit_details(g: Guidelines) -> dict[str, object]:
    """What the audit trail keeps of an edit: size and digest (the text itself is in the app)."""
    import hashlib

    digest = hashlib.sha256(g.markdown.encode()).hexdigest()
    return {"chars": len(g.markdown), "sha256": digest}


async def save(
    session: AsyncSession, markdown: str, actor: Any = None, ip: str | None = None
) -> Guidelines:
    """Store the guidelines (insert or replace) and record the edit in the audit trail."""
    from app.audit import record

    if len(markdown) > MAX_CHARS:
        raise ValueError(f"guidelines are limited to {MAX_CHARS} characters")
    check_no_nul(markdown, "guidelines")
    now = utcnow()
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    stmt = insert(AppSetting).values(key=KEY, value=markdown, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"], set_={"value": markdown, "updated_at": now}
    )
    await session.execute(stmt)
    saved = Guidelines(markdown, now)
    record(session, actor, "guidelines.edit", "guidelines", audit_details(saved), ip)
    return saved
