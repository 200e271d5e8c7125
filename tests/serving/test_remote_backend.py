"""generation_backend=openai: the worker generates through an external OpenAI-compatible server
(here: a second prefloop serving the tiny policy, standing in for vLLM/TGI)."""

from __future__ import annotations

from sqlalchemy import select

from app.config import get_settings
from app.db import session_scope
from app.models import Completion, RunStatus
from app.runs import service as runs
from tests.factories import make_user
from tests.workers.support import add_prompts, get_run, store_tiny
from workers.runner import Worker


def test_worker_generates_through_external_server(live_server, tiny_policy_dir) -> None:  # type: ignore[no-untyped-def]
    vid, name = store_tiny(tiny_policy_dir)
    token = make_user("svc", "researcher")
    settings = get_settings().model_copy(
        update={
            "generation_backend": "openai",
            "generation_base_url": live_server.url + "/v1",
            "generation_api_key": token,
        }
    )
    add_prompts(2)
    with session_scope() as s:
        params = {"prompts": 2, "max_new_tokens": 12, "temperature": 1.0, "seed": 5}
        rid = runs.create_run(s, "generate", params, None).id
    assert Worker(worker_id="t", settings=settings, fill_queue=False).tick()
    run = get_run(rid)
    assert run.status == RunStatus.succeeded, run.error
    assert run.metrics["tasks_created"] >= 1
    with session_scope() as s:
        made = s.scalars(select(Completion).where(Completion.source == f"policy:{name}")).all()
    assert made and all(c.model_version_id == vid for c in made)
