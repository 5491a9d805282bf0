"""Pure retry policy: which failures are retried, how long to wait, and the instant switch.

Rules (documented in the README):

* Retried: connection errors, timeouts, and the statuses 408, 429, 500, 502, 503, 504.
* Waits: exponential backoff with full jitter (``uniform(0, min(max_delay,
  initial_delay * 2**attempt))``); on 429 the server's ``Retry-After`` (seconds or HTTP date),
  else ``X-RateLimit-Reset`` (epoch seconds), capped at ``max_rate_limit_wait``.
* Bounds: at most ``max_retries`` retries *and* no retry that would end after ``deadline``
  seconds from the start of the logical call.
* A call that is not idempotent (a turn submission) is retried only when the request provably
  did not reach the server: connect errors before sending, 429 and 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from labs_env.errors import LabsValidationError

__all__ = [
    "NOT_PROCESSED_STATUSES",
    "RETRY_STATUSES",
    "RetryPolicy",
    "instant_retries",
    "parse_reset",
    "parse_retry_after",
    "record_wait",
    "sleep_async",
    "sleep_sync",
]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses that prove the service did not act on the request.
NOT_PROCESSED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How long the client waits between retries (the number of retries is ``max_retries``).

    Attributes:
        initial_delay: backoff base in seconds (the first retry waits up to this long).
        max_delay: upper bound of one backoff wait.
        deadline: no retry is started that would end later than this many seconds after the
            logical call began.
        max_rate_limit_wait: cap on a wait asked for by a 429 (``Retry-After`` or the reset).

    Example:
        >>> RetryPolicy(initial_delay=0.1).backoff(2, rand=1.0)
        0.4
    """

    initial_delay: float = 0.5
    max_delay: float = 8.0
    deadline: float = 120.0
    max_rate_limit_wait: float = 60.0

    def __post_init__(self) -> None:
        for name in ("initial_delay", "max_delay", "deadline", "max_rate_limit_wait"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise LabsValidationError(
                    f"RetryPolicy.{name}", f"must be a finite number >= 0, got {value!r}", ""
                )

    def backoff(self, attempt: int, rand: float | None = None) -> float:
        """Full-jitter wait before retry number ``attempt`` (0-based)."""
        ceiling = min(self.max_delay, self.initial_delay * (2.0 ** min(attempt, 32)))
        return ceiling * (random.random() if rand is None else rand)

    def rate_limit_wait(
        self, retry_after: float | None, reset_at: float | None, now: float, attempt: int
    ) -> float:
        """Wait after a 429: ``Retry-After``, else until the reset, else backoff; capped."""
        if retry_after is not None:
            wait = retry_after
        elif reset_at is not None:
            wait = reset_at - now
        else:
            wait = self.backoff(attempt)
        # A little jitter so that callers told the same reset do not all return at once.
        wait = max(0.0, wait) + random.random() * min(1.0, 0.1 * max(wait, 0.1))
        return min(wait, self.max_rate_limit_wait)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta seconds or an HTTP date; ``None`` if bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def parse_reset(value: str | None, now: float) -> float | None:
    """``X-RateLimit-Reset`` as epoch seconds (small values are read as seconds from now)."""
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return now + number if number < 1e8 else number


# --------------------------------------------------------------------------- instant switch

_lock = threading.Lock()
_recorders: list[list[float]] = []


@contextlib.contextmanager
def instant_retries() -> Iterator[list[float]]:
    """Make every client-side wait instant while the block runs; yield the waits skipped.

    Covers retry backoff, ``Retry-After``/reset waits and rate-limit pacing of every
    ``LabsClient``/``AsyncLabsClient``. Intended for tests: the retry *decisions* are unchanged,
    only the sleeping is skipped, and the list records each wait (seconds) that was requested.

    Example:
        >>> from labs_env.testing import instant_retries
        >>> with instant_retries() as waits:
        ...     pass  # exercise a client against a flaky transport here
        >>> waits
        []
    """
    waits: list[float] = []
    with _lock:
        _recorders.append(waits)
    try:
        yield waits
    finally:
        with _lock:
            _recorders.remove(waits)


def record_wait(seconds: float) -> bool:
    """Record a wait; ``True`` when waits are instant (the caller must not sleep)."""
    if not _recorders:
        return False
    with _lock:
        if not _recorders:
            return False
        _recorders[-1].append(seconds)
    return True


def sleep_sync(seconds: float) -> None:
    """``time.sleep`` that honours :func:`instant_retries`."""
    if seconds > 0 and not record_wait(seconds):
        time.sleep(seconds)


async def sleep_async(seconds: float) -> None:
    """``asyncio.sleep`` that honours :func:`instant_retries`."""
    if seconds <= 0 or record_wait(seconds):
        await asyncio.sleep(0)
    else:
        await asyncio.sleep(seconds)
