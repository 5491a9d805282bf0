"""Per-key request quotas in fixed one-minute windows, as the service advertises them.

Windows are aligned to the clock's minutes, so ``X-RateLimit-Reset`` is the next minute
boundary in Unix epoch seconds. A refused request does not use up quota.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateDecision", "RateLimiter"]

WINDOW_SECONDS = 60


@dataclass(slots=True)  # not frozen: built on every request, and frozen init is slow
class RateDecision:
    """The outcome of one request against its key's window."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: int
    retry_after: int

    def headers(self) -> list[tuple[str, str]]:
        """``x-ratelimit-limit`` / ``-remaining`` / ``-reset`` header pairs."""
        return [
            ("x-ratelimit-limit", str(self.limit)),
            ("x-ratelimit-remaining", str(self.remaining)),
            ("x-ratelimit-reset", str(self.reset_at)),
        ]


class RateLimiter:
    """Counts requests per key in the current one-minute window.

    Args:
        clock: Unix time in seconds (injectable so tests can move time forward).
        window_s: window length in seconds (the service's is a minute; shorter windows let
            tests and benchmarks cross window boundaries quickly).
    """

    def __init__(self, clock: Callable[[], float], window_s: int = WINDOW_SECONDS) -> None:
        self._clock = clock
        self._window_s = window_s
        self._windows: dict[str, list[int]] = {}  # key -> [window index, used]

    def hit(self, key: str, limit: int) -> RateDecision:
        """Count one request for ``key`` unless its window is spent."""
        now = self._clock()
        window = int(now // self._window_s)
        state = self._windows.get(key)
        if state is None or state[0] != window:
            state = [window, 0]
            self._windows[key] = state
        reset_at = (window + 1) * self._window_s
        retry_after = max(1, math.ceil(reset_at - now))
        if state[1] >= limit:
            return RateDecision(False, limit, 0, reset_at, retry_after)
        state[1] += 1
        return RateDecision(True, limit, limit - state[1], reset_at, retry_after)
