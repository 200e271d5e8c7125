"""Webhooks end to end against a local receiver that verifies Standard Webhooks signatures:
every event from its real source, retries while the receiver is down, the worker's side thread."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db import session_scope
from app.exports.query import ExportFilters
from app.exports.service import export_to_file
from app.models import (
    DeliveryStatus,
    RunKind,
    RunStatus,
    WebhookDelivery,
    WorkerHeartbeat,
    utcnow,
)
from app.models_registry import service as registry
from app.runs import service as runs
from app.webhooks import delivery, service
from app.webhooks.events import EVENTS
from tests.factories import auth, make_tasks, make_user
from tests.serving.support import settings_env
from tests.webhooks.receiver import Receiver
from tests.workers.support import store_tiny
from workers.side import SideThread, webhooks_once


@pytest.fixture
def private_ok() -> Iterator[None]:
    """Receivers on 127.0.0.1 are allowed; failed attempts are retried at once (no waiting)."""
    with settings_env(webhook_allow_private="true", webhook_retry_s="[0, 0]"):
        yield


def endpoint(receiver: Receiver, events: list[str] | None = None) -> int:
    with session_scope() as s:
        created = service.create_endpoint(s, receiver.url, events or list(EVENTS), "test")
        receiver.secret = created.secret
        return created.endpoint.id


def deliveries() -> list[WebhookDelivery]:
    with session_scope() as s:
        rows = list(s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        s.expunge_all()
        return rows


def test_every_event_from_its_source_arrives_signed(
    private_ok, client, tiny_policy_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver().up()
    try:
        endpoint(receiver)
        # run.succeeded and run.failed: finished by a worker
        with session_scope() as s:
            ok = runs.create_run(s, RunKind.reward, {}, None).id
            bad = runs.create_run(s, RunKind.ppo, {}, None).id
        for run_id, status in ((ok, RunStatus.succeeded), (bad, RunStatus.failed)):
            with session_scope() as s:
                runs.claim_next(s, "w1")
            error = None if status == RunStatus.succeeded else "boom"
            with session_scope() as s:
                assert runs.finish(s, run_id, "w1", status, {"loss": 0.5}, error)
        # model.activated twice, then model.rolled_back to the first
        first, v1 = store_tiny(tiny_policy_dir)
        _, v2 = store_tiny(tiny_policy_dir)
        with session_scope() as s:
            registry.activate(s, first, verify_load=False)
        # export.created
        make_tasks(2, k=2)
        alice = make_user("alice")
        for _ in range(2):  # task.completed, found by the scan
            task = client.get("/api/v1/tasks/next", headers=auth(alice)).json()
            body = {"ranking": [[c["id"]] for c in task["candidates"]]}
            url = f"/api/v1/tasks/{task['task_id']}/judgments"
            r = client.post(url, json=body, headers=auth(alice))
            assert r.status_code == 201
        snapshot_id, _ = export_to_file(ExportFilters(), "trl", "jsonl", tmp_path / "x.jsonl")
        # nothing about tasks yet: the labeling transaction queued no webhook
        assert "task.completed" not in {d.event_type for d in deliveries()}
        with session_scope() as s:
            delivery.scan_completed_tasks(s)  # first scan: sets the cursor (settling)
        with session_scope() as s:
            assert delivery.scan_completed_tasks(s, now=utcnow() + timedelta(minutes=1)) == 2
        assert delivery.deliver_due() == 8

        assert receiver.rejected == []
        assert sorted(receiver.types()) == [
            "export.created",
            "model.activated",
            "model.activated",
            "model.rolled_back",
            "run.failed",
            "run.succeeded",
            "task.completed",
            "task.completed",
        ]
        [succeeded] = receiver.of("run.succeeded")
        assert succeeded["body"]["data"]["run_id"] == ok
        assert succeeded["body"]["data"]["metrics"] == {"loss": 0.5}
        assert receiver.of("run.failed")[0]["body"]["data"]["error"] == "boom"
        activated = [m["body"]["data"]["version"] for m in receiver.of("model.activated")]
        assert activated == [v1, v2]
        rolled = receiver.of("model.rolled_back")[0]["body"]["data"]
        assert rolled["version"] == v1 and rolled["previous_version"] == v2
        export = receiver.of("export.created")[0]["body"]["data"]
        assert export["snapshot_id"] == snapshot_id and export["rows"] == 2
        completed = sorted(m["body"]["data"]["task_id"] for m in receiver.of("task.completed"))
        assert len(set(completed)) == 2
        for m in receiver.received:  # Standard Webhooks headers and payload shape
            h = m["headers"]
            assert h["webhook-id"].startswith("msg_") and h["webhook-signature"].startswith("v1,")
            assert abs(int(h["webhook-timestamp"]) - time.time()) < 60
            assert set(m["body"]) == {"type", "timestamp", "data"}
        assert {d.status for d in deliveries()} == {DeliveryStatus.succeeded}
        # a rescan sends nothing twice
        with session_scope() as s:
            assert delivery.scan_completed_tasks(s, now=utcnow() + timedelta(minutes=2)) == 0
        assert delivery.deliver_due() == 0
    finally:
        receiver.down()


def test_a_receiver_that_is_down_gets_it_when_it_comes_back(private_ok) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver()  # not listening yet
    endpoint_id = endpoint(receiver)
    with session_scope() as s:
        assert service.send_test(s, endpoint_id) == 1
    assert delivery.deliver_due() == 1
    [d] = deliveries()
    assert d.status == DeliveryStatus.pending and d.attempts == 1
    assert d.last_status_code is None and "ConnectError" in (d.last_error or "")
    receiver.up()
    try:
        assert delivery.deliver_due() == 1
        [d2] = deliveries()
        assert d2.status == DeliveryStatus.succeeded and d2.attempts == 2 and d2.last_error is None
        [m] = receiver.received
        assert m["headers"]["webhook-id"] == d.msg_id  # the same message id on the retry
        # a receiver answering 5xx is retried too, then given up after the last retry
        receiver.status = 503
        with session_scope() as s:
            service.send_test(s, endpoint_id)
        for attempt in (1, 2, 3):
            assert delivery.deliver_due() == 1
            last = deliveries()[-1]
            assert last.attempts == attempt and last.last_status_code == 503
        assert last.status == DeliveryStatus.failed and last.finished_at is not None
        assert delivery.deliver_due() == 0
    finally:
        receiver.down()


def test_backoff_follows_the_schedule() -> None:
    receiver = Receiver()  # down
    with settings_env(webhook_allow_private="true", webhook_retry_s="[5, 300]"):
        endpoint_id = endpoint(receiver)
        with session_scope() as s:
            service.send_test(s, endpoint_id)
        before = utcnow()
        assert delivery.deliver_due() == 1
        [d] = deliveries()
        wait = (d.next_attempt_at - before).total_seconds()
        assert 4 <= wait <= 6
        assert delivery.deliver_due() == 0  # not due yet


def test_disabled_endpoints_get_nothing_and_private_addresses_are_refused_at_send(
    private_ok,
) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver().up()
    try:
        endpoint_id = endpoint(receiver, ["run.failed"])
        with session_scope() as s:
            run_id = runs.create_run(s, RunKind.generate, {}, None).id
            runs.claim_next(s, "w")
        with session_scope() as s:
            runs.finish(s, run_id, "w", RunStatus.succeeded)  # not subscribed
            service.set_active(s, endpoint_id, False)
            runs.create_run(s, RunKind.generate, {}, None)
            runs.claim_next(s, "w")
        with session_scope() as s:
            runs.finish(s, run_id + 1, "w", RunStatus.failed, error="x")  # endpoint disabled
        assert deliveries() == []
        with session_scope() as s:
            service.set_active(s, endpoint_id, True)
            service.send_test(s, endpoint_id)
        # the setting is switched off after the endpoint was saved: the send is refused
        with settings_env(webhook_allow_private="false", webhook_retry_s="[0]"):
            assert delivery.deliver_due() == 1
        [d] = deliveries()
        assert d.status == DeliveryStatus.pending and "private" in (d.last_error or "")
        assert receiver.received == []
    finally:
        receiver.down()


def test_the_worker_side_thread_delivers_and_heartbeats(private_ok) -> None:  # type: ignore[no-untyped-def]
    from app.config import get_settings

    receiver = Receiver().up()
    try:
        endpoint_id = endpoint(receiver)
        with session_scope() as s:
            service.send_test(s, endpoint_id)
        side = SideThread("host:side-test", get_settings())
        side.start()
        try:
            assert receiver.got.wait(30), "the side thread delivered"
            with session_scope() as s:
                assert s.get(WorkerHeartbeat, "host:side-test") is not None
        finally:
            side.stop()
        with session_scope() as s:  # a clean stop removes the heartbeat row
            assert s.get(WorkerHeartbeat, "host:side-test") is None
        assert receiver.types() == ["webhook.test"]
        assert webhooks_once(get_settings()) == 0
    finally:
        receiver.down()
