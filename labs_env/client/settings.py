"""The validated settings of a client: key, base URL, timeouts, headers, TLS, proxy (no I/O
but reading the TLS files named and the proxy variables, once per client)."""

from __future__ import annotations

import ipaddress
import math
import os
import ssl
import sys
from dataclasses import dataclass
from typing import Literal, TypeVar
from urllib.parse import urlsplit

import httpx

from labs_env._version import __version__
from labs_env.client.api_key import ApiKey
from labs_env.client.proxy import ProxyRoute, proxy_for
from labs_env.client.retry import RetryPolicy
from labs_env.client.tls import tls_context
from labs_env.errors import LabsValidationError

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "ClientConfig",
    "Stack",
]

BASE_URL_ENV = "LABS_URL"
DEFAULT_BASE_URL = "https://labs.tacitintelligence.co"
USER_AGENT = f"labs-env/{__version__} python/{sys.version_info.major}.{sys.version_info.minor}"

TimeoutArg = float | httpx.Timeout | None
#: Who sends the requests: the client's own transport, the caller's httpx transport
#: (``transport=``) or the caller's httpx client (``http_client=``).
Stack = Literal["own", "transport", "http_client"]
T = TypeVar("T")


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
    #: TLS context for the client's own transport to an https URL (else ``None``).
    tls: ssl.SSLContext | None = None
    #: The proxy of the client's own transport (from the environment), if any.
    proxy: ProxyRoute | None = None

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
        max_connections: int,
        stack: Stack = "own",
        verify: object = True,
        cert: object = None,
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
            and stack != "transport"
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
        own = stack == "own"
        if not own and (verify is not True or cert is not None):
            raise LabsValidationError(
                "verify" if verify is not True else "cert",
                f"cannot be combined with {stack}= (it has TLS settings of its own)",
                f"configure TLS on the {stack} you pass",
            )
        tls = None
        if own and (parts.scheme == "https" or verify is not True or cert is not None):
            tls = tls_context(verify, cert)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(
            api_key=key,
            base_url=f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}",
            scheme=parts.scheme,
            host=parts.hostname,
            port=port,
            path_prefix=parts.path.rstrip("/"),
            timeout=_timeout(timeout),
            max_retries=max_retries,
            retry_policy=retry_policy or RetryPolicy(),
            retry_unsafe_turns=bool(retry_unsafe_turns),
            max_connections=max_connections,
            tls=tls if parts.scheme == "https" else None,
            proxy=proxy_for(parts.scheme, parts.hostname, port) if own else None,
        )

    def headers(self) -> dict[str, str]:
        """Headers sent on every request (``Idempotency-Key`` is added per POST)."""
        return {
            "Authorization": f"Bearer {self.api_key.reveal()}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def __repr__(self) -> str:
        return f"ClientConfig(base_url={self.base_url!r}, api_key={self.api_key!r})"


def _timeout(value: TimeoutArg) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        for name, seconds in value.as_dict().items():
            if seconds is not None and not _seconds(seconds):
                raise LabsValidationError(
                    "timeout",
                    f"httpx.Timeout {name}= must be a finite number of seconds > 0 or None, "
                    f"got {seconds!r}",
                    f"pass e.g. httpx.Timeout(30.0, {name}=10.0)",
                )
        return value
    if value is None:
        return httpx.Timeout(None)
    if not _seconds(value):
        raise LabsValidationError(
            "timeout",
            f"must be a finite number of seconds > 0, an httpx.Timeout or None, got {value!r}",
            "pass e.g. timeout=30.0 (or None for no limit)",
        )
    return httpx.Timeout(float(value))


def _seconds(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
