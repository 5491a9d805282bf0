"""One rate limit for the whole cluster: the token bucket lives in one Ray actor.

The service limits requests per API key, not per process. :class:`QuotaBucket` (a Ray actor)
holds the pure pacing state of :class:`~labs_env._ratelimit.FlowControl` for every worker; each
worker's :class:`~labs_env.AsyncLabsClient` is built with a :class:`SharedFlowControl` as its
``flow_control``, which asks the bucket for a reservation before each request and feeds it the
``X-RateLimit-*`` / ``Retry-After`` headers of each response. So K workers together spread the
key's remaining quota over the window like one client would, and a 429 seen by one worker
pauses all of them.

Cost: one actor call per request (plus one fire-and-forget report); the sleep before a paced
request happens in the worker, not in the bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labs_env._ratelimit import AsyncFlowControl, FlowControl, RateLimitSnapshot
from labs_env._retry import sleep_async

__all__ = ["QuotaBucket", "SharedFlowControl", "quota_headers"]

_KEPT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after")


def quota_headers(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """The headers the bucket learns from (lower-cased names), or ``None``."""
    if headers is None:
        return None
    lowered = {name.lower(): value for name, value in headers.items()}
    return {name: lowered[name] for name in _KEPT_HEADERS if name in lowered}


class QuotaBucket:
    """The shared pacing state (run it as a Ray actor; see :class:`SharedFlowControl`).

    Tickets are owned by a worker incarnation (``owner``): when a worker dies, the driver calls
    :meth:`release` so its unanswered requests stop counting as in flight.

    Args:
        probe_in_flight, burst, max_block: as for :class:`~labs_env._ratelimit.FlowControl`.
    """

    def __init__(self, *, probe_in_flight: int = 4, burst: int = 4, max_block: float = 60.0):
        self._gate = AsyncFlowControl(
            FlowControl(probe_in_flight=probe_in_flight, burst=burst, max_block=max_block)
        )
        self._owners: dict[int, str] = {}
        self._counts = {"requests": 0, "responses": 0, "rate_limited": 0, "released": 0}

    async def reserve(self, owner: str) -> tuple[int, float, RateLimitSnapshot]:
        """A reservation ``(ticket, delay, snapshot)``; waits while the bucket says so."""
        ticket, delay = await self._gate.reserve()
        self._owners[ticket] = owner
        self._counts["requests"] += 1
        return ticket, delay, self._gate.snapshot()

    async def finish(self, ticket: int, status: int | None, headers: dict[str, str] | None) -> None:
        """How a request ended (``status=None``: no response). Unknown tickets are ignored
        (e.g. issued before this actor restarted, or released)."""
        if self._owners.pop(ticket, None) is None:
            return
        if status is not None:
            self._counts["responses"] += 1
            self._counts["rate_limited"] += status == 429
        self._gate.finish(ticket, status, headers)

    async def release(self, owner: str) -> int:
        """Drop every outstanding ticket of a lost worker; returns how many."""
        tickets = [ticket for ticket, who in self._owners.items() if who == owner]
        for ticket in tickets:
            del self._owners[ticket]
            self._gate.finish(ticket, None, None)
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

    Args:
        bucket: the bucket's Ray actor handle.
        owner: this worker incarnation's id (see :meth:`QuotaBucket.release`).
    """

    def __init__(self, bucket: Any, owner: str) -> None:
        self._bucket = bucket
        self._owner = owner
        self._snapshot = RateLimitSnapshot(None, None, None)

    async def acquire(self) -> int:
        """Wait for the bucket's permission to send; returns the ticket."""
        ticket, delay, self._snapshot = await self._bucket.reserve.remote(self._owner)
        if delay > 0:
            try:
                await sleep_async(delay)
            except BaseException:
                self.finish(ticket, None, None)
                raise
        return int(ticket)

    def finish(self, ticket: int, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Report the outcome to the bucket (fire and forget)."""
        self._bucket.finish.remote(
            ticket, status if headers is not None else None, quota_headers(headers)
        )

    def snapshot(self) -> RateLimitSnapshot:
        """The quota as of this worker's last reservation."""
        return self._snapshot
