"""A latency-only Labs server for throughput benchmarks: the Labs wire protocol, no simulation.

The full local server (``labs-env serve``) runs the persona and seven scorers on every turn —
milliseconds of CPU per request, so on a 2-core machine it, not the client, caps throughput at
a few hundred turns per second. This server answers the same endpoints with canned, valid
payloads after a fixed ``asyncio.sleep(latency)``, statelessly: a turn's number is the count of
assistant messages in the submitted history (the client sends the full history), and the
episode completes at ``--max-turns``. Run it in its own process::

    python benchmarks/_lite_labs_server.py --port 0 --latency 0.05 --max-turns 20

It prints ``LISTENING http://127.0.0.1:<port>`` once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

COLLECTION = "bench"
SCENARIO = "echo"
_ASSISTANT = b'"role":"assistant"'
_REPLY = (
    "Thanks for checking in. The claim was filed six weeks ago and I have not heard back; "
    "the adjuster never called. I have the claim number and photos if you need them. "
) * 2


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def make_app(latency: float, max_turns: int) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app (see the module docstring)."""
    ids = itertools.count(1)
    catalog = _json(
        {
            "collections": [
                {
                    "slug": COLLECTION,
                    "name": "Benchmark",
                    "scenarios": [{"slug": SCENARIO, "name": "Echo", "max_turns": max_turns}],
                }
            ],
            "request_id": "req_catalog",
        }
    )
    turns = [
        _json(
            {
                "turn": n,
                "observation": {"role": "assistant", "content": _REPLY},
                "reward": round(0.5 + 0.02 * (n % 10), 3),
                "episode_complete": n >= max_turns,
                "scores": {"D1_InformationGathering": 0.8, "D2_GoalProgress": 0.5},
                **({"terminal_reason": "max_turns_reached"} if n >= max_turns else {}),
                "request_id": f"req_turn_{n}",
            }
        )
        for n in range(max_turns + 1)
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        path: str = scope["path"]
        if path.endswith("/turns"):
            count = body.count(_ASSISTANT)
            data = turns[min(max(count, 1), max_turns)]
        elif path.endswith("/episodes"):
            data = _json(
                {
                    "episode_id": f"ep_{next(ids)}",
                    "initial_observation": {"role": "assistant", "content": _REPLY},
                    "tools": [],
                    "request_id": "req_create",
                }
            )
        elif path.endswith("/terminate"):
            data = b'{"episode_id":"ep","episode_complete":true,"request_id":"req_t"}'
        elif path.endswith("/catalog"):
            data = catalog
        else:
            data = b'{"status":"ok"}'
        await asyncio.sleep(latency)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            (b"x-request-id", b"req_bench"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--max-turns", type=int, default=20)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(4096)
    config = uvicorn.Config(
        make_app(args.latency, args.max_turns),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        server_header=False,
        date_header=False,
    )
    print(f"LISTENING http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
