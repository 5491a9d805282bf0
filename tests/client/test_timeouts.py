"""``timeout`` bounds a whole attempt (send, then the whole response), not each read: a server
trickling its answer one byte at a time cannot hold a client past the timeout."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from labs_env import APITimeoutError, AsyncLabsClient, LabsClient
from tests.kit.loopback import Exchange, Loopback
from tests.kit.scripted_http import KEY, MESSAGES, TURN


def trickle(part: str) -> Loopback:
    """Sends the ``"body"`` (or the ``"head"`` too) one byte every 50 ms (~10 s in all)."""
    body = json.dumps(TURN).encode() + b" " * 200

    def answer(exchange: Exchange) -> bool:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        data = head % len(body) + body
        if part == "body":
            exchange.send(data[: len(head)])
            data = data[len(head) :]
        try:
            for index in range(len(data)):
                exchange.send(data[index : index + 1])
                time.sleep(0.05)
        except OSError:  # the client gave up
            pass
        return False

    return Loopback(answer)


@pytest.mark.parametrize("part", ["body", "head"])
def test_sync_timeout_bounds_a_trickled_response(part: str) -> None:
    with trickle(part) as server, LabsClient(KEY, server.url, timeout=1.0, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            client.submit_turn("ep_1", MESSAGES)
        assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("part", ["body", "head"])
def test_async_timeout_bounds_a_trickled_response(part: str) -> None:
    async def main() -> None:
        async with AsyncLabsClient(KEY, server.url, timeout=1.0, max_retries=0) as client:
            await client.submit_turn("ep_1", MESSAGES)

    with trickle(part) as server:
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            asyncio.run(main())
        assert time.monotonic() - started < 3.0


def test_an_httpx_timeout_bounds_the_response_by_its_read_value() -> None:
    import httpx

    timeout = httpx.Timeout(10.0, read=1.0)
    with trickle("body") as server, LabsClient(KEY, server.url, timeout=timeout) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            client.submit_turn("ep_1", MESSAGES)
        assert time.monotonic() - started < 3.0
