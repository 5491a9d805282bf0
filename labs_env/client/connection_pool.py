"""A lean asyncio HTTP/1.1 client transport: keep-alive pool, httptools response parser.

Why not httpx's async transport: at 64+ requests in flight it costs milliseconds of CPU per
request (``docs/benchmarks.md``, "Client"). This transport keeps per-request work small:
request heads are assembled from pre-encoded bytes, responses are parsed by httptools (C), and
a pooled connection is handed straight from one request to the next waiting one.

Failure semantics (used by the retry rules): a failure while connecting, or a pooled
connection found dead before the request is written, raises ``TransportFailure(sent=False)``
(a dead pooled connection is silently replaced first); once the request was written, any
failure is ``sent=True`` — the server may have acted on it.

Proxies (a :class:`~labs_env.client.proxy.ProxyRoute`): an https origin is reached through a
``CONNECT`` tunnel (TLS to the origin inside it); for a plain http origin the pool connects
to the proxy and the client writes absolute-form request targets (:attr:`forwarding`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import time
from dataclasses import dataclass
from typing import cast

import httptools

from labs_env.client.failures import TransportFailure, connect_failure
from labs_env.client.proxy import ProxyRoute
from labs_env.client.tls import default_ssl_context

__all__ = ["ConnectionPool", "RawResponse"]

_ENCODING = "latin-1"


@dataclass(slots=True)
class RawResponse:
    """A complete response: status, lower-cased header names, body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Unsolicited(Exception):
    """Raised from the parser when a response starts that no request is waiting for."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request at a time."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[RawResponse] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._got_bytes = False
        self._closed = False
        self.alive = False
        self.idle_since = 0.0
        self.keep_alive = True
        self.status = 0

    # ----------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.alive = not self._closed  # closed already: bytes came inside a fresh tunnel
        if self._closed:
            transport.close()

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Bytes while no request waits (a response written twice, a stale answer) would be
            # read as the answer to the next request: the connection is unusable.
            self.close()
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportFailure(f"malformed HTTP response: {exc}", sent=True))
            self.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self.status and not self._chunked_or_sized():
                self._deliver()  # a body delimited by the end of the connection
            else:
                stage = "while reading the response" if self._got_bytes else "before responding"
                self._fail(TransportFailure(f"the server closed the connection {stage}", sent=True))
        else:
            self._pool.forget(self)

    # ----------------------------------------------------------------- httptools callbacks

    def on_message_begin(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # a second response in the same read: as above
            self.close()
            raise _Unsolicited  # stops the parser (feed_data raises HttpParserCallbackError)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode(_ENCODING).lower()] = value.decode(_ENCODING)

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.status < 200:  # 1xx interim response: wait for the real one
            self.status = 0
            self._headers = {}
            return
        self._deliver()

    # ----------------------------------------------------------------- requests

    def _chunked_or_sized(self) -> bool:
        return "content-length" in self._headers or "transfer-encoding" in self._headers

    def _deliver(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            waiter.set_result(RawResponse(self.status, self._headers, body))

    def _fail(self, failure: TransportFailure) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(failure)

    def _on_timeout(self) -> None:
        self._fail(TransportFailure("timed out waiting for the response", sent=True, timeout=True))
        self.close()

    def send(self, data: bytes) -> asyncio.Future[RawResponse]:
        """Write one request; the future completes with its response (the pool enforces
        timeouts). A plain method returning the future: no coroutine per request."""
        transport = self._transport
        assert transport is not None
        waiter: asyncio.Future[RawResponse] = self._pool.loop_future()
        self._waiter = waiter
        self._headers = {}
        self._body = []
        self._got_bytes = False
        self.status = 0
        transport.write(data)
        return waiter

    def usable(self) -> bool:
        """Open and not closing: a request written now reaches the server's socket."""
        return self.alive and self._transport is not None and not self._transport.is_closing()

    def close(self) -> None:
        self._closed = True
        self.alive = False
        if self._transport is not None:
            self._transport.close()


class _TunnelReply(asyncio.Protocol):
    """Reads a proxy's answer to ``CONNECT``: its status line, up to the blank line."""

    def __init__(self) -> None:
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.line = ""
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        if self.status.done():
            return
        self._buffer += data
        head, found, _ = self._buffer.partition(b"\r\n\r\n")
        if not found and len(self._buffer) < 65536:
            return
        self.line = head.split(b"\r\n", 1)[0].decode(_ENCODING, "replace")[:200]
        parts = self.line.split(" ", 2)
        code = parts[1] if len(parts) > 1 else ""
        self.status.set_result(int(code) if code.isdigit() else 0)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.status.done():
            self.status.set_exception(ConnectionError("the proxy closed the connection"))


class ConnectionPool:
    """Keep-alive connections to one origin, at most ``max_connections`` at a time.

    Args:
        host, port: the origin.
        ssl_context: TLS context for https (``None`` for plain http).
        max_connections: the pool size (size it to the concurrency you run).
        idle_timeout: idle connections older than this are not reused (keep it below the
            server's keep-alive timeout; uvicorn's is 5 s).
        connect_timeout: seconds allowed to open a connection, through the proxy and the
            TLS handshake included (``None``: no limit).
        proxy: the proxy to go through, if any.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 256,
        idle_timeout: float = 4.0,
        connect_timeout: float | None = 10.0,
        proxy: ProxyRoute | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._proxy = proxy
        self._max = max(1, max_connections)
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout
        self._idle: collections.deque[_Connection] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self._open = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._busy: dict[_Connection, float] = {}  # connection -> response deadline
        self._sweeper: asyncio.TimerHandle | None = None
        self._tick = 1.0

    def __repr__(self) -> str:
        return f"ConnectionPool({self._host}:{self._port}, open={self._open})"

    @property
    def forwarding(self) -> bool:
        """Requests go to a proxy as they are (plain http origin): targets in absolute form,
        with the ``Proxy-Authorization`` header."""
        return self._proxy is not None and self._ssl is None

    async def request(self, head: bytes, body: bytes | None, timeout: float | None) -> RawResponse:
        """Send ``head`` (request line and headers, ending in a blank line) and ``body``."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._rebind(loop)
        conn = self._take_idle()
        if conn is None:
            conn = await self._checkout()
        data = head + body if body else head
        if timeout is not None:
            self._watch(conn, timeout)
        try:
            response = await conn.send(data)
        except BaseException:
            self._discard(conn)
            raise
        finally:
            if timeout is not None:
                self._busy.pop(conn, None)
        if conn.keep_alive and conn.alive and not self._closed:
            self._check_in(conn)
        else:
            self._discard(conn)
        return response

    def loop_future(self) -> asyncio.Future[RawResponse]:
        """A future on the pool's loop."""
        assert self._loop is not None
        return self._loop.create_future()

    # ----------------------------------------------------------------- timeouts

    def _watch(self, conn: _Connection, timeout: float) -> None:
        """Time out ``conn``'s response after ``timeout`` s (one sweeper, no timer per request)."""
        self._busy[conn] = time.monotonic() + timeout
        tick = min(1.0, max(0.01, timeout / 10))
        if tick < self._tick:
            self._tick = tick
        if self._sweeper is None and self._loop is not None:
            self._sweeper = self._loop.call_later(self._tick, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = time.monotonic()
        for conn in [c for c, deadline in self._busy.items() if deadline <= now]:
            del self._busy[conn]
            conn._on_timeout()
        if self._busy and self._loop is not None:
            self._sweeper = self._loop.call_later(self._tick, self._sweep)

    # ----------------------------------------------------------------- pool bookkeeping

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Connections belong to one event loop; a new loop starts with a fresh pool."""
        for conn in self._idle:
            with contextlib.suppress(RuntimeError):  # its loop is closed already
                conn.close()
        self._idle.clear()
        self._waiters.clear()
        self._busy.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._open = 0
        self._loop = loop

    def _take_idle(self) -> _Connection | None:
        idle = self._idle
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # most recently used first
            if conn.usable() and now - conn.idle_since < self._idle_timeout:
                return conn
            self._open -= 1
            conn.close()
        return None

    async def _checkout(self) -> _Connection:
        if self._closed:
            raise TransportFailure("the client is closed", sent=False)
        while self._open >= self._max:
            waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._check_in(waiter.result())  # type: ignore[arg-type]
                raise
            if conn is not None:
                if conn.usable():
                    return conn
                self._open -= 1
            # None: a slot was freed; loop to claim it
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise

    async def _connect(self) -> _Connection:
        conn = _Connection(self)
        proxy = self._proxy
        where = f"{self._host}:{self._port}" + (f" through the proxy {proxy.url}" if proxy else "")
        try:
            await asyncio.wait_for(self._open_connection(conn), self._connect_timeout)
        except asyncio.TimeoutError:
            raise TransportFailure(
                f"timed out connecting to {where}", sent=False, timeout=True
            ) from None
        except OSError as exc:
            raise connect_failure(where, exc) from None
        if not conn.usable():  # closed at once, or the server wrote before any request
            raise TransportFailure(f"the connection to {where} closed at once", sent=False)
        return conn

    async def _open_connection(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        proxy = self._proxy
        if proxy is None:
            await loop.create_connection(
                lambda: conn,
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl else None,
            )
            return
        proxy_tls = default_ssl_context() if proxy.scheme == "https" else None
        hostname = proxy.host if proxy_tls else None
        if self.forwarding:
            await loop.create_connection(
                lambda: conn, proxy.host, proxy.port, ssl=proxy_tls, server_hostname=hostname
            )
            return
        transport, reply = await loop.create_connection(
            _TunnelReply, proxy.host, proxy.port, ssl=proxy_tls, server_hostname=hostname
        )
        try:
            target = f"[{self._host}]" if ":" in self._host else self._host
            lines = [f"CONNECT {target}:{self._port} HTTP/1.1", f"Host: {target}:{self._port}"]
            if proxy.authorization is not None:
                lines.append(f"Proxy-Authorization: {proxy.authorization}")
            transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            status = await reply.status
            if not 200 <= status < 300:
                raise ConnectionError(f"the proxy refused the tunnel: {reply.line}")
            assert self._ssl is not None
            try:
                tls = await loop.start_tls(transport, conn, self._ssl, server_hostname=self._host)
            except TypeError:  # asyncio before Python 3.11 cannot nest TLS in a TLS transport
                raise ConnectionError(
                    "TLS inside a TLS tunnel (an https:// proxy to an https:// URL) needs "
                    "Python 3.11+ or uvloop; use an http:// proxy URL"
                ) from None
        except BaseException:
            transport.close()
            raise
        if tls is None:  # pragma: no cover - only a closing transport gives None
            raise ConnectionError("the tunnel closed during the TLS handshake")
        conn.connection_made(tls)

    def _check_in(self, conn: _Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def forget(self, conn: _Connection) -> None:
        """An idle connection was closed by the server: drop it from the pool."""
        try:
            self._idle.remove(conn)
        except ValueError:
            return
        self._open -= 1
        self._wake_one()

    def close_idle(self) -> None:
        """Close the idle connections now; the pool stays usable (it reconnects on demand).

        Call it on the connections' loop before that loop stops (e.g. a vector env's loop
        thread), so no socket outlives its loop.
        """
        while self._idle:
            self._open -= 1
            with contextlib.suppress(RuntimeError):
                self._idle.pop().close()

    def close(self) -> None:
        """Close idle connections now and busy ones when their response completes."""
        self._closed = True
        self.close_idle()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(TransportFailure("the client was closed", sent=False))
        self._waiters.clear()
