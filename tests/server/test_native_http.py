"""The native HTTP/1.1 server (``labs-env serve --http native``) on 127.0.0.1 port 0.

Raw sockets check the HTTP mechanics (keep-alive, pipelining, chunked bodies, malformed
requests, ``Connection: close``, idle expiry, graceful shutdown); httpx checks that injected
faults look to a client as they do on uvicorn.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from labs_env.server import DEMO_API_KEY, FaultConfig, LabsServer, run_in_thread
from labs_env.server import http_server as http_server_module
from tests.kit.fake_simulator import FakeLabs, make_fake_labs
from tests.kit.wire import create, say, turn

AUTH = {"Authorization": f"Bearer {DEMO_API_KEY}"}
CREATE = json.dumps({"collection_slug": "alpha", "scenario_slug": "long"}).encode()


def _request(
    method: str, path: str, body: bytes = b"", *, extra: str = "", length: bool = True
) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {DEMO_API_KEY}\r\n"
    )
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return (head + extra + "\r\n").encode() + body


class _Reader:
    """Reads HTTP/1.1 responses (with Content-Length) off a blocking socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> tuple[int, dict[str, str], Any]:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError("closed before a response")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            if not self._fill():
                raise ConnectionError("closed in the middle of a body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split(" ")[1]), headers, json.loads(body) if body else None

    def closed(self) -> bool:
        """Whether the server closed the connection (after any buffered bytes)."""
        return not self.buffer and not self._fill()


@pytest.fixture
def served(fake_labs: FakeLabs) -> Iterator[tuple[LabsServer, str]]:
    with run_in_thread(fake_labs.server, http="native") as url:
        yield fake_labs.server, url


def _connect(url: str) -> tuple[socket.socket, _Reader]:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock, _Reader(sock)


def test_keep_alive_serves_several_requests_on_one_connection(
    served: tuple[LabsServer, str],
) -> None:
    _, url = served
    sock, reader = _connect(url)
    with sock:
        sock.sendall(_request("POST", "/api/v1/episodes", CREATE))
        status, headers, created = reader.response()
        assert status == 200 and headers["x-request-id"] == created["request_id"]
        episode = created["episode_id"]
        for n in (1, 2, 3):
            body = json.dumps({"id": episode, "messages": [say(f"question {n}")]}).encode()
            sock.sendall(_request("POST", f"/api/v1/episodes/{episode}/turns", body))
            status, headers, result = reader.response()
            assert (status, result["turn"]) == (200, n)
            assert headers["content-type"] == "application/json"
            assert "x-ratelimit-remaining" in headers and "connection" not in headers


def test_pipelined_requests_are_answered_in_order(served: tuple[LabsServer, str]) -> None:
    _, url = served
    sock, reader = _connect(url)
    with sock:
        sock.sendall(
            _request("GET", "/api/v1/missing")
            + _request("GET", "/health")
            + _request("GET", "/api/v1/catalog")
        )
        assert [reader.response()[0] for _ in range(3)] == [404, 200, 200]


def test_head_request_gets_no_body_and_keeps_the_framing(served: tuple[LabsServer, str]) -> None:
    _, url = served
    sock, reader = _connect(url)
    with sock:
        sock.sendall(_request("HEAD", "/health") + _request("GET", "/health"))
        assert reader.response()[::2] == (405, None)
        status, _, body = reader.response()
        assert status == 200 and body["status"] == "ok"


def test_chunked_request_body_is_accepted(served: tuple[LabsServer, str]) -> None:
    _, url = served
    sock, reader = _connect(url)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (CREATE[:10], CREATE[10:]))
    with sock:
        sock.sendall(
            _request(
                "POST", "/api/v1/episodes", extra="Transfer-Encoding: chunked\r\n", length=False
            )
            + chunks
            + b"0\r\n\r\n"
        )
        status, _, created = reader.response()
        assert status == 200 and created["episode_id"].startswith("ep_")


def test_malformed_request_gets_400_and_the_connection_is_closed(
    served: tuple[LabsServer, str],
) -> None:
    _, url = served
    sock, reader = _connect(url)
    with sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, body = reader.response()
        assert status == 400 and headers["connection"] == "close"
        assert body["message"].startswith("Invalid request")
        assert body["data"]["request_id"] == headers["x-request-id"]
        assert reader.closed()


def test_connection_close_is_honoured(served: tuple[LabsServer, str]) -> None:
    _, url = served
    sock, reader = _connect(url)
    with sock:
        sock.sendall(_request("GET", "/health", extra="Connection: close\r\n"))
        status, headers, _ = reader.response()
        assert (status, headers["connection"]) == (200, "close")
        assert reader.closed()


def test_idle_keep_alive_connections_expire(fake_labs: FakeLabs) -> None:
    with run_in_thread(fake_labs.server, http="native", keep_alive_s=0.05) as url:
        sock, reader = _connect(url)
        with sock:
            sock.sendall(_request("GET", "/health"))
            assert reader.response()[0] == 200
            assert reader.closed()  # blocks until the server drops the idle connection


def test_shutdown_finishes_the_request_in_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    in_progress = threading.Event()
    real_sleep = http_server_module._sleep

    async def delay(seconds: float) -> None:
        in_progress.set()  # the request was read and its answer waits for the injected latency
        await real_sleep(seconds)

    monkeypatch.setattr(http_server_module, "_sleep", delay)
    server, _ = make_fake_labs(faults=FaultConfig(latency_ms=50))
    with run_in_thread(server, http="native") as url:
        sock, reader = _connect(url)
        sock.sendall(_request("GET", "/api/v1/catalog"))
        assert in_progress.wait(5.0)  # stop only once the server is working on it
    with sock:  # the server has stopped; the answer it owed was still delivered
        assert reader.response()[0] == 200
        assert reader.closed()


def test_injected_latency_keeps_pipelined_answers_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(http_server_module, "_sleep", record)
    server, _ = make_fake_labs(faults=FaultConfig(latency_ms=30))
    with run_in_thread(server, http="native") as url:
        sock, reader = _connect(url)
        with sock:
            sock.sendall(_request("GET", "/api/v1/catalog") + _request("GET", "/health"))
            answers = [reader.response() for _ in range(2)]
    # The delayed catalog comes first although /health (never delayed) was ready before it.
    assert [(status, "collections" in body) for status, _, body in answers] == [
        (200, True),
        (200, False),
    ]
    assert delays == [0.03]


@pytest.mark.parametrize("http", ["native", "uvicorn"])
def test_dropped_connection_and_lost_response_faults(http: str) -> None:
    server, _ = make_fake_labs(
        faults=FaultConfig(lost_response_rate=1.0, endpoints=frozenset({"submit_turn"}))
    )
    with run_in_thread(server, http=http) as url, httpx.Client(base_url=url, headers=AUTH) as h:
        created = create(h, scenario="short")
        with pytest.raises(httpx.RemoteProtocolError):
            turn(h, created["episode_id"], [say("hello")])
        # The lost response was committed: the episode advanced to turn 1.
        account = server.accounts.authenticate(AUTH["Authorization"])
        assert server.episodes.get(created["episode_id"], account).turn == 1

    dropping, _ = make_fake_labs(faults=FaultConfig(drop_rate=1.0))
    with (
        run_in_thread(dropping, http=http) as url,
        httpx.Client(base_url=url) as h,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        h.post("/api/v1/episodes", content=CREATE, headers=AUTH)
    assert len(dropping.episodes) == 0  # dropped before processing: nothing was created


def test_unknown_http_stack_is_refused() -> None:
    with (
        pytest.raises(ValueError, match="http must be one of"),
        run_in_thread(LabsServer(), http="bogus"),  # type: ignore[arg-type]
    ):
        pass


def test_dumps_splices_pre_serialised_fragments() -> None:
    from labs_env.server.wire import RawJSON, dumps

    fragment = RawJSON(dumps({"a": [1, 2]}))
    assert json.loads(dumps({"turn": 1, "scores": fragment, "x": None})) == {
        "turn": 1,
        "x": None,
        "scores": {"a": [1, 2]},
    }
    assert json.loads(dumps({"only": fragment, "b": fragment})) == {
        "only": {"a": [1, 2]},
        "b": {"a": [1, 2]},
    }


def test_served_scored_turn_carries_the_simulators_scores() -> None:
    server = LabsServer()
    spec = server.simulator.scenarios()[0]
    with run_in_thread(server) as url, httpx.Client(base_url=url, headers=AUTH) as http:
        created = http.post(
            "/api/v1/episodes",
            json={
                "collection_slug": spec.collection,
                "scenario_slug": spec.slug,
                "score_turns": True,
                "config": {"seed": 3},
            },
        ).json()
        messages = [say("I'm sorry to hear that. What happened, and when?")]
        for _ in range(2):  # the second turn is served from the cached fragments
            result = http.post(
                f"/api/v1/episodes/{created['episode_id']}/turns",
                json={"id": created["episode_id"], "messages": messages},
            ).json()
            messages = [say("Could you tell me more about the damage?")]
    episode = server.episodes.get(
        created["episode_id"], server.accounts.authenticate(AUTH["Authorization"])
    )
    expected = server.simulator.score(spec, episode.conversation, None)
    assert result["reward"] == expected.reward
    assert result["scores"] == expected.scores
    assert result["score_breakdown"] == expected.score_breakdown
