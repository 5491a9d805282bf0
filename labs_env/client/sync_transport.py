"""The sync client's own httpx transport: httpcore's connection pool over a guarded stream.

It does two things httpx's default transport does not, where only the bytes show them:

- **A deadline per response.** The whole response, head and body, must arrive within the read
  timeout of the moment its request is written, as in the async transport. httpx bounds each
  read only, so a server trickling one byte at a time holds a request indefinitely.
- **No stale answers.** Bytes that arrive while no response is awaited (a response written
  twice, a stale answer) make the connection unusable: it is closed, never reused. httpcore
  notices an idle socket that became readable, but not a duplicate that arrived in the same
  read as the real response: that one sits in h11's buffer and would answer the next request.

Responses are framed by httptools (the async transport's parser) only to see where each one
ends; h11 inside httpcore still parses them. Proxies come from :mod:`~labs_env.client.proxy`.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httptools
import httpx

from labs_env.client.proxy import ProxyRoute
from labs_env.client.tls import default_ssl_context

__all__ = ["GuardedTransport"]


class _GuardedStream(httpcore.NetworkStream):
    """One connection's byte stream, watching where responses start and end."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream
        self._parser = httptools.HttpResponseParser(self)
        self._awaiting = False  # a request was written and its response is not complete
        self._sent_at = 0.0
        self._stale = False

    # httptools callbacks
    def on_message_begin(self) -> None:
        if not self._awaiting:  # a second response in the same read
            self._stale = True

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() >= 200:  # not a 1xx interim response
            self._awaiting = False

    def _left(self, timeout: float | None, error: type[Exception]) -> float | None:
        """What remains of ``timeout`` counted from the request's first byte."""
        if timeout is None:
            return None
        left = self._sent_at + timeout - time.monotonic()
        if left <= 0:
            raise error(f"no complete response within {timeout:g} s of sending the request")
        return left

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not self._awaiting:
            self._awaiting = True
            self._sent_at = time.monotonic()
        self._stream.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._stream.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))
        if data and not self._stale:
            if not self._awaiting:
                self._stale = True
            else:
                try:
                    self._parser.feed_data(data)
                except (httptools.HttpParserError, httptools.HttpParserUpgrade):
                    self._stale = True  # framing unknown: do not reuse the connection
        return data

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _GuardedStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        # httpcore closes an idle connection whose socket is readable, before reusing it.
        if info == "is_readable" and self._stale:
            return True
        return self._stream.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _GuardedStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return _GuardedStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpcore's exceptions as the httpx ones of the same name (as httpx's transport does)."""
    try:
        yield
    except Exception as exc:
        for cls in type(exc).__mro__:
            if cls.__module__.startswith("httpcore") and hasattr(httpx, cls.__name__):
                raise getattr(httpx, cls.__name__)(str(exc)) from exc
        raise


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport to one origin (directly or through ``proxy``) with the guards above.

    Args:
        tls: the TLS context for https origins (``None``: httpcore's default).
        proxy: the proxy to go through, or ``None``.
        max_connections: pool size (all kept alive while idle, for ``keepalive_expiry`` s).
    """

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None,
        proxy: ProxyRoute | None,
        max_connections: int,
        keepalive_expiry: float = 4.0,
    ) -> None:
        options: dict[str, Any] = {
            "ssl_context": tls,
            "max_connections": max_connections,
            "max_keepalive_connections": max_connections,
            "keepalive_expiry": keepalive_expiry,
            "network_backend": _GuardedBackend(),
        }
        self._pool: httpcore.ConnectionPool
        if proxy is None:
            self._pool = httpcore.ConnectionPool(**options)
        else:
            self._pool = httpcore.HTTPProxy(
                proxy_url=proxy.url,
                proxy_auth=proxy.credentials,
                proxy_ssl_context=default_ssl_context() if proxy.scheme == "https" else None,
                **options,
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
