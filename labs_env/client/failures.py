"""Transport failures: a request that got no (complete) response, and whether it may have
reached the server (the fact the retry rules turn on)."""

from __future__ import annotations

import ssl

import httpx

__all__ = ["TransportFailure", "connect_failure", "failure_from_httpx"]

_VERIFY_HINT = (
    " (if the server's certificate is signed by a private CA, pass verify='/path/to/ca.pem'; "
    "see LabsClient's verify= and cert=)"
)


class TransportFailure(Exception):
    """A request that got no (complete) response.

    Attributes:
        sent: whether any byte of the request may have reached the server. ``False`` proves
            it did not (connect error, pool timeout), so even a turn may be resent.
        timeout: the failure is a timeout.
        final: sending again cannot help (a certificate that does not verify): not retried.
    """

    def __init__(
        self, detail: str, *, sent: bool, timeout: bool = False, final: bool = False
    ) -> None:
        super().__init__(detail)
        self.sent = sent
        self.timeout = timeout
        self.final = final


def _cert_verify_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failed TLS certificate check."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def connect_failure(where: str | None, exc: BaseException) -> TransportFailure:
    """A connection to ``where`` that could not be opened (nothing sent); a failed
    certificate check says how to trust a private CA."""
    untrusted = _cert_verify_error(exc)
    hint = _VERIFY_HINT if untrusted else ""
    target = f" to {where}" if where else ""
    return TransportFailure(f"could not connect{target}: {exc}{hint}", sent=False, final=untrusted)


def failure_from_httpx(exc: httpx.HTTPError) -> TransportFailure:
    """Classify an httpx error: did the request provably not reach the server?"""
    if isinstance(exc, (httpx.ConnectError, httpx.ProxyError)):  # ProxyError: tunnel refused
        return connect_failure(None, exc)
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TransportFailure(f"could not connect: {exc}", sent=False, timeout=True)
    if isinstance(exc, httpx.TimeoutException):
        detail = str(exc) if str(exc) and str(exc) != "timed out" else type(exc).__name__
        return TransportFailure(f"timed out: {detail}", sent=True, timeout=True)
    return TransportFailure(f"connection failed: {type(exc).__name__}: {exc}", sent=True)
