"""Fault injection, the in-process transport (sync and async), the ASGI app on uvicorn, CLI."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from labs_env.cli import main as cli_main
from labs_env.server import DEMO_API_KEY, FaultConfig, LocalTransport, run_in_thread
from labs_env.server import transport as transport_module
from tests.kit.fake_simulator import FakeLabs, make_fake_labs
from tests.kit.wire import BASE, create, say, turn, wire_client

AUTH = {"Authorization": f"Bearer {DEMO_API_KEY}"}


def _faulty(**faults: Any) -> Any:
    return make_fake_labs(faults=FaultConfig(**faults))


@pytest.mark.parametrize(
    ("faults", "status", "message", "retry_after"),
    [
        ({"rate_limit_rate": 1.0}, 429, "Rate limit exceeded", "1"),
        (
            {"rate_limit_rate": 1.0, "rate_limit_retry_after": 2.5},
            429,
            "Rate limit exceeded",
            "2.5",
        ),
        (
            {"rate_limit_rate": 1.0, "rate_limit_retry_after": None},
            429,
            "Rate limit exceeded",
            None,
        ),
        ({"server_error_rate": 1.0}, 500, "Internal server error", None),
        ({"unavailable_rate": 1.0}, 503, "Service unavailable", None),
    ],
)
def test_injected_error_statuses(
    faults: dict[str, Any], status: int, message: str, retry_after: str | None
) -> None:
    server, simulator = _faulty(**faults)
    with wire_client(server) as http:
        response = http.post(
            "/api/v1/episodes", json={"collection_slug": "alpha", "scenario_slug": "long"}
        )
    assert response.status_code == status
    assert response.json()["message"] == message
    assert response.headers["x-request-id"] == response.json()["data"]["request_id"]
    assert response.headers.get("retry-after") == retry_after
    assert simulator.sessions == []  # nothing was processed


def test_dropped_connection_raises_like_a_socket_and_commits_nothing() -> None:
    server, _ = _faulty(drop_rate=1.0)
    with wire_client(server) as http, pytest.raises(httpx.RemoteProtocolError):
        http.post("/api/v1/episodes", json={"collection_slug": "alpha", "scenario_slug": "long"})
    assert len(server.episodes) == 0


def test_lost_response_commits_the_turn() -> None:
    server, simulator = _faulty(lost_response_rate=1.0, endpoints=frozenset({"submit_turn"}))
    with wire_client(server) as http:
        episode = create(http)["episode_id"]  # create is not affected
        with pytest.raises(httpx.RemoteProtocolError):
            turn(http, episode, [say("x")])
    assert len(simulator.sessions[0].seen) == 1  # the persona did reply: the turn happened


def test_retrying_lost_responses_with_an_idempotency_key_never_forks_the_episode() -> None:
    server, simulator = _faulty(
        lost_response_rate=0.4, drop_rate=0.2, endpoints=frozenset({"submit_turn"}), seed=11
    )
    failures = 0
    with wire_client(server) as http:
        created = create(http)
        episode = created["episode_id"]
        history = [{"role": "user", "content": created["initial_observation"]["content"]}]
        for index in range(12):
            history.append(say(f"message {index}"))
            for _attempt in range(50):
                try:
                    response = http.post(
                        f"/api/v1/episodes/{episode}/turns",
                        json={"id": episode, "messages": history},
                        headers={"Idempotency-Key": f"t{index}"},
                    )
                    break
                except httpx.RemoteProtocolError:
                    failures += 1
            result = response.json()
            assert result["turn"] == index + 1
            history.append({"role": "user", "content": result["observation"]["content"]})
    assert failures >= 5  # the faults really happened
    assert len(simulator.sessions[0].seen) == 12  # one persona reply per logical turn


def test_faults_are_deterministic_for_a_seed_and_respect_the_rate() -> None:
    def outcomes(seed: int) -> list[int | str]:
        server, _ = _faulty(server_error_rate=0.3, drop_rate=0.2, seed=seed)
        seen: list[int | str] = []
        with wire_client(server) as http:
            for _ in range(200):
                try:
                    seen.append(http.get("/api/v1/catalog").status_code)
                except httpx.RemoteProtocolError:
                    seen.append("drop")
        return seen

    first = outcomes(3)
    assert first == outcomes(3)
    assert first != outcomes(4)
    assert 30 <= first.count(500) <= 90
    assert 15 <= first.count("drop") <= 65
    assert first.count(200) == 200 - first.count(500) - first.count("drop")


def test_latency_is_fixed_or_random_and_applied_by_the_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, _ = _faulty(latency_ms=20, latency_jitter_ms=10, seed=1)
    delays = [server.handle("GET", "/api/v1/catalog", AUTH).delay for _ in range(20)]
    assert all(0.020 <= d <= 0.030 for d in delays)
    assert len(set(delays)) > 1
    fixed, _ = _faulty(latency_ms=50)
    assert fixed.handle("GET", "/health", {}).delay == 0.0  # health checks are never delayed
    assert fixed.handle("GET", "/api/v1/catalog", AUTH).delay == 0.05

    slept: list[float] = []
    monkeypatch.setattr(transport_module.time, "sleep", slept.append)
    with wire_client(fixed) as http:
        assert http.get("/api/v1/catalog").status_code == 200
    with wire_client(fixed, sleep=False) as http:
        assert http.get("/api/v1/catalog").status_code == 200
    assert slept == [0.05]

    async def async_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(transport_module.asyncio, "sleep", async_sleep)

    async def run() -> int:
        async with httpx.AsyncClient(
            transport=LocalTransport(fixed), base_url=BASE, headers=AUTH
        ) as http:
            return (await http.get("/api/v1/catalog")).status_code

    assert asyncio.run(run()) == 200
    assert slept == [0.05, 0.05]


def test_async_transport_serves_a_whole_episode_and_raises_on_drops(fake_labs: FakeLabs) -> None:
    lossy, _ = _faulty(drop_rate=1.0)

    async def run() -> list[Any]:
        transport = LocalTransport(fake_labs.server)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=AUTH) as http:
            created = (
                await http.post(
                    "/api/v1/episodes", json={"collection_slug": "alpha", "scenario_slug": "short"}
                )
            ).json()
            episode = created["episode_id"]
            results = await asyncio.gather(
                *(
                    http.post(
                        f"/api/v1/episodes/{episode}/turns",
                        json={"id": episode, "messages": [say(t)]},
                    )
                    for t in ("a", "b")
                )
            )
        async with httpx.AsyncClient(
            transport=LocalTransport(lossy), base_url=BASE, headers=AUTH
        ) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get("/api/v1/catalog")
        return [r.json() for r in results]

    first, second = asyncio.run(run())
    assert sorted([first["turn"], second["turn"]]) == [1, 2]
    assert sum(r["episode_complete"] for r in (first, second)) == 1


@pytest.mark.parametrize(
    ("faults", "problem"),
    [
        ({"drop_rate": 1.5}, "drop_rate"),
        ({"drop_rate": 0.6, "server_error_rate": 0.6}, "add up"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"endpoints": frozenset({"turns"})}, "unknown endpoint"),
    ],
)
def test_fault_config_validation(faults: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        FaultConfig(**faults)


def test_asgi_app_on_a_real_uvicorn_socket() -> None:
    server, _ = _faulty(lost_response_rate=1.0, endpoints=frozenset({"terminate"}))
    with run_in_thread(server, port=0, http="uvicorn") as url:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, headers=AUTH) as http:
            catalog = http.get("/api/v1/catalog")
            assert catalog.status_code == 200
            assert catalog.headers["x-request-id"] == catalog.json()["request_id"]
            assert catalog.headers["content-type"] == "application/json"
            created = create(http, scenario="short")
            result = turn(http, created["episode_id"], [say("hello")])
            assert result.json()["observation"] == {"role": "assistant", "content": "reply 1"}
            missing = turn(http, "ep_missing", [say("x")])
            assert missing.status_code == 404 and missing.json()["message"] == "Episode not found"
            with pytest.raises(httpx.RemoteProtocolError):
                http.post(f"/api/v1/episodes/{created['episode_id']}/terminate")
    assert server.episodes.get(
        created["episode_id"], server.accounts.authenticate(AUTH["Authorization"])
    ).complete


def test_cli_serve_is_registered_and_rejects_bad_fault_rates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main(["serve", "--fault-500", "2"]) == 2
    assert "server_error_rate" in capsys.readouterr().err


class _RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_coalescing_transport_sends_head_and_body_in_one_write() -> None:
    from labs_env.server.http_protocol import CoalescingTransport

    raw = _RecordingTransport()
    transport = CoalescingTransport(raw)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert raw.writes == []
    transport.write(b"{}")
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # never held back
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n")
    transport.close()  # a head without a body still goes out before the close
    assert raw.writes == [
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n",
    ]
    assert raw.closed and transport.is_closing()
    assert transport.get_extra_info("peername") == "info:peername"
