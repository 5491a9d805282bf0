"""The raw-socket floor used by the benchmarks: one keep-alive HTTP/1.1 connection that writes
a pre-encoded request and frames the answer by ``Content-Length`` only (no header or body
parsing). ``bench_client.py`` (closed loop) and ``_raw_lockstep.py`` (lockstep) both use it.
"""

from __future__ import annotations

import asyncio

_LENGTH = b"content-length:"


class RawConnection(asyncio.Protocol):
    """One keep-alive connection with at most one response awaited."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[: end + 2]).lower()
        start = head.index(_LENGTH) + len(_LENGTH)
        length = int(head[start : head.index(b"\r\n", start)])
        if len(self.buffer) >= end + 4 + length:
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(body)

    def send(self, request: bytes) -> asyncio.Future[bytes]:
        """Write ``request``; the future completes with the response body."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
