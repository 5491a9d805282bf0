"""The AsyncLabsClient's own HTTP/1.1 transport against a raw loopback server (127.0.0.1:0)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from labs_env import (
    APIConnectionError,
    APITimeoutError,
    AsyncLabsClient,
    LabsClient,
    LabsValidationError,
)
from labs_env.client.connection_pool import ConnectionPool
from labs_env.testing import instant_retries
from tests.kit.scripted_http import CREATED, KEY, MESSAGES, TURN
from tests.kit.transports import client_sockets
from tests.kit.waiting import until


def response(payload: dict[str, Any], status: int = 200, extra: bytes = b"") -> bytes:
    body = json.dumps(payload).encode()
    return (
        b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"X-Request-ID: req_raw\r\n%s\r\n%s" % (status, len(body), extra, body)
    )


def chunked(payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    parts = [body[:10], body[10:]]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
    )


CLOSE = "close"  # read the request, then drop the connection without answering
HANG = "hang"  # never answer
Action = bytes | str


@dataclass
class RawServer:
    """Answers request n (0-based, across connections) with ``script(n)``."""

    script: Callable[[int], Action]
    requests: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    close_after_response: bool = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append((conn, head, body))
                action = self.script(len(self.requests) - 1)
                if action == CLOSE:
                    break
                if action == HANG:
                    await asyncio.sleep(3600)
                assert isinstance(action, bytes)
                writer.write(action)
                await writer.drain()
                if self.close_after_response:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serve(script: Callable[[int], Action], **kwargs: Any) -> AsyncIterator[RawServer]:
    server = RawServer(script, **kwargs)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def client_for(server: RawServer, **kwargs: Any) -> AsyncLabsClient:
    return AsyncLabsClient(api_key=KEY, base_url=f"http://127.0.0.1:{server.port}", **kwargs)


def test_requests_are_well_formed_and_connections_are_reused() -> None:
    async def main() -> None:
        async with serve(lambda n: response(TURN)) as server, client_for(server) as client:
            for _ in range(5):
                result = await client.submit_turn("ep_1", MESSAGES)
                assert result.reward == 0.25 and result.request_id == "req_turn"
            assert server.connections == 1
            _, head, body = server.requests[0]
            lines = head.decode().split("\r\n")
            assert lines[0] == "POST /api/v1/episodes/ep_1/turns HTTP/1.1"
            headers = dict(line.split(": ", 1) for line in lines[1:] if line)
            assert headers["Host"] == f"127.0.0.1:{server.port}"
            assert headers["Authorization"] == f"Bearer {KEY}"
            assert headers["Content-Type"] == "application/json"
            assert headers["Accept-Encoding"] == "identity"
            assert int(headers["Content-Length"]) == len(body)
            assert len(headers["Idempotency-Key"]) == 32
            assert json.loads(body)["id"] == "ep_1"

    asyncio.run(main())


def test_get_has_no_body_headers_and_chunked_responses_parse() -> None:
    async def main() -> None:
        async with (
            serve(lambda n: chunked({"collections": []})) as server,
            client_for(server) as client,
        ):
            catalog = await client.catalog()
            assert catalog.collections == []
            head = server.requests[0][1].decode()
            assert head.startswith("GET /api/v1/catalog HTTP/1.1")
            assert "Content-Length" not in head and "Idempotency-Key" not in head

    asyncio.run(main())


def test_pool_is_bounded_and_serves_concurrent_calls() -> None:
    async def main() -> None:
        async with (
            serve(lambda n: response(TURN)) as server,
            client_for(server, max_connections=3) as client,
        ):
            results = await asyncio.gather(
                *(client.submit_turn("ep_1", MESSAGES) for _ in range(40))
            )
            assert len(results) == 40 and server.connections <= 3

    asyncio.run(main())


def test_dropped_turn_is_not_resent_but_safe_calls_are() -> None:
    async def main() -> None:
        def script(n: int) -> Action:
            return CLOSE if n == 0 else response(CREATED)

        async with serve(script) as server, client_for(server) as client:
            with instant_retries(), pytest.raises(APIConnectionError, match="retry_unsafe_turns"):
                await client.submit_turn("ep_1", MESSAGES)
            assert len(server.requests) == 1
        async with serve(script) as server, client_for(server) as client:
            with instant_retries():
                created = await client.create_episode("c", "s")
            assert created.episode_id == "ep_1" and len(server.requests) == 2
            keys = {
                h.split(b"Idempotency-Key: ")[1].split(b"\r\n")[0] for _, h, _ in server.requests
            }
            assert len(keys) == 1  # the resend carries the same idempotency key

    asyncio.run(main())


def test_connection_closed_by_the_server_while_idle_is_replaced_transparently() -> None:
    async def main() -> None:
        async with (
            serve(lambda n: response(TURN), close_after_response=True) as server,
            client_for(server) as client,
        ):
            for _ in range(3):
                await client.submit_turn("ep_1", MESSAGES)
                # the server closes after answering: wait until the client has seen its FIN
                # (the pooled connection dropped, its socket closed) before the next request
                await until(lambda: client_sockets(server.port) == 0)
            assert server.connections == 3 and len(server.requests) == 3

    asyncio.run(main())


def test_response_timeout_raises_api_timeout_error() -> None:
    async def main() -> None:
        async with serve(lambda n: HANG) as server, client_for(server, timeout=0.2) as client:
            with pytest.raises(APITimeoutError):
                await client.submit_turn("ep_1", MESSAGES)
            assert len(server.requests) == 1  # a turn that may have been recorded: not resent

    asyncio.run(main())


def test_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there

    async def main() -> None:
        async with AsyncLabsClient(
            api_key=KEY, base_url=f"http://127.0.0.1:{port}", max_retries=2
        ) as client:
            with (
                instant_retries() as waits,
                pytest.raises(APIConnectionError, match="could not connect"),
            ):
                await client.submit_turn("ep_1", MESSAGES)  # never reached the server: retried
            assert len(waits) == 2

    asyncio.run(main())


def test_malformed_and_close_delimited_responses() -> None:
    async def main() -> None:
        async with (
            serve(lambda n: b"garbage\r\n\r\n") as server,
            client_for(server, max_retries=0) as client,
        ):
            with pytest.raises(APIConnectionError, match="malformed"):
                await client.create_episode("c", "s")
        body = json.dumps(CREATED).encode()
        raw = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + body
        )
        async with (
            serve(lambda n: raw, close_after_response=True) as server,
            client_for(server) as client,
        ):
            assert (await client.create_episode("c", "s")).episode_id == "ep_1"

    asyncio.run(main())


def test_error_statuses_and_rate_limit_headers_over_the_wire() -> None:
    async def main() -> None:
        limited = response(
            {"message": "Rate limit exceeded", "data": {"request_id": "req_429"}},
            status=429,
            extra=b"Retry-After: 2\r\n",
        )
        answers = [
            limited,
            response(
                TURN,
                extra=b"X-RateLimit-Limit: 60\r\nX-RateLimit-Remaining: 59\r\n"
                b"X-RateLimit-Reset: 9999999999\r\n",
            ),
        ]
        async with serve(lambda n: answers[min(n, 1)]) as server, client_for(server) as client:
            with instant_retries() as waits:
                await client.submit_turn("ep_1", MESSAGES)
            assert len(server.requests) == 2 and any(w >= 2 for w in waits)
            assert client.rate_limit.limit == 60 and client.rate_limit.remaining == 59

    asyncio.run(main())


@contextmanager
def threaded_server(script: Callable[[int], Action]) -> Iterator[RawServer]:
    """A RawServer on its own event loop in a thread (for sync clients and several loops)."""
    ready = threading.Event()
    stop: list[Callable[[], None]] = []
    holder: list[RawServer] = []

    def run_server() -> None:
        async def main() -> None:
            async with serve(script) as server:
                holder.append(server)
                done = asyncio.Event()
                loop = asyncio.get_running_loop()
                stop.append(lambda: loop.call_soon_threadsafe(done.set))
                ready.set()
                await done.wait()

        asyncio.run(main())

    thread = threading.Thread(target=run_server, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield holder[0]
    finally:
        stop[0]()
        thread.join(10)


def test_closed_client_and_reuse_across_event_loops() -> None:
    with threaded_server(lambda n: response(TURN)) as server:
        client = client_for(server)
        asyncio.run(client.submit_turn("ep_1", MESSAGES))
        asyncio.run(client.submit_turn("ep_1", MESSAGES))  # a new event loop: a fresh pool
        assert len(server.requests) == 2 and server.connections == 2
        asyncio.run(client.aclose())
        asyncio.run(client.aclose())  # idempotent
        assert client.closed
        with pytest.raises(LabsValidationError, match="closed"):
            asyncio.run(client.submit_turn("ep_1", MESSAGES))


def test_sync_client_over_its_default_network_transport() -> None:
    answers: list[Action] = [CLOSE, response(CREATED), CLOSE, response(TURN)]
    with threaded_server(lambda n: answers[min(n, 3)]) as server:
        base_url = f"http://127.0.0.1:{server.port}"
        with LabsClient(api_key=KEY, base_url=base_url) as client, instant_retries():
            assert client.create_episode("c", "s").episode_id == "ep_1"  # resent after the drop
            with pytest.raises(APIConnectionError, match="retry_unsafe_turns"):
                client.submit_turn("ep_1", MESSAGES)  # dropped after sending: not resent
        assert len(server.requests) == 3
        with pytest.raises(LabsValidationError, match="closed"):
            client.catalog()


def test_idle_connections_expire_before_reuse() -> None:
    async def main() -> None:
        async with serve(lambda n: response(TURN)) as server:
            pool = ConnectionPool("127.0.0.1", server.port, idle_timeout=0.0)
            head = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
            for _ in range(3):
                raw = await pool.request(head, b"{}", timeout=5)
                assert raw.status == 200 and json.loads(raw.body) == TURN
            assert server.connections == 3
            pool.close()

    asyncio.run(main())
