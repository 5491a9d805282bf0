"""A latency-only Labs server for throughput benchmarks: the Labs wire protocol, no simulation.

The full local server (``labs-env serve``) runs the persona and seven scorers on every turn —
milliseconds of CPU per request, so on a 2-core machine it, not the client, caps throughput at
a few hundred turns per second. This server answers the same endpoints with canned, valid
payloads a fixed latency after each request arrives (a raw asyncio protocol with the httptools
parser on uvloop: ~4x less CPU per request than a uvicorn ASGI app, so the server stays far
from being the limit even at N=256 on 2 cores), statelessly: a turn's number is the count of
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
from collections.abc import Callable
from typing import Any

import httptools
import uvloop

COLLECTION = "bench"
SCENARIO = "echo"
_ASSISTANT = b'"role":"assistant"'
_REPLY = (
    "Thanks for checking in. The claim was filed six weeks ago and I have not heard back; "
    "the adjuster never called. I have the claim number and photos if you need them. "
) * 2


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def make_answer(max_turns: int) -> Callable[[str, bytes], bytes]:
    """The canned answer (a JSON body) to a request path and body."""
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

    def answer(path: str, body: bytes) -> bytes:
        if path.endswith("/turns"):
            count = body.count(_ASSISTANT)
            return turns[min(max(count, 1), max_turns)]
        if path.endswith("/episodes"):
            return _json(
                {
                    "episode_id": f"ep_{next(ids)}",
                    "initial_observation": {"role": "assistant", "content": _REPLY},
                    "tools": [],
                    "request_id": "req_create",
                }
            )
        if path.endswith("/terminate"):
            return b'{"episode_id":"ep","episode_complete":true,"request_id":"req_t"}'
        if path.endswith("/catalog"):
            return catalog
        return b'{"status":"ok"}'

    return answer


class _Protocol(asyncio.Protocol):
    """One keep-alive connection: httptools parses requests; each answer is written after
    ``latency`` seconds by a loop timer (no task per request)."""

    def __init__(self, answer: Callable[[str, bytes], bytes], latency: float) -> None:
        self._answer = answer
        self._latency = latency
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        path = httptools.parse_url(self._url).path.decode("latin-1")
        data = self._answer(path, b"".join(self._body))
        self._url, self._body = b"", []
        response = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_bench\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(data), data)
        )
        self._loop.call_later(self._latency, self._write, response)

    def _write(self, response: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(response)


async def _serve(
    sock: socket.socket, answer: Callable[[str, bytes], bytes], latency: float
) -> None:
    server = await asyncio.get_running_loop().create_server(
        lambda: _Protocol(answer, latency), sock=sock, backlog=4096
    )
    print(f"LISTENING http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


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
    uvloop.run(_serve(sock, make_answer(args.max_turns), args.latency))


if __name__ == "__main__":
    main()
