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

from _raw_http import RawConnection

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


async def _run(n: int, url: str, key: str, action: str, seconds: float) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(n):
        _, protocol = await loop.create_connection(RawConnection, host, port)
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
        conn.close()
    return {"env_steps": steps * n, "elapsed": elapsed, "cpu": cpu}


def raw_lockstep(n: int, url: str, key: str, action: str, seconds: float) -> dict[str, Any]:
    """Env-steps, elapsed and CPU seconds of lockstep raw-socket steps for ``seconds``."""
    from labs_env.rollout.event_loop import run_sync

    return run_sync(_run(n, url, key, action, seconds))
