"""Transport failures: a request that got no (complete) response, and whether it may have
reached the server (the fact the retry rules turn on)."""

from __future__ import annotations

import httpx

__all__ = ["TransportFailure", "failure_from_httpx"]


class TransportFailure(Exception):
    """A request that got no (complete) response.

    Attributes:
        sent: whether any byte of the request may have reached the server. ``False`` proves
            it did not (connect error, pool timeout), so even a turn may be resent.
        timeout: the failure is a timeout.
    """

    def __init__(self, detail: str, *, sent: bool, timeout: bool = False) -> None:
        super().__init__(detail)
        self.sent = sent
        self.timeout = timeout


def failure_from_httpx(exc: httpx.HTTPError) -> TransportFailure:
    """Classify an httpx error: did the request provably not reach the server?"""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        timeout = isinstance(exc, httpx.TimeoutException)
        return TransportFailure(f"could not connect: {exc}", sent=False, timeout=timeout)
    if isinstance(exc, httpx.TimeoutException):
        return TransportFailure(f"timed out: {exc}", sent=True, timeout=True)
    return TransportFailure(f"connection failed: {type(exc).__name__}: {exc}", sent=True)
