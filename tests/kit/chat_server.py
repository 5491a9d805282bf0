"""A tiny fake OpenAI chat-completions server on 127.0.0.1 (port 0) for policy tests.

Tests receive a running one from the ``fake_chat`` fixture (``tests/conftest.py``) and script
its answers with :meth:`FakeChatServer.reply` / :meth:`FakeChatServer.fail`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeChatServer:
    """Answers ``POST /v1/chat/completions`` from a script of ``(status, body, headers)``.

    When the script runs out, the last entry repeats. Every request is kept in ``requests``
    as ``{"path", "headers", "body"}``.
    """

    def __init__(self) -> None:
        self.script: list[tuple[int, Any, dict[str, str]]] = []
        self.requests: list[dict[str, Any]] = []
        self.base_url = ""
        #: When set, builds the assistant message from the request body (the script is unused).
        self.responder: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def reply(self, message: dict[str, Any], status: int = 200, **headers: str) -> None:
        self.script.append((status, _completion(message), headers))

    def fail(self, status: int, body: Any, **headers: str) -> None:
        self.script.append((status, body, headers))

    def _next(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if self.responder is not None:
            return 200, _completion(self.responder(body)), {}
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def _completion(message: dict[str, Any]) -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}
    return {"id": "chatcmpl-1", "object": "chat.completion", "choices": [choice]}


@contextmanager
def serve_fake_chat() -> Iterator[FakeChatServer]:
    """Serve a fresh :class:`FakeChatServer` on 127.0.0.1 (port 0) until the block ends."""
    fake = FakeChatServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            request = json.loads(raw)
            fake.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": request}
            )
            status, body, headers = fake._next(request)
            payload = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
