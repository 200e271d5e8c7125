"""Admission and fair scheduling for /v1 generation in one web process.

Every request takes a `Ticket` (`GenerationLimiter.admit`): a user may hold at most `per_user`
tickets at once (more: `UserLimited`, HTTP 429), and the process at most `slots + queue`
(more: `QueueFull`, HTTP 503). A ticket runs each generation (one per choice) in a thread once a
slot is free; waiting tickets get slots least-recently-served user first, so one user's burst
waits behind everyone else's next request instead of starving them. A slot is given back when
the generation thread ends, not when the request gives up on it, so the slot count always
matches the work the model is really doing.

`ticket.stop` is a `threading.Event` the generators poll each step: it is set when the client
disconnects (`watch_disconnect`) or the request ends early, and generation stops within a step.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.types import Receive

from app.metrics.process import GEN_QUEUED, GEN_RUNNING, GEN_SECONDS

log = logging.getLogger("prefloop.serving")

T = TypeVar("T")


class Refused(Exception):
    """The request is not admitted now; `retry_after` is a whole number of seconds."""

    status = 503

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class UserLimited(Refused):
    status = 429


class QueueFull(Refused):
    status = 503


class QueueTimeout(Refused):
    status = 503


class ClientGone(Exception):
    """The client disconnected while the request waited or generated."""


class GenerationLimiter:
    """Per-process limits: `slots` generations at once, `per_user` requests in flight per user,
    `queue` more requests waiting, each waiting at most `queue_timeout` seconds for a slot."""

    def __init__(self, slots: int, per_user: int, queue: int, queue_timeout: float) -> None:
        self.slots = max(1, slots)
        self.per_user = max(1, per_user)
        self.queue = max(0, queue)
        self.queue_timeout = queue_timeout
        self._running = 0
        self._waiting: dict[int, deque[asyncio.Future[None]]] = {}
        self._last_served: dict[int, int] = {}
        self._served = 0
        self._in_flight: Counter[int] = Counter()
        self._tickets: set[Ticket] = set()
        self._executor = ThreadPoolExecutor(self.slots, thread_name_prefix="prefloop-generate")
        self.seconds_per_generation = 2.0  # moving average, for Retry-After

    # -- what the metrics and tests read ------------------------------------------------------

    def queued(self) -> int:
        """Generations waiting for a slot right now."""
        return sum(len(q) for q in self._waiting.values())

    def running(self) -> int:
        """Generations holding a slot (their threads are working)."""
        return self._running

    def in_flight(self, user_id: int | None = None) -> int:
        """Admitted requests (running, waiting, or between choices), of one user or all."""
        if user_id is None:
            return sum(self._in_flight.values())
        return self._in_flight[user_id]

    def tickets(self) -> list[Ticket]:
        return list(self._tickets)

    # -- admission ------------------------------------------------------------------------------

    def _publish(self) -> None:
        """This process's queue depth and running generations, for /metrics."""
        GEN_QUEUED.set(self.queued())
        GEN_RUNNING.set(self._running)

    def _retry_after(self, ahead: int) -> int:
        waves = max(1, math.ceil(ahead / self.slots))
        return max(1, min(600, math.ceil(self.seconds_per_generation * waves)))

    def admit(self, user_id: int) -> Ticket:
        """A ticket for one request, or UserLimited / QueueFull."""
        if self._in_flight[user_id] >= self.per_user:
            raise UserLimited(
                f"too many concurrent requests: at most {self.per_user} per user; retry after "
                "one of your requests finishes",
                self._retry_after(1),
            )
        total = sum(self._in_flight.values())
        if total >= self.slots + self.queue:
            raise QueueFull(
                "the server is at capacity (its generation queue is full); retry later",
                self._retry_after(total - self.slots + 1),
            )
        self._in_flight[user_id] += 1
        ticket = Ticket(self, user_id)
        self._tickets.add(ticket)
        return ticket

    def _close(self, ticket: Ticket) -> None:
        if ticket not in self._tickets:
            return
        self._tickets.discard(ticket)
        self._in_flight[ticket.user_id] -= 1
        if self._in_flight[ticket.user_id] <= 0:
            del self._in_flight[ticket.user_id]

    # -- slots ----------------------------------------------------------------------------------

    async def _acquire(self, ticket: Ticket) -> None:
        """Wait for a slot; least recently served user first."""
        if self._running < self.slots and not self._waiting:
            self._grant(ticket.user_id)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(ticket.user_id, deque()).append(waiter)
        self._publish()
        ticket._waiter = waiter
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.queue_timeout)
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release()  # granted just as we gave up: hand the slot on
            else:
                if not waiter.done():
                    waiter.cancel()
                self._forget(ticket.user_id, waiter)
            if isinstance(exc, TimeoutError):
                raise QueueTimeout(
                    f"no generation slot became free within {self.queue_timeout:g} s; retry later",
                    self._retry_after(self.queued() + 1),
                ) from None
            raise
        finally:
            ticket._waiter = None

    def _forget(self, user_id: int, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(user_id)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[user_id]
        self._publish()

    def _grant(self, user_id: int) -> None:
        self._running += 1
        self._served += 1
        self._last_served[user_id] = self._served
        self._publish()

    def _release(self) -> None:
        self._running -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        while self._running < self.slots and self._waiting:
            user_id = min(self._waiting, key=lambda u: self._last_served.get(u, 0))
            queue = self._waiting[user_id]
            waiter = queue.popleft()
            if not queue:
                del self._waiting[user_id]
            if waiter.done():  # given up (timeout or disconnect) after it was queued
                continue
            self._grant(user_id)
            waiter.set_result(None)
        self._publish()
        if len(self._last_served) > 10_000:  # users who are not waiting need no history
            self._last_served = {u: self._last_served.get(u, 0) for u in self._waiting}

    def _finished(self, started: float) -> None:
        elapsed = time.monotonic() - started
        GEN_SECONDS.inc(elapsed)
        self.seconds_per_generation = 0.8 * self.seconds_per_generation + 0.2 * elapsed
        self._release()

    async def _run(self, ticket: Ticket, fn: Callable[..., T], *args: Any) -> T:
        await self._acquire(ticket)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            future: Future[T] = self._executor.submit(fn, *args)
        except BaseException:
            self._release()
            raise

        def done(_: Future[T]) -> None:
            # the slot is handed back when the thread is done, even if the request stopped
            # waiting for it (cancelled, disconnected)
            try:
                loop.call_soon_threadsafe(self._finished, started)
            except RuntimeError:  # the loop is closed: the process is shutting down
                pass

        future.add_done_callback(done)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        for ticket in list(self._tickets):
            ticket.stop.set()
        self._executor.shutdown(wait=False, cancel_futures=True)


class Ticket:
    """One admitted request: run its generations, stop them, give its place back."""

    def __init__(self, limiter: GenerationLimiter, user_id: int) -> None:
        self.limiter = limiter
        self.user_id = user_id
        self.stop = threading.Event()
        self.gone = False
        self._waiter: asyncio.Future[None] | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in a generation thread once a slot is free."""
        if self.gone:
            raise ClientGone()
        return await self.limiter._run(self, fn, *args)

    def disconnected(self) -> None:
        """The client went away: stop generating, stop waiting."""
        self.gone = True
        self._halt()

    def close(self) -> None:
        """The request is over (idempotent); anything still generating or waiting for it stops."""
        self._halt()
        self.limiter._close(self)

    def _halt(self) -> None:
        self.stop.set()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ClientGone())


async def watch_disconnect(receive: Receive, ticket: Ticket) -> None:
    """Wait for the client to disconnect (the request body is already read), then tell the ticket.

    Runs as a task beside the request; cancelled when the response is done."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not ticket.stop.is_set():
                log.info("client of user %s disconnected; stopping its generation", ticket.user_id)
            ticket.disconnected()
            return
