"""The validated settings of a client: key, base URL, timeouts, headers, TLS (no I/O)."""

from __future__ import annotations

import functools
import ipaddress
import os
import ssl
import sys
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from labs_env._version import __version__
from labs_env.client.api_key import ApiKey
from labs_env.client.retry import RetryPolicy
from labs_env.errors import LabsValidationError

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "ClientConfig",
    "default_ssl_context",
]

BASE_URL_ENV = "LABS_URL"
DEFAULT_BASE_URL = "https://labs.tacitintelligence.co"
USER_AGENT = f"labs-env/{__version__} python/{sys.version_info.major}.{sys.version_info.minor}"

TimeoutArg = float | httpx.Timeout | None
T = TypeVar("T")


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process (loading CA certificates costs ~40 ms)."""
    return ssl.create_default_context()


@functools.cache
def _no_tls_context() -> ssl.SSLContext:
    """For http:// base URLs: a context that trusts nothing, so it is never a way around TLS."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ClientConfig:
    """Validated settings of one client (the key stays masked in every repr)."""

    api_key: ApiKey
    base_url: str
    scheme: str
    host: str
    port: int
    path_prefix: str
    timeout: httpx.Timeout
    max_retries: int
    retry_policy: RetryPolicy
    retry_unsafe_turns: bool
    max_connections: int

    @classmethod
    def create(
        cls,
        api_key: str | ApiKey | None,
        base_url: str | None,
        timeout: TimeoutArg,
        max_retries: int,
        retry_policy: RetryPolicy | None,
        retry_unsafe_turns: bool,
        allow_insecure_http: bool,
        *,
        custom_transport: bool,
        max_connections: int,
    ) -> ClientConfig:
        """Resolve environment fallbacks and validate everything before any request."""
        key = ApiKey.resolve(api_key)
        url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LabsValidationError(
                "base_url",
                f"{url!r} is not an http(s) URL",
                f"pass e.g. {DEFAULT_BASE_URL!r} (or set {BASE_URL_ENV})",
            )
        if (
            parts.scheme == "http"
            and not custom_transport
            and not allow_insecure_http
            and not _is_loopback(parts.hostname)
        ):
            raise LabsValidationError(
                "base_url",
                f"refusing to send the API key over plain http to {parts.hostname!r}",
                "use https://, or pass allow_insecure_http=True if the network is trusted",
            )
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise LabsValidationError(
                "max_retries", f"must be an int >= 0, got {max_retries!r}", "pass e.g. 3"
            )
        if (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or (max_connections < 1)
        ):
            raise LabsValidationError(
                "max_connections",
                f"must be an int >= 1, got {max_connections!r}",
                "size it to the number of requests you keep in flight, e.g. 256",
            )
        return cls(
            api_key=key,
            base_url=f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}",
            scheme=parts.scheme,
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
            path_prefix=parts.path.rstrip("/"),
            timeout=_timeout(timeout),
            max_retries=max_retries,
            retry_policy=retry_policy or RetryPolicy(),
            retry_unsafe_turns=bool(retry_unsafe_turns),
            max_connections=max_connections,
        )

    def headers(self) -> dict[str, str]:
        """Headers sent on every request (``Idempotency-Key`` is added per POST)."""
        return {
            "Authorization": f"Bearer {self.api_key.reveal()}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def ssl_context(self) -> ssl.SSLContext:
        """The shared verifying context for https, a trust-nothing one for http."""
        return default_ssl_context() if self.scheme == "https" else _no_tls_context()

    def __repr__(self) -> str:
        return f"ClientConfig(base_url={self.base_url!r}, api_key={self.api_key!r})"


def _timeout(value: TimeoutArg) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    if value is None:
        return httpx.Timeout(None)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise LabsValidationError(
            "timeout",
            f"must be a number of seconds > 0, an httpx.Timeout or None, got {value!r}",
            "pass e.g. timeout=30.0",
        )
    return httpx.Timeout(float(value))
