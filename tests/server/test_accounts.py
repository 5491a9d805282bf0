"""Accounts on the local server: score access levels and per-minute rate limits."""

from __future__ import annotations

import pytest

from labs_env.server import Account, demo_account
from tests.kit.clock import FakeClock
from tests.kit.fake_simulator import make_fake_labs
from tests.kit.wire import create, say, turn, wire_client

EVALUATE = {"collection_slug": "alpha", "scenario_slug": "long", "messages": [say("x")]}
BATCH = {"items": [{"id": "a", **EVALUATE}]}


@pytest.mark.parametrize(
    ("level", "visible"),
    [
        ("reward_only", set()),
        ("scores", {"scores"}),
        ("full", {"scores", "score_breakdown"}),
    ],
)
def test_access_level_decides_which_scores_appear(level: str, visible: set[str]) -> None:
    account = Account("lab_level", name=level, access_level=level)  # type: ignore[arg-type]
    server, _ = make_fake_labs(accounts=(account,))
    with wire_client(server, api_key="lab_level") as http:
        episode = create(http, score_turns=True)["episode_id"]
        bodies = [
            turn(http, episode, [say("x")]).json(),
            http.post("/api/v1/evaluate", json=EVALUATE).json(),
            http.post("/api/v1/batch/evaluate", json=BATCH).json()["results"][0],
        ]
    for body in bodies:
        assert body["reward"] == pytest.approx(0.1)
        assert {"scores", "score_breakdown"} & set(body) == visible


def test_rate_limit_headers_429_and_window_reset() -> None:
    clock = FakeClock(1_800_000_030.0)  # 30 s into a minute
    server, _ = make_fake_labs(accounts=(demo_account(rate_limit_per_minute=3),), clock=clock)
    with wire_client(server) as http:
        remaining = [http.get("/api/v1/catalog").headers["x-ratelimit-remaining"] for _ in range(3)]
        limited = http.get("/api/v1/catalog")
        clock.advance(29)
        still = http.get("/api/v1/catalog")
        clock.advance(1)  # the next minute starts
        fresh = http.get("/api/v1/catalog")
    assert remaining == ["2", "1", "0"]
    assert limited.status_code == 429
    assert limited.json()["message"] == "Rate limit exceeded"
    assert limited.headers["x-ratelimit-limit"] == "3"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["x-ratelimit-reset"] == "1800000060"
    assert limited.headers["retry-after"] == "30"
    assert still.status_code == 429 and still.headers["retry-after"] == "1"
    assert fresh.status_code == 200
    assert fresh.headers["x-ratelimit-remaining"] == "2"
    assert fresh.headers["x-ratelimit-reset"] == "1800000120"


def test_rate_limit_without_retry_after_and_per_key_windows() -> None:
    other = Account("lab_other", name="other", rate_limit_per_minute=1)
    server, _ = make_fake_labs(
        accounts=(demo_account(rate_limit_per_minute=1), other), rate_limit_retry_after=False
    )
    with wire_client(server) as mine, wire_client(server, api_key="lab_other") as theirs:
        assert mine.get("/api/v1/catalog").status_code == 200
        limited = mine.get("/api/v1/catalog")
        assert theirs.get("/api/v1/catalog").status_code == 200
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    assert "x-ratelimit-reset" in limited.headers


def test_requests_failing_auth_or_validation_use_no_quota() -> None:
    server, _ = make_fake_labs(accounts=(demo_account(rate_limit_per_minute=2),))
    with wire_client(server, api_key="lab_wrong") as stranger:
        assert stranger.get("/api/v1/catalog").status_code == 401
    with wire_client(server) as http:
        assert http.post("/api/v1/episodes", json={"bad": 1}).status_code == 400
        assert http.get("/api/v1/catalog").headers["x-ratelimit-remaining"] == "1"


def test_account_validation_and_secrecy() -> None:
    with pytest.raises(ValueError, match="access_level"):
        Account("lab_x", access_level="everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rate_limit_per_minute"):
        Account("lab_x", rate_limit_per_minute=0)
    with pytest.raises(ValueError, match="api_key"):
        Account("")
    with pytest.raises(ValueError, match="share one API key"):
        make_fake_labs(accounts=(Account("lab_same"), Account("lab_same")))
    assert "lab_hidden" not in repr(Account("lab_hidden", name="visible"))
    assert Account("lab_x", collections=["a"]).collections == frozenset({"a"})
