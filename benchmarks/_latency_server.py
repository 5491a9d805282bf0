"""A loopback HTTP server with a fixed latency, for the client benchmark.

A raw ASGI app on uvicorn (uvloop + httptools) answering every request with the same ~2 KB
turn-shaped JSON body after ``asyncio.sleep(latency)``. Run it in its own process::

    python benchmarks/_latency_server.py --port 8765 --latency 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def turn_body(size: int = 2000) -> bytes:
    """A valid ``TurnResult`` JSON body padded to about ``size`` bytes."""
    payload: dict[str, Any] = {
        "turn": 1,
        "observation": {"role": "assistant", "content": ""},
        "reward": 0.42,
        "episode_complete": False,
        "scores": {"D1_InformationGathering": 0.8, "D2_GoalProgress": 0.7},
        "request_id": "req_bench",
    }
    base = len(json.dumps(payload).encode())
    payload["observation"]["content"] = "x" * max(0, size - base)
    return json.dumps(payload).encode()


def make_app(latency: float) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    body = turn_body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", b"req_bench"),
    ]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    done = {"type": "http.response.body", "body": body}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:  # drain the request body
            message = await receive()
            more = message.get("more_body", False)
        await asyncio.sleep(latency)
        await send(start)
        await send(done)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.latency),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
