"""A lean HTTP/1.1 server for :class:`LabsServer`: httptools parsing on asyncio, no ASGI.

The default stack of ``labs-env serve``. It parses requests with httptools (the parser
uvicorn uses) and calls the sans-IO :meth:`LabsServer.handle` directly, without ASGI's scope
dict and receive/send coroutines, writing each response in one ``write``; that roughly halves
the server's CPU per request compared with uvicorn on this project's benchmark. Supported:
keep-alive, pipelining (answers in request order), ``Content-Length`` and chunked request
bodies, ``Expect: 100-continue``, ``Connection: close``, idle keep-alive expiry and a graceful
shutdown. A malformed request gets a 400 and the connection is closed.

Injected faults behave as on uvicorn: latency is an ``asyncio.sleep`` before the answer, and a
dropped connection or a lost response closes the connection without an answer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import unquote

import httptools

from labs_env.server.labs_server import MAX_BODY_BYTES, LabsServer
from labs_env.server.wire import Response, error_body

__all__ = ["NativeHTTPServer"]

logger = logging.getLogger("labs_env.server")

#: The request headers the server reads, by their lower-case wire name.
_WANTED = {b"authorization": "authorization", b"idempotency-key": "idempotency-key"}
_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n" for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_sleep = asyncio.sleep  # injected latency (a module attribute so tests can observe it)


def _encode(response: Response, keep_alive: bool) -> bytes:
    """Status line, headers and body of ``response`` as one buffer."""
    status_line = _STATUS_LINES.get(response.status) or f"HTTP/1.1 {response.status} -\r\n"
    head = status_line + "".join(f"{name}: {value}\r\n" for name, value in response.headers)
    head += f"content-length: {len(response.body)}\r\n"
    if not keep_alive:
        head += "connection: close\r\n"
    return (head + "\r\n").encode("latin-1") + response.body


class _Connection(asyncio.Protocol):
    """One client connection: parses requests and writes their answers in order."""

    def __init__(self, owner: NativeHTTPServer) -> None:
        self._owner = owner
        self._handle = owner.labs.handle
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._receiving = False
        self._queue: collections.deque[tuple[Response, bool]] = collections.deque()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False  # close once the queued answers are written
        self.last_active = 0.0

    @property
    def idle(self) -> bool:
        """No request is being received or answered."""
        return not self._receiving and not self._queue

    # ------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._owner.connections.add(self)
        self.last_active = self._owner.now()

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.connections.discard(self)
        self._queue.clear()
        if self._writer is not None:
            self._writer.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.close_when_done()  # the request was answered; the upgrade is not supported
        except httptools.HttpParserError:
            problem = "body too large" if self._too_large else "malformed HTTP request"
            self._fail(f"Invalid request: {problem}")

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()  # a client that does not read gets no more answers

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    # ------------------------------------------------------------------ parser callbacks

    def on_message_begin(self) -> None:
        self._receiving = True
        self._url = b""
        self._headers = {}
        self._body = []
        self._size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        wanted = _WANTED.get(name)
        if wanted is not None:
            self._headers[wanted] = value.decode("latin-1")
        elif name == b"expect" and value.lower() == b"100-continue" and self._transport:
            self._transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY_BYTES:
            self._too_large = True
            raise ValueError("request body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._receiving = False
        parser = self._parser
        method = parser.get_method().decode("ascii")
        path = self._url.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        keep_alive = parser.should_keep_alive() and not self._owner.stopping
        try:
            response = self._handle(method, path, self._headers, body)
        except Exception:  # pragma: no cover - LabsServer.handle answers its own errors
            logger.exception("internal error while handling %s %s", method, path)
            response = Response(500, error_body("Internal server error", ""), [])
        if method == "HEAD":  # the head of the answer only, so the framing stays intact
            response.body = b""
        self._respond(response, keep_alive)

    # ------------------------------------------------------------------ answers

    def _respond(self, response: Response, keep_alive: bool) -> None:
        if not keep_alive:
            self._closing = True
        if not self._queue and not response.delay:
            self._write(response, keep_alive)
            return
        self._queue.append((response, keep_alive))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Write queued answers in order, each after its injected delay."""
        while self._queue:
            response, keep_alive = self._queue[0]
            if response.delay:
                await _sleep(response.delay)
            self._queue.popleft()
            self._write(response, keep_alive)
        self._writer = None

    def _write(self, response: Response, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self.last_active = self._owner.now()
        if response.drop:
            transport.close()  # the client sees the connection closed without an answer
            return
        transport.write(_encode(response, keep_alive))
        if not keep_alive or (self._closing and self.idle):
            transport.close()

    def _fail(self, message: str) -> None:
        """Answer a request that cannot be parsed with a 400, then close the connection."""
        self._receiving = False
        request_id = self._owner.labs.new_request_id()
        headers = [("content-type", "application/json"), ("x-request-id", request_id)]
        self._respond(Response(400, error_body(message, request_id), headers), False)

    def close_when_done(self) -> None:
        """Close the connection once the answers already queued are written."""
        self._closing = True
        if self.idle and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close the connection now."""
        if self._transport is not None:
            self._transport.abort()


class NativeHTTPServer:
    """Serves one :class:`LabsServer` over HTTP/1.1 on an asyncio event loop.

    Args:
        labs: the server answering the requests.
        keep_alive_s: idle keep-alive connections are closed after this long.
        shutdown_grace_s: on shutdown, requests in progress get this long to finish.
    """

    def __init__(
        self, labs: LabsServer, *, keep_alive_s: float = 30.0, shutdown_grace_s: float = 5.0
    ) -> None:
        self.labs = labs
        self.keep_alive_s = keep_alive_s
        self.shutdown_grace_s = shutdown_grace_s
        self.connections: set[_Connection] = set()
        self.stopping = False
        self.started = False
        self.now: Callable[[], float] = lambda: 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def run(self, sock: socket.socket, *, handle_signals: bool = False) -> None:
        """Serve on ``sock`` in this thread (uvloop when installed) until :meth:`stop`, or
        SIGINT / SIGTERM when ``handle_signals``."""
        loop = _new_event_loop()
        try:
            loop.run_until_complete(self._main(sock, handle_signals))
        finally:
            loop.close()

    def stop(self) -> None:
        """Ask :meth:`run` to shut down (callable from any thread)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)

    async def _main(self, sock: socket.socket, handle_signals: bool) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        if handle_signals:
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    self._loop.add_signal_handler(signal_number, self._stop.set)
        await self.serve(sock, self._stop, on_started=lambda: setattr(self, "started", True))

    async def serve(
        self, sock: socket.socket, stop: asyncio.Event, on_started: Callable[[], None] | None = None
    ) -> None:
        """Serve on the listening ``sock`` until ``stop`` is set, then shut down gracefully."""
        loop = asyncio.get_running_loop()
        self.now = loop.time
        server = await loop.create_server(lambda: _Connection(self), sock=sock)
        sweeper = loop.create_task(self._expire_idle())
        if on_started is not None:
            on_started()
        try:
            await stop.wait()
        finally:
            server.close()
            sweeper.cancel()
            await self._shutdown()

    async def _shutdown(self) -> None:
        self.stopping = True
        for connection in list(self.connections):
            connection.close_when_done()
        deadline = self.now() + self.shutdown_grace_s
        while self.connections and self.now() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            connection.abort()
        await asyncio.sleep(0)  # let the aborted transports report connection_lost

    async def _expire_idle(self) -> None:
        period = max(0.05, min(1.0, self.keep_alive_s / 4))
        while True:
            await asyncio.sleep(period)
            cutoff = self.now() - self.keep_alive_s
            for connection in list(self.connections):
                if connection.idle and connection.last_active < cutoff:
                    connection.close_when_done()


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
