"""One rate limit for the whole cluster: the token bucket lives in one Ray actor.

The service limits requests per API key, not per process. :class:`QuotaBucket` (a Ray actor)
holds the pure pacing state of :class:`~labs_env.client.flow_control.FlowControl` for every
worker; each
worker's :class:`~labs_env.AsyncLabsClient` is built with a :class:`SharedFlowControl` as its
``flow_control``, which asks the bucket for a reservation before each request and feeds it the
``X-RateLimit-*`` / ``Retry-After`` headers of each response. So K workers together spread the
key's remaining quota over the window like one client would, and a 429 seen by one worker
pauses all of them.

Cost: a worker batches its traffic to the bucket: the reservations its episodes ask for while
one bucket call is under way go in the next call, and the outcomes of responses are reported
together (fire and forget) a few milliseconds later. The sleep before a paced request happens
in the worker, not in the bucket.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from labs_env.client.flow_control import (
    AsyncFlowControl,
    FlowControl,
    RateLimitSnapshot,
    wait_for_slot,
)

__all__ = ["QuotaBucket", "SharedFlowControl", "quota_headers"]

_KEPT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after")
#: ``(ticket, status or None, quota headers or None)``: how one request ended.
Outcome = tuple[int, int | None, dict[str, str] | None]
# Reservations asked for within this long go in one bucket call: a little latency per request
# for far fewer actor calls (each costs ~0.5 ms of CPU across the processes involved).
_RESERVE_DELAY_S = 0.005
_REPORT_DELAY_S = 0.010  # outcomes reported within this long go in one (fire-and-forget) call


def quota_headers(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """The headers the bucket learns from (lower-cased names), or ``None``."""
    if headers is None:
        return None
    lowered = {name.lower(): value for name, value in headers.items()}
    return {name: lowered[name] for name in _KEPT_HEADERS if name in lowered}


class QuotaBucket:
    """The shared pacing state (run it as an async Ray actor; see :class:`SharedFlowControl`).

    Tickets are owned by a worker incarnation (``owner``): when a worker dies, the driver calls
    :meth:`release` so its unanswered requests stop counting as in flight.

    Args:
        probe_in_flight, burst, max_block: as for
            :class:`~labs_env.client.flow_control.FlowControl`.
    """

    def __init__(self, *, probe_in_flight: int = 4, burst: int = 4, max_block: float = 60.0):
        self._gate = AsyncFlowControl(
            FlowControl(probe_in_flight=probe_in_flight, burst=burst, max_block=max_block)
        )
        self._owners: dict[int, str] = {}
        self._counts = {"requests": 0, "responses": 0, "rate_limited": 0, "released": 0}

    async def reserve(
        self, owner: str, count: int = 1
    ) -> tuple[list[tuple[int, float]], RateLimitSnapshot]:
        """Up to ``count`` reservations ``(ticket, delay)``: waits for the first while the
        bucket says so, then takes only what is available at once."""
        granted = [await self._gate.reserve()]
        while len(granted) < count:
            more = self._gate.core.reserve(time.time())
            if more is None:
                break
            granted.append(more)
        for ticket, _ in granted:
            self._owners[ticket] = owner
        self._counts["requests"] += len(granted)
        return granted, self._gate.snapshot()

    async def finish(self, outcomes: list[Outcome]) -> None:
        """How requests ended (``status=None``: no response). Unknown tickets are ignored
        (e.g. issued before this actor restarted, or released)."""
        for ticket, status, headers in outcomes:
            if self._owners.pop(ticket, None) is None:
                continue
            if status is not None:
                self._counts["responses"] += 1
                self._counts["rate_limited"] += status == 429
            self._gate.finish(ticket, status, headers)

    async def release(self, owner: str) -> int:
        """Drop every outstanding ticket of a lost worker; returns how many."""
        tickets = [ticket for ticket, who in self._owners.items() if who == owner]
        await self.finish([(ticket, None, None) for ticket in tickets])
        self._counts["released"] += len(tickets)
        return len(tickets)

    async def snapshot(self) -> RateLimitSnapshot:
        """The quota as the bucket sees it."""
        return self._gate.snapshot()

    async def counts(self) -> dict[str, int]:
        """Requests reserved, responses seen, 429s seen, tickets released."""
        return dict(self._counts)


class SharedFlowControl:
    """The client-side gate over a :class:`QuotaBucket` actor (an ``AsyncFlowGate``).

    Use it on one event loop (the worker's).

    Args:
        bucket: the bucket's Ray actor handle.
        owner: this worker incarnation's id (see :meth:`QuotaBucket.release`).
    """

    def __init__(self, bucket: Any, owner: str) -> None:
        self._bucket = bucket
        self._owner = owner
        self._snapshot = RateLimitSnapshot(None, None, None)
        self._wanted: collections.deque[asyncio.Future[tuple[int, float]]] = collections.deque()
        self._reserving: asyncio.Task[None] | None = None
        self._outcomes: list[Outcome] = []
        self._report_due = False

    async def acquire(self) -> int:
        """Wait for the bucket's permission to send; returns the ticket."""
        loop = asyncio.get_running_loop()
        wanted: asyncio.Future[tuple[int, float]] = loop.create_future()
        self._wanted.append(wanted)
        if self._reserving is None:
            self._reserving = loop.create_task(self._reserve())
        try:
            ticket, delay = await wanted
        except asyncio.CancelledError:
            if wanted.done() and not wanted.cancelled() and wanted.exception() is None:
                self.finish(wanted.result()[0], None, None)  # granted, then given up
            raise
        return await wait_for_slot(self, ticket, delay)

    async def _reserve(self) -> None:
        """Ask the bucket for what the waiting callers want, one call at a time (callers that
        arrive while a call is under way go in the next: fewer, fuller calls)."""
        try:
            while True:
                await asyncio.sleep(_RESERVE_DELAY_S)  # callers arriving meanwhile join
                while self._wanted and self._wanted[0].done():
                    self._wanted.popleft()  # cancelled while waiting
                if not self._wanted:
                    return
                count = sum(1 for waiter in self._wanted if not waiter.done())
                granted, self._snapshot = await self._bucket.reserve.remote(self._owner, count)
                for ticket, delay in granted:
                    while self._wanted and self._wanted[0].done():
                        self._wanted.popleft()
                    if self._wanted:
                        self._wanted.popleft().set_result((ticket, delay))
                    else:
                        self.finish(ticket, None, None)  # nobody wants it any more
        except Exception as exc:  # the bucket is unreachable: fail the waiting requests
            while self._wanted:
                waiter = self._wanted.popleft()
                if not waiter.done():
                    waiter.set_exception(exc)
        finally:
            self._reserving = None

    def finish(self, ticket: int, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Report the outcome to the bucket (batched, fire and forget)."""
        self._outcomes.append(
            (ticket, status if headers is not None else None, quota_headers(headers))
        )
        if self._report_due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._report()
            return
        self._report_due = True
        loop.call_later(_REPORT_DELAY_S, self._report)

    def _report(self) -> Any:
        self._report_due = False
        outcomes, self._outcomes = self._outcomes, []
        return self._bucket.finish.remote(outcomes) if outcomes else None

    async def flush(self) -> None:
        """Stop asking for reservations, report the outcomes not sent yet, and wait until the
        bucket has them (a worker shutting down)."""
        if self._reserving is not None:
            self._reserving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reserving
        pending = self._report()
        if pending is not None:
            await pending

    def snapshot(self) -> RateLimitSnapshot:
        """The quota as of this worker's last reservation."""
        return self._snapshot
