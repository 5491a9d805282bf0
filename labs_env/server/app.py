"""The server on a real socket: a raw ASGI app (no framework) and the two HTTP stacks.

:func:`serve` runs it in the foreground (``labs-env serve``); :func:`run_in_thread` runs it in
a background thread for tests and scripts. Both take ``http``: ``"native"`` (default; the lean
httptools server of :mod:`labs_env.server.http_server`, calling the core directly) or
``"uvicorn"`` (this ASGI app on uvicorn with httptools through
:mod:`labs_env.server.http_protocol`). Both prefer uvloop when installed. Injected latency is
an ``asyncio.sleep``; a dropped connection or lost response closes the connection, so the
client gets no usable response.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, Literal

from labs_env.server.http_protocol import http_protocol
from labs_env.server.http_server import NativeHTTPServer
from labs_env.server.labs_server import LabsServer, default_server

__all__ = [
    "HTTP_STACKS",
    "HttpStack",
    "LabsASGIApp",
    "bind_socket",
    "create_app",
    "run_in_thread",
    "serve",
]

HttpStack = Literal["native", "uvicorn"]
#: The HTTP stacks :func:`serve` and :func:`run_in_thread` can run.
HTTP_STACKS: tuple[str, ...] = ("native", "uvicorn")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_UNFINISHED = "ASGI callable returned without completing response."
_DROP_HEADERS = [(b"content-length", b"1")]
#: The only request headers the server reads (ASGI header names are lower-case).
_WANTED_HEADERS = frozenset((b"authorization", b"idempotency-key"))
LOOPBACK_HOSTS = frozenset(("127.0.0.1", "localhost", "::1"))


class _HideInjectedDrops(logging.Filter):
    """uvicorn logs an error for every response an app leaves unfinished; ours are on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _UNFINISHED


class LabsASGIApp:
    """An ASGI 3 application serving one :class:`LabsServer`.

    Args:
        server: the server (default: the process-wide :func:`default_server`).
    """

    def __init__(self, server: LabsServer | None = None) -> None:
        self.server = server if server is not None else default_server()
        uvicorn_errors = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, _HideInjectedDrops) for f in uvicorn_errors.filters):
            uvicorn_errors.addFilter(_HideInjectedDrops())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        headers = {}
        for name, value in scope["headers"]:
            if name in _WANTED_HEADERS:
                headers[name.decode("latin-1")] = value.decode("latin-1")
        response = self.server.handle(scope["method"], scope["path"], headers, body)
        if response.delay:
            await asyncio.sleep(response.delay)
        if response.drop:
            # Announce a body and close without it: the client sees a broken connection.
            await send({"type": "http.response.start", "status": 200, "headers": _DROP_HEADERS})
            return
        raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        raw_headers.append((b"content-length", str(len(response.body)).encode()))
        await send(
            {"type": "http.response.start", "status": response.status, "headers": raw_headers}
        )
        await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(server: LabsServer | None = None) -> LabsASGIApp:
    """The ASGI app for ``server`` (e.g. ``uvicorn.run(create_app(), ...)``)."""
    return LabsASGIApp(server)


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket (port 0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _uvicorn_server(
    server: LabsServer | None, log_level: str, keep_alive_s: float
) -> Any:  # uvicorn.Server
    try:
        import uvicorn
    except ImportError:
        raise ImportError(
            "http='uvicorn' needs uvicorn: install the 'serve' extra (pip install '.[serve]' "
            "in a checkout) "
            "(or use the default http='native')"
        ) from None

    config = uvicorn.Config(
        create_app(server),
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=http_protocol(),
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # no X-Forwarded-* rewriting middleware on the hot path
        log_level=log_level,
        timeout_keep_alive=int(keep_alive_s),
        server_header=False,
        date_header=False,
    )
    return uvicorn.Server(config)


def serve(
    server: LabsServer | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8700,
    log_level: str = "warning",
    keep_alive_s: float = 30.0,
    on_ready: Callable[[str], None] | None = None,
    http: HttpStack = "native",
) -> None:
    """Serve ``server`` on ``host:port`` until interrupted (Ctrl-C or SIGTERM).

    Args:
        server: the server (default: :func:`default_server`).
        host: the address to bind; loopback unless you mean to expose it.
        port: the port (0: any free port).
        log_level: uvicorn's log level (``http="uvicorn"`` only).
        keep_alive_s: idle keep-alive connections are closed after this long.
        on_ready: called with the base URL once the socket is bound.
        http: ``"native"`` (the lean httptools server) or ``"uvicorn"`` (the ASGI app).
    """
    runner = _runner(server, http, log_level, keep_alive_s)
    sock = bind_socket(host, port)
    if on_ready is not None:
        on_ready(base_url(sock))
    if isinstance(runner, NativeHTTPServer):
        runner.run(sock, handle_signals=True)
    else:
        runner.run(sockets=[sock])


def _runner(server: LabsServer | None, http: str, log_level: str, keep_alive_s: float) -> Any:
    """A :class:`NativeHTTPServer` or a ``uvicorn.Server`` for ``server``."""
    if http == "native":
        return NativeHTTPServer(server or default_server(), keep_alive_s=keep_alive_s)
    if http == "uvicorn":
        return _uvicorn_server(server, log_level, keep_alive_s)
    raise ValueError(f"http must be one of {list(HTTP_STACKS)}, got {http!r}")


@contextlib.contextmanager
def run_in_thread(
    server: LabsServer | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    keep_alive_s: float = 30.0,
    startup_timeout_s: float = 10.0,
    http: HttpStack = "native",
) -> Iterator[str]:
    """Serve ``server`` from a background thread; yields the base URL, stops on exit.

    ``http`` picks the stack as in :func:`serve`.

    Example:
        >>> import httpx
        >>> from labs_env.server import LabsServer, run_in_thread
        >>> with run_in_thread(LabsServer()) as url:
        ...     httpx.get(f"{url}/health").status_code
        200
    """
    runner = _runner(server, http, log_level, keep_alive_s)
    sock = bind_socket(host, port)
    native = isinstance(runner, NativeHTTPServer)
    thread = threading.Thread(
        target=runner.run,
        args=(sock,) if native else (),
        kwargs={} if native else {"sockets": [sock]},
        name="labs-server",
        daemon=True,
    )
    thread.start()
    try:
        waited = 0.0
        while not runner.started:
            if not thread.is_alive() or waited > startup_timeout_s:
                raise RuntimeError("the local Labs server did not start")
            threading.Event().wait(0.01)
            waited += 0.01
        yield base_url(sock)
    finally:
        if native:
            runner.stop()
        else:
            runner.should_exit = True
        thread.join(timeout=startup_timeout_s)
        sock.close()
