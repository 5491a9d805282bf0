"""Raw HTTP servers on 127.0.0.1 for transport tests: a plain TCP listener (port 0) whose
requests are answered by a function, each connection in its own thread, so the same server
serves the sync and the async client. Also a small forward/CONNECT proxy.

Example::

    def answer(exchange: Exchange) -> None:
        exchange.send(http_response({"ok": True}))

    with Loopback(answer) as server:
        ...  # base_url=server.url
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def http_response(
    payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> bytes:
    """One complete JSON response (Content-Length framed, keep-alive)."""
    body = json.dumps(payload).encode()
    lines = [
        f"HTTP/1.1 {status} X",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Request:
    """One request as received: the connection number (1-based), head and body."""

    connection: int
    head: bytes
    body: bytes

    @property
    def line(self) -> str:
        """The request line, e.g. ``POST /api/v1/episodes HTTP/1.1``."""
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def target(self) -> str:
        return self.line.split(" ")[1]

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


class _Reader:
    """Reads HTTP messages (Content-Length framed) from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except OSError:
            return False
        self.buffer += data
        return bool(data)

    def message(self) -> tuple[bytes, bytes] | None:
        """``(head, body)`` of the next message, ``None`` at the end of the connection."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                return None
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        self.buffer = rest
        while len(self.buffer) < length:
            if not self._fill():
                return None
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return head, body


@dataclass
class Exchange:
    """One request and the connection to answer it on."""

    sock: socket.socket
    request: Request
    index: int  # 0-based, across all connections of the server

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


Handler = Callable[[Exchange], "bool | None"]


@dataclass
class Loopback:
    """A threaded HTTP/1.1 server on 127.0.0.1; ``handler`` answers each request (return
    ``False`` to close the connection afterwards). ``tls``: serve https with this context."""

    handler: Handler
    tls: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._stopped = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> Loopback:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped = True
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
                self._open.append(sock)
            threading.Thread(target=self._serve, args=(sock, number), daemon=True).start()

    def _serve(self, raw: socket.socket, number: int) -> None:
        sock = raw
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(raw, server_side=True)
                with self._lock:
                    self._open.append(sock)
            reader = _Reader(sock)
            while (message := reader.message()) is not None:
                request = Request(number, *message)
                with self._lock:
                    self.requests.append(request)
                    index = len(self.requests) - 1
                if self.handler(Exchange(sock, request, index)) is False:
                    break
        except (OSError, ssl.SSLError) as exc:
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sock.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@dataclass
class Proxy:
    """A forward proxy on 127.0.0.1: ``CONNECT`` tunnels and absolute-form http requests, to
    127.0.0.1 targets only. Records every request head it received (``seen``) and, with
    ``credentials`` (``user:password``), answers 407 to requests without them; with ``tls``,
    clients reach it over TLS."""

    credentials: str | None = None
    tls: ssl.SSLContext | None = None  # an https:// proxy
    seen: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = Loopback(self._handle, tls=self.tls)

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> Proxy:
        self.server.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.__exit__(*exc_info)

    def _authorized(self, request: Request) -> bool:
        if self.credentials is None:
            return True
        import base64

        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
        return request.header("proxy-authorization") == expected

    def _handle(self, exchange: Exchange) -> bool:
        request = exchange.request
        self.seen.append(request)
        if not self._authorized(request):
            exchange.send(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
            )
            return False
        method, target, _ = request.line.split(" ", 2)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            assert host == "127.0.0.1", target
            upstream = socket.create_connection((host, int(port)))
            exchange.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=_pipe, args=(upstream, exchange.sock), daemon=True).start()
            _pipe(exchange.sock, upstream)
            return False
        assert target.startswith("http://127.0.0.1:"), target
        authority, _, path = target.removeprefix("http://").partition("/")
        upstream = socket.create_connection(("127.0.0.1", int(authority.rpartition(":")[2])))
        with upstream:
            lines = request.head.split(b"\r\n")
            lines[0] = f"{method} /{path} HTTP/1.1".encode()
            lines = [line for line in lines if not line.lower().startswith(b"proxy-")]
            upstream.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + request.body)
            reader = _Reader(upstream)
            answer = reader.message()
            if answer is None:
                return False
            exchange.send(answer[0] + b"\r\n\r\n" + answer[1])
        return True
