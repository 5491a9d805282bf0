"""A response written twice on a keep-alive connection must never answer the next request.

The server (or a broken proxy) answers episode A's turn twice; the next request on that
connection is episode B's turn, at the same turn number. Bytes that arrive while no request
is waiting make the connection unusable: both clients drop it and B gets B's answer.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from labs_env import AsyncLabsClient, LabsClient
from tests.kit.loopback import Exchange, Loopback, http_response
from tests.kit.scripted_http import KEY, MESSAGES, TURN


def turn_for(episode_id: str) -> bytes:
    return http_response({**TURN, "request_id": f"req_{episode_id}"})


def duplicating_server(*, same_write: bool) -> tuple[Loopback, threading.Event]:
    """Answers the first request twice (in one write, or a second write 50 ms later); every
    other request once, with ``request_id=req_<episode id>``. The event is set once both
    copies are written."""
    both_sent = threading.Event()

    def answer(exchange: Exchange) -> None:
        episode = json.loads(exchange.request.body)["id"]
        reply = turn_for(episode)
        if exchange.index > 0:
            exchange.send(reply)
            return
        if same_write:
            exchange.send(reply + reply)
        else:
            exchange.send(reply)
            time.sleep(0.05)  # the server's pacing: the client reads the first copy alone
            exchange.send(reply)
        both_sent.set()

    return Loopback(answer), both_sent


@pytest.mark.parametrize("same_write", [True, False], ids=["same-write", "later-write"])
def test_sync_client_drops_a_connection_with_a_stale_response(same_write: bool) -> None:
    loopback, both_sent = duplicating_server(same_write=same_write)
    with loopback as server:
        with LabsClient(api_key=KEY, base_url=server.url, max_retries=0) as client:
            first = client.submit_turn("ep_A", MESSAGES)
            assert both_sent.wait(10)  # the stale copy is on the wire: the connection is idle
            second = client.submit_turn("ep_B", MESSAGES)
        assert first.request_id == "req_ep_A"
        assert second.request_id == "req_ep_B"
        assert [r.connection for r in server.requests] == [1, 2]


@pytest.mark.parametrize("same_write", [True, False], ids=["same-write", "later-write"])
def test_async_client_drops_a_connection_with_a_stale_response(same_write: bool) -> None:
    async def main() -> tuple[str | None, str | None]:
        async with AsyncLabsClient(api_key=KEY, base_url=server.url, max_retries=0) as client:
            first = await client.submit_turn("ep_A", MESSAGES)
            assert await asyncio.to_thread(both_sent.wait, 10)
            for _ in range(3):  # loop turns: the stale bytes reach the connection
                await asyncio.sleep(0)
            second = await client.submit_turn("ep_B", MESSAGES)
        return first.request_id, second.request_id

    loopback, both_sent = duplicating_server(same_write=same_write)
    with loopback as server:
        assert asyncio.run(main()) == ("req_ep_A", "req_ep_B")
        assert [r.connection for r in server.requests] == [1, 2]


def test_unsolicited_bytes_on_an_idle_connection_close_it() -> None:
    """Anything the server writes between responses (here: garbage) poisons the connection."""

    def answer(exchange: Exchange) -> None:
        episode = json.loads(exchange.request.body)["id"]
        garbage = b"HTTP/1.1 200 OK\r\n" if episode in ("A", "C") else b""
        exchange.send(turn_for(episode) + garbage)

    async def main() -> list[str | None]:
        async with AsyncLabsClient(api_key=KEY, base_url=server.url, max_retries=0) as client:
            return [(await client.submit_turn(e, MESSAGES)).request_id for e in ("A", "B")]

    with Loopback(answer) as server:
        assert asyncio.run(main()) == ["req_A", "req_B"]
        with LabsClient(api_key=KEY, base_url=server.url, max_retries=0) as client:
            assert [client.submit_turn(e, MESSAGES).request_id for e in ("C", "D")] == [
                "req_C",
                "req_D",
            ]
        assert [r.connection for r in server.requests] == [1, 2, 3, 4]


def test_connections_are_still_reused_when_nothing_is_stale() -> None:
    def answer(exchange: Exchange) -> None:
        exchange.send(turn_for(json.loads(exchange.request.body)["id"]))

    async def main() -> None:
        async with AsyncLabsClient(api_key=KEY, base_url=server.url) as client:
            for episode in ("A", "B", "C"):
                await client.submit_turn(episode, MESSAGES)

    with Loopback(answer) as server:
        asyncio.run(main())
        with LabsClient(api_key=KEY, base_url=server.url) as client:
            for episode in ("D", "E", "F"):
                client.submit_turn(episode, MESSAGES)
        assert [r.connection for r in server.requests] == [1, 1, 1, 2, 2, 2]
