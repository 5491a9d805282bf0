"""A settable clock for code that takes ``clock=`` (the server, the retry budget)."""

from __future__ import annotations


class FakeClock:
    """A settable clock (Unix seconds), starting mid-minute."""

    def __init__(self, now: float = 1_800_000_030.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
