"""Pure retry policy: which failures are retried, how long to wait, and the instant switch.

Rules (documented in ``docs/client.md``, "Retries and idempotency"):

* Retried: connection errors, timeouts, and the statuses 408, 429, 500, 502, 503, 504.
* Waits: exponential backoff with full jitter (``uniform(0, min(max_delay,
  initial_delay * 2**attempt))``); on 429 the server's ``Retry-After`` (seconds or HTTP date),
  else ``X-RateLimit-Reset`` (epoch seconds), capped at ``max_rate_limit_wait``.
* Bounds: at most ``max_retries`` retries *and* no retry that would end after ``deadline``
  seconds from the start of the logical call.
* A call that is not idempotent (a turn submission) is retried only when the request provably
  did not reach the server: connect errors before sending, 429 and 503.
* Retry budget: all calls of one client share a :class:`RetryBudget` (a token bucket of
  retries, as in gRPC and Finagle): retries in any ``retry_budget_ttl`` seconds are bounded by
  ``retry_budget_min_per_second * retry_budget_ttl`` plus ``retry_budget_ratio`` times the
  successful responses in that time. A storm of failures across many concurrent calls (e.g.
  256 envs of a vector env during an outage) then adds a bounded fraction of load instead of
  multiplying it by ``max_retries + 1``; when the budget is spent, the failure is raised.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from labs_env.checks import check_number

__all__ = [
    "NOT_PROCESSED_STATUSES",
    "RETRY_STATUSES",
    "RetryBudget",
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


class RetryBudget:
    """A token bucket of retries shared by every call of one client (thread-safe).

    Over any ``ttl`` seconds, retries are bounded by ``min_per_second * ttl`` plus ``ratio``
    times the successful responses: each success deposits ``ratio`` tokens, each retry
    withdraws one, and both expire after ``ttl`` seconds, so the budget follows recent
    traffic. The clients build one from their :class:`RetryPolicy`.

    Args:
        ratio: retries allowed per recent success (0.2: at most 20% extra load).
        min_per_second: retries always allowed per second (a floor for low traffic).
        ttl: how long deposits and withdrawals count, in seconds.
        clock: monotonic seconds (injectable for tests).

    Example:
        >>> budget = RetryBudget(ratio=0.5, min_per_second=0.1, ttl=10.0)
        >>> [budget.try_withdraw() for _ in range(2)]  # a reserve of 0.1 * 10 = 1 retry
        [True, False]
        >>> budget.deposit(); budget.deposit()  # two successes earn 0.5 retries each
        >>> budget.try_withdraw(), budget.try_withdraw()
        (True, False)
    """

    _BUCKETS = 10

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_number(ratio, "RetryBudget.ratio")
        check_number(min_per_second, "RetryBudget.min_per_second")
        check_number(ttl, "RetryBudget.ttl", positive=True)
        self.ratio = float(ratio)
        self.min_per_second = float(min_per_second)
        self.ttl = float(ttl)
        self._clock = clock
        self._width = self.ttl / self._BUCKETS
        self._reserve = self.min_per_second * self.ttl
        # [bucket number, successes, retries] per live time bucket, oldest first
        self._buckets: collections.deque[list[int]] = collections.deque()
        self._successes = 0
        self._retries = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio}, min_per_second={self.min_per_second}, "
            f"ttl={self.ttl}, available={self.available:.1f})"
        )

    def _bucket(self) -> list[int]:
        """The current time bucket (expiring the ones older than ``ttl``); lock held."""
        number = int(self._clock() / self._width)
        buckets = self._buckets
        while buckets and buckets[0][0] <= number - self._BUCKETS:
            _, successes, retries = buckets.popleft()
            self._successes -= successes
            self._retries -= retries
        if not buckets or buckets[-1][0] != number:
            buckets.append([number, 0, 0])
        return buckets[-1]

    def _balance(self) -> float:
        return self._reserve + self.ratio * self._successes - self._retries

    @property
    def available(self) -> float:
        """Retries that may start now."""
        with self._lock:
            self._bucket()
            return max(0.0, self._balance())

    def deposit(self) -> None:
        """Record a successful response (O(1); on every success, so kept lean)."""
        number = int(self._clock() / self._width)
        with self._lock:
            buckets = self._buckets
            bucket = buckets[-1] if buckets and buckets[-1][0] == number else self._bucket()
            bucket[1] += 1
            self._successes += 1

    def try_withdraw(self) -> bool:
        """Claim one retry; ``False`` (nothing claimed) when the budget is spent."""
        with self._lock:
            bucket = self._bucket()
            if self._balance() < 1.0:
                return False
            bucket[2] += 1
            self._retries += 1
            return True


@dataclass(frozen=True)
class RetryPolicy:
    """How long the client waits between retries (the number of retries is ``max_retries``),
    and the retry budget its calls share.

    Attributes:
        initial_delay: backoff base in seconds (the first retry waits up to this long).
        max_delay: upper bound of one backoff wait.
        deadline: no retry is started that would end later than this many seconds after the
            logical call began.
        max_rate_limit_wait: cap on a wait asked for by a 429 (``Retry-After`` or the reset).
        retry_budget_ratio: retries allowed per recent successful response, shared by all
            calls of a client (see :class:`RetryBudget`); ``None`` disables the budget.
        retry_budget_min_per_second: retries always allowed per second.
        retry_budget_ttl: seconds over which successes and retries are counted.

    Example:
        >>> RetryPolicy(initial_delay=0.1).backoff(2, rand=1.0)
        0.4
        >>> RetryPolicy(retry_budget_ratio=0.1).new_budget()
        RetryBudget(ratio=0.1, min_per_second=10.0, ttl=10.0, available=100.0)
    """

    initial_delay: float = 0.5
    max_delay: float = 8.0
    deadline: float = 120.0
    max_rate_limit_wait: float = 60.0
    retry_budget_ratio: float | None = 0.2
    retry_budget_min_per_second: float = 10.0
    retry_budget_ttl: float = 10.0

    def __post_init__(self) -> None:
        for name in ("initial_delay", "max_delay", "deadline", "max_rate_limit_wait"):
            check_number(getattr(self, name), f"RetryPolicy.{name}")
        if self.retry_budget_ratio is not None:
            check_number(self.retry_budget_ratio, "RetryPolicy.retry_budget_ratio")
        check_number(self.retry_budget_min_per_second, "RetryPolicy.retry_budget_min_per_second")
        check_number(self.retry_budget_ttl, "RetryPolicy.retry_budget_ttl", positive=True)

    def new_budget(self) -> RetryBudget | None:
        """A fresh budget for one client (``None`` when ``retry_budget_ratio`` is ``None``)."""
        if self.retry_budget_ratio is None:
            return None
        return RetryBudget(
            ratio=self.retry_budget_ratio,
            min_per_second=self.retry_budget_min_per_second,
            ttl=self.retry_budget_ttl,
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
