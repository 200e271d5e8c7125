"""Model store: fresh version directories, registration, atomic verified activation."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from app.config import get_settings
from app.models import ModelKind, ModelStatus, ModelVersion, utcnow
from app.ops.errors import MAX_DB_ID


class RegistryError(ValueError):
    """A model version request that cannot be honoured (shown to the user as is)."""


class VersionNotFound(RegistryError):
    pass


ACTIVATABLE = {ModelStatus.ready, ModelStatus.retired, ModelStatus.active}


def new_version_path(kind: ModelKind | str) -> tuple[str, Path]:
    """A fresh, unused version name and its directory under the store (not created yet)."""
    kind = ModelKind(kind)
    root = get_settings().models_dir
    while True:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        name = f"{kind.value}-{stamp}-{secrets.token_hex(3)}"
        path = root / name
        if not path.exists():
            return name, path.resolve()


def register_version(
    session: Session,
    kind: ModelKind | str,
    path: Path | str,
    status: ModelStatus | str = ModelStatus.ready,
    parent_id: int | None = None,
    base_model: str | None = None,
    metrics: dict[str, Any] | None = None,
    run_id: int | None = None,
    version: str | None = None,
) -> ModelVersion:
    """Record a model directory as a version; its name defaults to the directory name."""
    status = ModelStatus(status)
    if status == ModelStatus.active:
        raise RegistryError("register as ready, then activate() (activation verifies the model)")
    mv = ModelVersion(
        version=version or Path(path).name,
        kind=ModelKind(kind),
        status=status,
        parent_id=parent_id,
        base_model=base_model,
        path=str(path),
        metrics=metrics or {},
        run_id=run_id,
    )
    session.add(mv)
    session.flush()
    return mv


def set_status(
    session: Session, version_id: int, status: ModelStatus | str, metrics: dict | None = None
) -> ModelVersion:
    """Move a version between training/ready/failed (activation goes through activate())."""
    mv = get_version(session, version_id)
    status = ModelStatus(status)
    if status == ModelStatus.active or mv.status == ModelStatus.active:
        raise RegistryError("use activate() to change which version is active")
    mv.status = status
    if metrics:
        mv.metrics = {**(mv.metrics or {}), **metrics}
    session.flush()
    return mv


def get_version(session: Session, ref: int | str) -> ModelVersion:
    """A version by id or by version name."""
    as_id = ref if isinstance(ref, int) else int(ref) if ref.isascii() and ref.isdigit() else None
    if as_id is not None:  # ids are int4: a larger number cannot be one (and overflows the query)
        mv = session.get(ModelVersion, as_id) if 1 <= as_id <= MAX_DB_ID else None
        if mv is None and isinstance(ref, str):
            mv = session.scalar(select(ModelVersion).where(ModelVersion.version == ref))
    else:
        mv = session.scalar(select(ModelVersion).where(ModelVersion.version == ref))
    if mv is None:
        raise VersionNotFound(f"no model version {ref!r}")
    return mv


def active_version(session: Session, kind: ModelKind | str) -> ModelVersion | None:
    """The active version of `kind`, if any."""
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.kind == ModelKind(kind), ModelVersion.status == ModelStatus.active
        )
    )


def list_versions(
    session: Session, kind: ModelKind | str | None = None, limit: int = 200
) -> list[ModelVersion]:
    """Newest first."""
    q = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    if kind:
        q = q.where(ModelVersion.kind == ModelKind(kind))
    return list(session.scalars(q.limit(limit)))


def check_activatable(mv: ModelVersion) -> None:
    """Refuse versions that are not finished or that failed."""
    if mv.status not in ACTIVATABLE:
        raise RegistryError(
            f"version {mv.version} is {mv.status.value}; only ready or retired versions can be "
            "activated"
        )
    if not Path(mv.path).is_dir():
        raise RegistryError(f"version {mv.version}: directory {mv.path} is missing")


def verify(mv: ModelVersion) -> None:
    """Load the version's model and run a forward pass; RegistryError if it does not work."""
    from ml.store import ModelLoadError, verify_loadable

    try:
        verify_loadable(Path(mv.path), mv.kind.value)
    except ModelLoadError as e:
        raise RegistryError(f"version {mv.version} does not load; not activated: {e}") from e


def activate(session: Session, version_id: int | str, verify_load: bool = True) -> ModelVersion:
    """Make a version the active one of its kind; verifies it loads BEFORE the pointer flips.

    The previous active version becomes retired, in the same transaction (the partial unique index
    guarantees one active per kind even under concurrent activations). Pass verify_load=False only
    when the caller has just run verify() itself (e.g. in a thread, off the event loop).
    """
    mv = get_version(session, version_id)
    check_activatable(mv)
    if mv.status == ModelStatus.active:
        return mv
    if verify_load:
        verify(mv)
    previous = active_version(session, mv.kind)
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.kind == mv.kind, ModelVersion.status == ModelStatus.active)
        .values(status=ModelStatus.retired)
        .execution_options(synchronize_session="fetch")
    )
    session.flush()
    mv.status = ModelStatus.active
    mv.activated_at = utcnow()
    session.flush()
    from app.webhooks.events import emit

    # activating a version older than the one it replaces is a rollback
    rolled_back = previous is not None and mv.id < previous.id
    data = {
        "version_id": mv.id,
        "version": mv.version,
        "kind": str(mv.kind),
        "base_model": mv.base_model,
        "run_id": mv.run_id,
        "metrics": mv.metrics or {},
        "previous_version": previous.version if previous is not None else None,
        "activated_at": mv.activated_at.isoformat(),
    }
    emit(session, "model.rolled_back" if rolled_back else "model.activated", data)
    return mv


def record_activation(
    session: Session, actor: Any, mv: ModelVersion, previous_id: int | None, ip: str | None
) -> None:
    """Audit an activation; activating an older version than the one it replaced is a rollback."""
    from app.audit import record

    previous = session.get(ModelVersion, previous_id) if previous_id else None
    details = {
        "kind": mv.kind.value,
        "version_id": mv.id,
        "previous": previous.version if previous else None,
        "rollback": bool(previous and previous.id > mv.id),
    }
    record(session, actor, "model.activate", mv.version, details, ip)


def fail_versions_of_run(session: Session, run_id: int) -> int:
    """Mark versions a run was still writing as failed (they must never become active)."""
    result = cast(
        "CursorResult[Any]",
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.run_id == run_id, ModelVersion.status == ModelStatus.training)
            .values(status=ModelStatus.failed)
            .execution_options(synchronize_session="fetch")
        ),
    )
    return result.rowcount or 0
