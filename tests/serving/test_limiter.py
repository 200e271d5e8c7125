"""The /v1 generation limiter on its own: fair order, per-user and queue limits, slot accounting.

Generation is a plain function here, held by events, so every ordering is decided by the test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest

from app.serving.limits import (
    ClientGone,
    GenerationLimiter,
    QueueFull,
    QueueTimeout,
    UserLimited,
)

A, B, C = 1, 2, 3


async def until(cond: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Poll the event loop until `cond()` holds (raises after `timeout` seconds)."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.005)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def test_slots_go_to_the_least_recently_served_user() -> None:
    """User A queues a burst of 4; B and C one each: B and C run right after A's first."""

    async def scenario() -> None:
        lim = GenerationLimiter(slots=1, per_user=8, queue=16, queue_timeout=30)
        order: list[str] = []
        hold = threading.Event()

        def work(tag: str) -> str:
            order.append(tag)
            if tag == "A1":
                assert hold.wait(10)
            return tag

        tasks = []
        for user, tag in [(A, "A1"), (A, "A2"), (A, "A3"), (A, "A4"), (B, "B1"), (C, "C1")]:
            ticket = lim.admit(user)
            tasks.append(asyncio.create_task(ticket.run(work, tag)))
            count = len(tasks)
            await until(lambda n=count: lim.running() + lim.queued() == n, "queued")
        assert (lim.running(), lim.queued()) == (1, 5)
        hold.set()
        assert await asyncio.gather(*tasks) == ["A1", "A2", "A3", "A4", "B1", "C1"]
        # one slot: everything ran one after the other, others before A's backlog
        assert order == ["A1", "B1", "C1", "A2", "A3", "A4"]
        assert (lim.running(), lim.queued()) == (0, 0)

    run(scenario)


def test_per_user_limit_is_429_and_full_queue_is_503_with_retry_after() -> None:
    async def scenario() -> None:
        lim = GenerationLimiter(slots=1, per_user=2, queue=1, queue_timeout=30)
        a1, a2 = lim.admit(A), lim.admit(A)
        with pytest.raises(UserLimited) as limited:
            lim.admit(A)
        assert limited.value.status == 429 and limited.value.retry_after >= 1
        with pytest.raises(QueueFull) as full:
            lim.admit(B)  # 1 slot + 1 queued are taken
        assert full.value.status == 503 and full.value.retry_after >= 1
        a1.close()
        b1 = lim.admit(B)  # a place is free again
        assert lim.in_flight(A) == 1 and lim.in_flight(B) == 1
        a1.close()  # idempotent
        assert lim.in_flight() == 2
        a2.close()
        b1.close()
        assert lim.in_flight() == 0 and lim.tickets() == []

    run(scenario)


def test_waiting_too_long_is_a_queue_timeout_and_leaves_the_queue() -> None:
    async def scenario() -> None:
        lim = GenerationLimiter(slots=1, per_user=4, queue=4, queue_timeout=0.2)
        hold = threading.Event()
        first = asyncio.create_task(lim.admit(A).run(hold.wait, 10))
        await until(lambda: lim.running() == 1, "running")
        with pytest.raises(QueueTimeout) as waited:
            await lim.admit(B).run(lambda: "never")
        assert waited.value.status == 503 and waited.value.retry_after >= 1
        assert lim.queued() == 0
        hold.set()
        assert await first is True
        assert lim.running() == 0

    run(scenario)


def test_disconnect_while_queued_leaves_the_queue_and_stops_the_work() -> None:
    async def scenario() -> None:
        lim = GenerationLimiter(slots=1, per_user=4, queue=4, queue_timeout=30)
        hold = threading.Event()
        first = asyncio.create_task(lim.admit(A).run(hold.wait, 10))
        await until(lambda: lim.running() == 1, "running")
        ticket = lim.admit(B)
        waiting = asyncio.create_task(ticket.run(lambda: "never"))
        await until(lambda: lim.queued() == 1, "queued")
        ticket.disconnected()
        with pytest.raises(ClientGone):
            await waiting
        assert lim.queued() == 0 and ticket.stop.is_set()
        hold.set()
        await first

    run(scenario)


def test_a_slot_is_freed_when_the_thread_ends_not_when_the_caller_gives_up() -> None:
    """A cancelled request (client gone) keeps its slot until its generation really stops."""

    async def scenario() -> None:
        lim = GenerationLimiter(slots=1, per_user=4, queue=4, queue_timeout=30)
        ticket = lim.admit(A)

        def generate() -> str:  # like a generator polling its stop event between tokens
            assert ticket.stop.wait(10)
            return "stopped"

        task = asyncio.create_task(ticket.run(generate))
        await until(lambda: lim.running() == 1, "running")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)
        assert lim.running() == 1  # the thread still works: the slot is still taken
        ticket.close()  # sets stop: the thread ends, the slot comes back
        await until(lambda: lim.running() == 0, "slot released")

    run(scenario)
