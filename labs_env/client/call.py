"""The sans-IO core of both clients: response reading, error mapping and retry decisions.

A logical call is a :class:`Call`. The client loop is::

    call = Call(spec, ...)
    while True:
        ... send spec.method/spec.path/spec.body with call.headers ...
        on a transport failure:  delay = call.after_failure(failure)   # raises when final
        on a response:           result = call.after_response(status, headers, body)
                                 if result is not RETRY: return result
                                 delay = call.delay
        sleep(delay)

The sync and async clients differ only in how they send and sleep.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Final, Generic, Literal, TypeVar, overload

from pydantic import ValidationError

from labs_env.client.api_key import ApiKey
from labs_env.client.failures import TransportFailure
from labs_env.client.requests import UNHANDLED, RequestSpec
from labs_env.client.retry import (
    NOT_PROCESSED_STATUSES,
    RETRY_STATUSES,
    RetryBudget,
    RetryPolicy,
    parse_reset,
    parse_retry_after,
)
from labs_env.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    error_for_status,
)

__all__ = ["RETRY", "Call", "Resend", "status_error"]

T = TypeVar("T")
logger = logging.getLogger("labs_env")


class Resend(enum.Enum):
    """The type of :data:`RETRY`."""

    RESEND = "resend"


#: Returned by :meth:`Call.after_response` when the call should be sent again.
RETRY: Final = Resend.RESEND


def _request_id(headers: Mapping[str, str], body: Any = None) -> str | None:
    if isinstance(body, dict):
        data = body.get("data")
        value = data.get("request_id") if isinstance(data, dict) else body.get("request_id")
        if isinstance(value, str):
            return value
    return headers.get("x-request-id")


#: Of a body that is not JSON, this many bytes are read and redacted, and this many
#: characters shown in the error.
_TEXT_READ, _TEXT_SHOWN = 4096, 200


@overload
def _redact(key: ApiKey | None, text: str) -> str: ...
@overload
def _redact(key: ApiKey | None, text: str | None) -> str | None: ...
def _redact(key: ApiKey | None, text: str | None) -> str | None:
    """``text`` with ``key`` masked (``None`` stays ``None``): for every field of an error
    that comes from the server or the network."""
    if key is None or text is None:
        return text
    return key.redact(text)


def status_error(
    status: int, headers: Mapping[str, str], body: bytes, key: ApiKey | None = None
) -> APIStatusError:
    """The typed error for a non-2xx response; tolerates bodies that are not JSON."""
    parsed: Any = None
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    message = parsed.get("message") if isinstance(parsed, dict) else None
    if not isinstance(message, str) or not message:
        # Redacted before it is cut: a cut key would no longer match.
        text = _redact(key, body[:_TEXT_READ].decode("utf-8", "replace")).strip() if body else ""
        message = text[:_TEXT_SHOWN].strip() if text and parsed is None else f"HTTP {status}"
    now = time.time()
    return error_for_status(
        status,
        _redact(key, message),
        request_id=_redact(key, _request_id(headers, parsed)),
        reset_at=parse_reset(headers.get("x-ratelimit-reset"), now),
        retry_after=parse_retry_after(headers.get("retry-after"), now),
    )


def _shape_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:3]:
        loc = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{loc}: {error['msg']}")
    return "; ".join(parts)


class _KeySource:
    """Idempotency keys: 16 random bytes from ``os.urandom``, read 4 KiB at a time (one system
    call per 256 keys instead of one per call); thread-safe, and reset in a forked child so
    no two processes hand out the same keys."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._next = 0

    def reset(self) -> None:
        """Forget the buffered bytes (and a lock another thread may have held at the fork)."""
        self._lock = threading.Lock()
        self._pool = b""
        self._next = 0

    def key(self) -> str:
        with self._lock:
            start = self._next
            if start >= len(self._pool):
                self._pool, start = os.urandom(4096), 0
            self._next = start + 16
            return self._pool[start : start + 16].hex()


_keys = _KeySource()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_keys.reset)


class Call(Generic[T]):
    """Retry state of one logical call (one idempotency key for all its attempts)."""

    __slots__ = (
        "_budget",
        "_key",
        "_max_retries",
        "_policy",
        "_started",
        "attempt",
        "delay",
        "idempotency_key",
        "retry_unsafe",
        "spec",
    )

    def __init__(
        self,
        spec: RequestSpec[T],
        *,
        policy: RetryPolicy,
        max_retries: int,
        retry_unsafe: bool,
        key: ApiKey | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.spec = spec
        self._budget = budget
        self._policy = policy
        self._max_retries = max_retries
        self.retry_unsafe = retry_unsafe or spec.idempotent
        self._key = key
        self._started = time.monotonic()
        self.attempt = 0
        self.delay = 0.0
        self.idempotency_key = _keys.key() if spec.method == "POST" else None

    # ----------------------------------------------------------------- decisions

    def _may_retry(self, delay: float) -> bool:
        if self.attempt >= self._max_retries:
            return False
        return time.monotonic() - self._started + delay <= self._policy.deadline

    def _schedule(self, delay: float, reason: str) -> bool:
        if not self._may_retry(delay):
            return False
        if self._budget is not None and not self._budget.try_withdraw():
            logger.warning(
                "not retrying %s %s after %s: the client's retry budget is spent (%s)",
                self.spec.method,
                self.spec.path,
                reason,
                self._budget,
            )
            return False
        self.attempt += 1
        self.delay = delay
        logger.info(
            "retrying %s %s in %.2fs after %s (retry %d of %d)",
            self.spec.method,
            self.spec.path,
            delay,
            reason,
            self.attempt,
            self._max_retries,
        )
        return True

    def _log(self, status: int, request_id: str | None) -> None:
        logger.debug(
            "%s %s -> %d request_id=%s attempt=%d",
            self.spec.method,
            self.spec.path,
            status,
            request_id,
            self.attempt + 1,
        )

    def after_failure(self, failure: TransportFailure) -> float:
        """The delay before resending after a transport failure; raises when final."""
        detail = _redact(self._key, str(failure))
        safe = not failure.sent or self.retry_unsafe
        if (
            safe
            and not failure.final
            and self._schedule(self._policy.backoff(self.attempt), detail)
        ):
            return self.delay
        message = f"{self.spec.method} {self.spec.path}: {detail}"
        if not safe:
            message += (
                " — the turn may or may not have been recorded; it was not resent because "
                "turns are not idempotent (pass retry_unsafe_turns=True to resend)"
            )
        cls = APITimeoutError if failure.timeout else APIConnectionError
        raise cls(message) from failure

    def after_response(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> T | Literal[Resend.RESEND]:
        """The result of a response, or :data:`RETRY` (see ``delay``); raises errors."""
        spec = self.spec
        request_id = headers.get("x-request-id")
        if 200 <= status < 300:
            if self._budget is not None:
                self._budget.deposit()
            if logger.isEnabledFor(logging.DEBUG):
                self._log(status, _redact(self._key, request_id))
            content_type = headers.get("content-type")
            if content_type is not None and "json" not in content_type:
                raise APIResponseValidationError(
                    f"{spec.method} {spec.path}: expected a JSON response, got content type "
                    f"{_redact(self._key, content_type)!r}",
                    status_code=status,
                    request_id=_redact(self._key, request_id),
                )
            try:
                return spec.parse(body, request_id)
            except ValidationError as exc:
                raise APIResponseValidationError(
                    f"{spec.method} {spec.path}: the response broke the documented shape: "
                    f"{_shape_error(exc)}",
                    status_code=status,
                    request_id=_redact(self._key, request_id),
                ) from None
        error = status_error(status, headers, body, self._key)
        if logger.isEnabledFor(logging.DEBUG):
            self._log(status, error.request_id)
        if spec.on_error is not None:
            handled = spec.on_error(error)
            if handled is not UNHANDLED:
                return handled
        if status in RETRY_STATUSES and (self.retry_unsafe or status in NOT_PROCESSED_STATUSES):
            if status == 429:
                retry_after = getattr(error, "retry_after", None)
                reset_at = getattr(error, "reset_at", None)
                delay = self._policy.rate_limit_wait(
                    retry_after, reset_at, time.time(), self.attempt
                )
            else:
                delay = self._policy.backoff(self.attempt)
            if self._schedule(delay, f"HTTP {status}"):
                return RETRY
        raise error
