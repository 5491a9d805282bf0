"""The lockstep ceiling on this machine: raw asyncio sockets, no client library.

N keep-alive connections; a "step" writes one pre-encoded submit-turn request on each and
waits for all N responses (framed by ``Content-Length``, bodies not parsed). No episodes,
validation, JSON or bookkeeping: what is left is the server, the loopback network and the
event loop. ``bench_vector.py`` prints it next to LabsVectorEnv as the reference row, so the
library's ratio can be read against what raw sockets reach in the same run.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

_HISTORY_TURNS = 10  # a mid-episode history (the benchmark's episodes have 20 turns)


def _request(host: str, port: int, key: str, action: str) -> bytes:
    messages = [{"role": "user", "content": "Hi, I need help with my claim."}]
    for _ in range(_HISTORY_TURNS):
        messages += [
            {"role": "assistant", "content": action},
            {"role": "user", "content": "Thanks for checking in. " * 8},
        ]
    messages.append({"role": "assistant", "content": action})
    body = json.dumps({"id": "ep_raw", "messages": messages}, separators=(",", ":")).encode()
    head = (
        f"POST /api/v1/episodes/ep_raw/turns HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one response awaited."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[: end + 2]).lower()
        start = head.index(b"content-length:") + len(b"content-length:")
        length = int(head[start : head.index(b"\r\n", start)])
        if len(self.buffer) >= end + 4 + length:
            del self.buffer[: end + 4 + length]
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    def send(self, data: bytes) -> asyncio.Future[None]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


async def _run(n: int, url: str, key: str, action: str, seconds: float) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(n):
        _, protocol = await loop.create_connection(_Connection, host, port)
        connections.append(protocol)
    request = _request(host, port, key, action)

    async def step() -> None:
        await asyncio.gather(*(conn.send(request) for conn in connections))

    for _ in range(3):  # warm up
        await step()
    steps, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        await step()
        steps += 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    for conn in connections:
        assert conn.transport is not None
        conn.transport.close()
    return {"env_steps": steps * n, "elapsed": elapsed, "cpu": cpu}


def raw_lockstep(n: int, url: str, key: str, action: str, seconds: float) -> dict[str, Any]:
    """Env-steps, elapsed and CPU seconds of lockstep raw-socket steps for ``seconds``."""
    from labs_env._loop import run_sync  # uvloop, as the library uses

    return run_sync(_run(n, url, key, action, seconds))
