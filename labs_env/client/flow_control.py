"""Client-side flow control from the ``X-RateLimit-*`` headers.

:class:`FlowControl` is pure (no clock, no I/O): callers pass ``now`` (epoch seconds). It
hands out *reservations*: a ticket plus the delay after which the request may be sent, so a
caller sleeps outside any lock and never re-checks. Behaviour:

* Probe: until the first response, at most ``probe_in_flight`` requests are in flight.
* Open: responses carry no rate-limit headers; nothing is paced.
* Metered: the estimated remaining quota of the window is spread evenly over the time left
  until the reset (``(reset - now) / remaining`` apart, with a small burst allowance), so the
  quota is used fully without drawing 429s and without bursting then stalling. When the
  window is spent, reservations move into the next window, still spaced, so many waiting
  callers do not stampede at the reset.
* A 429 blocks every caller until its ``Retry-After`` (or the reset).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from labs_env.client.retry import parse_reset, parse_retry_after, sleep_async, sleep_sync

__all__ = [
    "AsyncFlowControl",
    "AsyncFlowGate",
    "FlowControl",
    "RateLimitSnapshot",
    "SyncFlowControl",
    "wait_for_slot",
]

_PROBE, _OPEN, _METERED = 0, 1, 2
_DEFAULT_WINDOW = 60.0  # the documented plans are "per minute"
#: Slots of a new window start this long after its reset: a request sent at the reset instant
#: (timer granularity, scheduling jitter) could reach the server a hair before its window rolls.
_RESET_MARGIN = 0.02


@dataclass(frozen=True)
class RateLimitSnapshot:
    """What the client knows about the key's quota (``None`` until the service reports it).

    Attributes:
        limit: requests allowed per window (``X-RateLimit-Limit``).
        remaining: the client's estimate of requests left in the current window.
        reset_at: Unix epoch seconds when the window resets.
    """

    limit: int | None
    remaining: int | None
    reset_at: float | None


class FlowControl:
    """Pure pacing state shared by all calls of one client (not thread-safe by itself).

    Args:
        probe_in_flight: requests allowed in flight before the first response.
        burst: requests that may skip pacing after idle time (earned at the paced rate).
        max_block: cap on how long a 429 blocks every caller.
    """

    def __init__(
        self, *, probe_in_flight: int = 4, burst: int = 4, max_block: float = 60.0
    ) -> None:
        self._probe_in_flight = max(1, probe_in_flight)
        self._burst = float(max(0, burst))
        self._max_block = max_block
        self._mode = _PROBE
        self._seq = 0
        self.in_flight = 0
        self._blocked_until = 0.0
        # metered mode
        self._limit: int | None = None
        self._remaining = 0.0  # what new reservations may still use in the current window
        self._reset_at = 0.0  # end of the window new reservations are booked into
        self._server_reset = 0.0  # end of the server's current window, as last reported
        self._window_start = 0.0
        self._window = _DEFAULT_WINDOW
        self._window_exact = False
        self._next_slot = 0.0
        self._interval = 0.0
        self._credit = 0.0
        self._guard = 0.0
        self._slots: dict[int, float] = {}  # outstanding ticket -> the time it may be sent

    # ----------------------------------------------------------------- reservations

    def reserve(self, now: float) -> tuple[int, float] | None:
        """Claim one send: ``(ticket, delay)``, or ``None`` to wait for an in-flight response."""
        if self._mode == _PROBE and self.in_flight >= self._probe_in_flight:
            return None
        self._seq += 1
        self.in_flight += 1
        if self._mode == _METERED:
            if self._should_defer(now):
                self._seq -= 1
                self.in_flight -= 1
                return None
            delay = self._schedule(now)
        elif now < self._blocked_until:  # blocked by a 429: come back spaced out
            delay = self._blocked_until - now + 0.01 * (self._seq % 50)
        else:
            delay = 0.0
        self._slots[self._seq] = now + delay
        return self._seq, delay

    def _should_defer(self, now: float) -> bool:
        """Until a second window shows the window's length, book at most one window ahead.

        Deferred callers wait for the next response (one is always outstanding then).
        """
        if self._window_exact or not self._slots:
            return False
        base = max(self._next_slot, self._blocked_until, now)
        if base < self._reset_at and (self._remaining < 1 or base >= self._reset_at - self._guard):
            base = self._reset_at  # where _schedule would put it
        return base >= self._server_reset + self._window - 1e-6

    def _schedule(self, now: float) -> float:
        if self._next_slot < now:  # idle since the last paced slot: earn burst credit
            if self._interval > 0:
                earned = (now - self._next_slot) / self._interval
                self._credit = min(self._burst_cap(now), self._credit + earned)
            self._next_slot = now
        base = max(self._next_slot, self._blocked_until)
        self._roll(base)
        # Nothing is sent in the last `guard` seconds of a window: it could arrive after the
        # reset and count against the next one.
        if self._remaining < 1 or base >= self._reset_at - self._guard:
            base = max(base, self._reset_at + _RESET_MARGIN)  # the next window's first slots
            self._roll(base)
        if (
            self._credit >= 1
            and now >= self._blocked_until
            and now >= self._window_start
            and now < self._reset_at - self._guard
        ):
            self._credit -= 1
            self._remaining -= 1
            return 0.0
        self._interval = (self._reset_at - self._guard - base) / self._remaining
        self._remaining -= 1
        self._next_slot = base + self._interval
        return base - now

    def _burst_cap(self, now: float) -> float:
        """The burst credit allowed: ``burst``, or what the quota allows in one second when
        that is more. A lockstep batch far below the quota then goes out at once instead of
        being spaced ``(reset - now) / remaining`` apart; a tight quota still gets ``burst``."""
        return max(self._burst, self._remaining / max(1.0, self._reset_at - now))

    def _roll(self, at: float) -> None:
        """Start the assumed next window(s) when ``at`` is past the reset."""
        if at < self._reset_at:
            return
        windows = math.floor((at - self._reset_at) / self._window) + 1
        self._reset_at += windows * self._window
        self._window_start = self._reset_at - self._window + _RESET_MARGIN
        self._remaining = float(self._limit or 1)

    # ----------------------------------------------------------------- feedback

    def on_failure(self, ticket: int) -> None:
        """A request ended without a response."""
        self.in_flight -= 1
        self._slots.pop(ticket, None)

    def on_response(self, ticket: int, status: int, headers: Mapping[str, str], now: float) -> None:
        """Learn from a response's ``X-RateLimit-*`` (and, on 429, ``Retry-After``) headers."""
        self.in_flight -= 1
        slot = self._slots.pop(ticket, now)
        # one-way trip bound: the guard kept free at the end of each window
        self._guard = min(0.1 * self._window, max(now - slot, 0.95 * self._guard))
        remaining = headers.get("x-ratelimit-remaining")
        reset = headers.get("x-ratelimit-reset")
        if status == 429:
            wait = parse_retry_after(headers.get("retry-after"), now)
            until = now + wait if wait is not None else parse_reset(reset, now)
            if until is not None:
                until = min(until, now + self._max_block)
                self._blocked_until = max(self._blocked_until, until)
            if remaining is None and self._mode != _METERED:
                self._mode = _PROBE  # no quota figures: feel the way again after the block
        if remaining is None or reset is None:
            if self._mode == _PROBE and status != 429:
                self._mode = _OPEN
            return
        self._observe(ticket, slot, headers.get("x-ratelimit-limit"), remaining, reset, now)

    def _observe(
        self, ticket: int, slot: float, limit: str | None, remaining: str, reset: str, now: float
    ) -> None:
        reset_at = parse_reset(reset, now)
        try:
            left = float(remaining)
            cap = int(limit) if limit is not None else None
        except ValueError:
            return
        if reset_at is None or not math.isfinite(left):
            return
        reset_at = max(reset_at, now + 0.25)  # tolerate a server clock slightly behind ours
        metered = self._mode == _METERED
        if metered and reset_at < self._server_reset - 0.5:
            return  # a late answer from a window that is over
        if cap is not None:
            self._limit = cap
        elif self._limit is None:
            self._limit = int(left) + 1
        # Reservations for this window sent after this request (or not sent yet) are
        # probably not counted in the server's figure.
        same_window = metered and reset_at <= self._server_reset + 0.5
        if same_window and (
            abs(self._reset_at - reset_at) > 0.5 or left - len(self._slots) >= self._remaining
        ):
            # Nothing to learn: not booking into this window, or even if every outstanding
            # reservation were unseen by the server there is more left than we assume
            # (the O(1) fast path while the quota is far from binding).
            return
        if metered:
            unseen = sum(
                1
                for other, when in self._slots.items()
                if when < reset_at and (when > slot or (when == slot and other > ticket))
            )
        else:  # not tracked before metering: count every later request still in flight
            unseen = min(self.in_flight, self._seq - ticket)
        available = max(0.0, left - unseen)
        if same_window:  # ... and we are booking into it
            self._remaining = min(self._remaining, available)
            return
        # A new server window: learn its length and re-align the booking from the ledger.
        if not metered:
            # A lower bound until the next window shows the exact length.
            self._window = max(1.0, reset_at - now)
        elif reset_at - self._server_reset < 4 * self._window:
            self._window = max(1.0, reset_at - self._server_reset)  # fixed windows: exact
            self._window_exact = True
        self._mode = _METERED
        self._server_reset = reset_at
        ahead = max(0, math.ceil((self._next_slot - reset_at) / self._window))
        self._reset_at = reset_at + ahead * self._window
        if ahead == 0:
            self._window_start = now
            self._remaining = available
        else:
            self._window_start = self._reset_at - self._window + _RESET_MARGIN
            booked = sum(1 for when in self._slots.values() if when >= self._window_start)
            self._remaining = max(0.0, (self._limit or 1) - booked)
        if not metered:
            self._credit = self._burst_cap(now)

    def snapshot(self) -> RateLimitSnapshot:
        """The quota as the client currently sees it."""
        if self._mode != _METERED:
            return RateLimitSnapshot(self._limit, None, None)
        return RateLimitSnapshot(self._limit, max(0, int(self._remaining)), self._reset_at)


class SyncFlowControl:
    """Thread-safe wrapper for the sync client."""

    def __init__(self, core: FlowControl | None = None) -> None:
        self.core = core or FlowControl()
        self._cond = threading.Condition()

    def acquire(self) -> int:
        """Wait for permission to send; returns the ticket."""
        with self._cond:
            while (reservation := self.core.reserve(time.time())) is None:
                self._cond.wait(timeout=1.0)
        ticket, delay = reservation
        try:
            sleep_sync(delay)
        except BaseException:
            self.finish(ticket, None, None)
            raise
        return ticket

    def finish(self, ticket: int, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Report how the request ended (``status=None``: no response)."""
        with self._cond:
            if status is None or headers is None:
                self.core.on_failure(ticket)
            else:
                self.core.on_response(ticket, status, headers, time.time())
            self._cond.notify_all()

    def snapshot(self) -> RateLimitSnapshot:
        with self._cond:
            return self.core.snapshot()


class AsyncFlowGate(Protocol):
    """What :class:`~labs_env.AsyncLabsClient` needs from its flow control (``flow_control=``).

    :class:`AsyncFlowControl` is the per-client default; a shared gate (e.g. the Ray
    collector's cluster-wide quota, :mod:`labs_env.distributed.quota`) paces many clients
    together.
    """

    async def acquire(self) -> int:
        """Wait for permission to send; returns the ticket."""
        ...

    def finish(self, ticket: int, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Report how the request ended (``status=None``: no response)."""
        ...

    def snapshot(self) -> RateLimitSnapshot:
        """The quota as currently known."""
        ...


async def wait_for_slot(gate: AsyncFlowGate, ticket: int, delay: float) -> int:
    """Sleep until ``ticket``'s reserved slot (``delay`` seconds); the ticket, or given back to
    ``gate`` when the wait is interrupted."""
    if delay > 0:
        try:
            await sleep_async(delay)
        except BaseException:
            gate.finish(ticket, None, None)
            raise
    return ticket


class AsyncFlowControl:
    """Wrapper for the async client: one state for all concurrent calls of the client."""

    def __init__(self, core: FlowControl | None = None) -> None:
        self.core = core or FlowControl()
        self._waiters: list[asyncio.Future[None]] = []

    async def reserve(self) -> tuple[int, float]:
        """Wait for a reservation: ``(ticket, delay)``; the caller sleeps ``delay`` then sends
        (or reports ``finish(ticket, None, None)`` if it gives up)."""
        core = self.core
        while (reservation := core.reserve(time.time())) is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return reservation

    async def acquire(self) -> int:
        """Wait for permission to send; returns the ticket."""
        ticket, delay = await self.reserve()
        return await wait_for_slot(self, ticket, delay)

    def finish(self, ticket: int, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Report how the request ended (``status=None``: no response)."""
        if status is None or headers is None:
            self.core.on_failure(ticket)
        else:
            self.core.on_response(ticket, status, headers, time.time())
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def snapshot(self) -> RateLimitSnapshot:
        return self.core.snapshot()
