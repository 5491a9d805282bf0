"""``LocalTransport``: a :class:`LabsServer` behind httpx, in process, with no sockets.

One object serves both ``httpx.Client`` and ``httpx.AsyncClient``. Injected faults look like
the real thing: a dropped connection or a lost response raises the ``httpx`` exception a
socket would (``httpx.RemoteProtocolError``), and latency is a real ``time.sleep`` /
``asyncio.sleep``.

Example:
    >>> import httpx
    >>> from labs_env.server import DEMO_API_KEY, LocalTransport
    >>> with httpx.Client(transport=LocalTransport(), base_url="http://labs.local") as http:
    ...     http.get("/api/v1/catalog", headers={"Authorization": f"Bearer {DEMO_API_KEY}"})
    <Response [200 OK]>
"""

from __future__ import annotations

import asyncio
import time

import httpx

from labs_env.server.labs_server import LabsServer, default_server
from labs_env.server.wire import Response

__all__ = ["LocalTransport"]

_DISCONNECTED = "Server disconnected without sending a response."


class LocalTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Serve a :class:`LabsServer` to httpx clients in process.

    Args:
        server: the server to talk to (default: the process-wide :func:`default_server`).
        sleep: honour injected latency with real sleeps; ``False`` skips them (fast tests
            that still exercise the fault paths).
    """

    def __init__(self, server: LabsServer | None = None, *, sleep: bool = True) -> None:
        self.server = server if server is not None else default_server()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"LocalTransport({self.server!r})"

    def _answer(self, request: httpx.Request) -> Response:
        return self.server.handle(
            request.method, request.url.raw_path.decode("ascii"), request.headers, request.content
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Synchronous request (``httpx.Client``)."""
        request.read()
        response = self._answer(request)
        if response.delay and self._sleep:
            time.sleep(response.delay)
        return _to_httpx(response, request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Asynchronous request (``httpx.AsyncClient``)."""
        await request.aread()
        response = self._answer(request)
        if response.delay and self._sleep:
            await asyncio.sleep(response.delay)
        else:
            # A real request always suspends; without this, concurrent tasks on the embedded
            # server would run to completion one after another, starving consumers and Ctrl-C.
            await asyncio.sleep(0)
        return _to_httpx(response, request)


def _to_httpx(response: Response, request: httpx.Request) -> httpx.Response:
    if response.drop:
        raise httpx.RemoteProtocolError(_DISCONNECTED, request=request)
    return httpx.Response(
        response.status, headers=response.headers, content=response.body, request=request
    )
