"""Scoring over the wire: reward_config semantics, evaluate, normalisation, batch, compare."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from labs_env.models import Message, RewardConfig
from labs_env.server import LabsServer
from labs_env.server.simulation import ScenarioSpec, ScoreResult, Simulator
from tests.kit.clock import FakeClock
from tests.kit.fake_simulator import make_fake_labs
from tests.kit.wire import create, say, turn, wire_client


class SpySimulator(Simulator):
    """The real simulator, recording every ScoreResult."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[ScoreResult] = []

    def score(
        self,
        scenario: ScenarioSpec,
        conversation: Sequence[Message],
        reward_config: RewardConfig | None,
    ) -> ScoreResult:
        result = super().score(scenario, conversation, reward_config)
        self.results.append(result)
        return result


CONVERSATION_TEXT = (
    "Hello, I'm sorry about the delay, that must be frustrating. What is your claim number?",
    "Thank you. When did the damage happen and what repairs are needed?",
    "Which documents have you sent us so far?",
)


@pytest.fixture(scope="module")
def real() -> tuple[LabsServer, SpySimulator, str, str, list[dict[str, Any]]]:
    """A server on the real (spied) simulator and a played conversation on its first scenario."""
    simulator = SpySimulator()
    server = LabsServer(simulator=simulator)
    with wire_client(server) as http:
        collection = http.get("/api/v1/catalog").json()["collections"][0]
        scenario = collection["scenarios"][0]["slug"]
        created = create(http, collection["slug"], scenario, config={"seed": 5})
        history = [{"role": "user", "content": created["initial_observation"]["content"]}]
        for text in CONVERSATION_TEXT:
            history.append(say(text))
            reply = turn(http, created["episode_id"], history).json()
            history.append({"role": "user", "content": reply["observation"]["content"]})
    return server, simulator, collection["slug"], scenario, history


def _evaluate(real: Any, reward_config: dict[str, Any] | None) -> dict[str, Any]:
    server, _, collection, scenario, history = real
    body: dict[str, Any] = {
        "collection_slug": collection,
        "scenario_slug": scenario,
        "messages": history,
    }
    if reward_config is not None:
        body["reward_config"] = reward_config
    with wire_client(server) as http:
        response = http.post("/api/v1/evaluate", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _dimension_values(scores: dict[str, Any]) -> list[float]:
    return [v["score"] if isinstance(v, dict) else v for v in scores.values()]


def test_a_single_active_scorer_decides_the_reward_alone(real: Any) -> None:
    result = _evaluate(real, {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True})
    assert real[1].results[-1].ran == ("discovery",)
    assert set(result["score_breakdown"]) == {"discovery"}
    # Every reported dimension is fed by the one scorer that ran: they all equal the reward.
    values = _dimension_values(result["scores"])
    assert values and all(v == pytest.approx(result["reward"], abs=1e-4) for v in values)


def test_an_omitted_or_zero_weight_scorer_does_not_run_and_changes_nothing(real: Any) -> None:
    only = _evaluate(
        real, {"quality_weights": {"discovery": 0.5, "rubrics": 0.5}, "skip_safety_gate": True}
    )
    with_zero = _evaluate(
        real,
        {
            "quality_weights": {"discovery": 0.5, "rubrics": 0.5, "success_metrics": 0.0},
            "skip_safety_gate": True,
        },
    )
    assert set(real[1].results[-1].ran) == {"rubrics", "discovery"}
    assert "successMetrics" not in with_zero["score_breakdown"]
    assert {k: v for k, v in with_zero.items() if k not in ("request_id", "metadata")} == {
        k: v for k, v in only.items() if k not in ("request_id", "metadata")
    }


def test_no_reward_config_runs_default_scoring_with_the_gate(real: Any) -> None:
    default = _evaluate(real, None)
    assert real[1].results[-1].gate_passed is not None
    assert len(real[1].results[-1].ran) >= 3
    skipped = _evaluate(real, {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True})
    assert real[1].results[-1].gate_passed is None
    assert 0.0 <= default["reward"] <= 1.0 and 0.0 <= skipped["reward"] <= 1.0


def test_turn_reward_config_reaches_the_scorers(real: Any) -> None:
    server, simulator, collection, scenario, _ = real
    with wire_client(server) as http:
        episode = create(http, collection, scenario, score_turns=True)["episode_id"]
        config = {"quality_weights": {"rubrics": 2.0}, "skip_safety_gate": True}
        result = turn(http, episode, [say(CONVERSATION_TEXT[0])], reward_config=config).json()
    assert simulator.results[-1].ran == ("rubrics",)
    assert set(result["score_breakdown"]) == {"rubrics"}
    assert result["reward"] == simulator.results[-1].reward


def test_evaluate_metadata_and_version(real: Any) -> None:
    server, _, collection, scenario, _ = real
    result = _evaluate(real, None)
    assert result["scoring_version"] == server.simulator.scoring_version
    assert (
        result["metadata"]["scenario_name"] == server.simulator.scenario(collection, scenario).name
    )  # type: ignore[union-attr]
    assert result["metadata"]["evaluation_time_ms"] >= 0
    assert "normalized" not in result


def test_normalized_z_scores_per_window() -> None:
    clock = FakeClock()
    server, _ = make_fake_labs(clock=clock)

    def evaluate(n_agent: int, **extra: Any) -> Any:
        messages = [say(f"m{i}") for i in range(n_agent)]
        body = {"collection_slug": "alpha", "scenario_slug": "long", "messages": messages, **extra}
        return http.post("/api/v1/evaluate", json=body)

    with wire_client(server) as http:
        evaluate(1, normalization_key="run-1")  # reward 0.1
        clock.advance(3 * 86_400)
        evaluate(3, normalization_key="run-1")  # reward 0.3
        evaluate(9, normalization_key="other-run")  # another key: not in run-1's history
        result = evaluate(
            5, normalization_key="run-1", normalization_windows=["10n", "1n", "1d", "1w"]
        ).json()
        windows_without_key = evaluate(1, normalization_windows=["7d"])
    assert result["reward"] == pytest.approx(0.5)
    normalized = result["normalized"]
    assert normalized["10n"] == pytest.approx(3.0)  # (0.5 - 0.2) / 0.1
    assert normalized["1w"] == pytest.approx(3.0)
    assert normalized["1n"] == 0.0  # fewer than two earlier evaluations
    assert normalized["1d"] == 0.0  # only 0.3 is within a day
    assert windows_without_key.status_code == 400
    assert "normalization_key" in windows_without_key.json()["message"]


def test_batch_items_fail_alone_and_keep_their_order(http: httpx.Client) -> None:
    good = {"collection_slug": "alpha", "scenario_slug": "long", "messages": [say("x"), say("y")]}
    items = [
        {"id": "first", **good},
        {"id": "missing", **good, "scenario_slug": "nope"},
        {"id": "too-long", **good, "messages": [say("x" * 10_001)]},
        {"id": "typo", **good, "mesages": []},
        {"id": "last", **good, "messages": [say("x")]},
    ]
    response = http.post("/api/v1/batch/evaluate", json={"items": items})
    body = response.json()
    assert response.status_code == 200
    assert [r["id"] for r in body["results"]] == ["first", "missing", "too-long", "typo", "last"]
    assert [r["status"] for r in body["results"]] == [
        "success",
        "error",
        "error",
        "error",
        "success",
    ]
    assert [r.get("reward") for r in body["results"]] == [0.2, None, None, None, 0.1]
    assert "Scenario not found" in body["results"][1]["error"]
    assert "messages[0].content" in body["results"][2]["error"]
    assert "mesages: unknown field" in body["results"][3]["error"]
    assert body["scoring_version"] == "fake-1.0"
    assert body["total_time_ms"] >= 0


def test_batch_subscription_errors_are_per_item() -> None:
    from labs_env.server import Account

    server, _ = make_fake_labs(accounts=(Account("lab_b", collections=frozenset({"beta"})),))
    items = [
        {"id": "a", "collection_slug": "alpha", "scenario_slug": "long", "messages": [say("x")]},
        {"id": "b", "collection_slug": "beta", "scenario_slug": "other", "messages": [say("x")]},
    ]
    with wire_client(server, api_key="lab_b") as http:
        results = http.post("/api/v1/batch/evaluate", json={"items": items}).json()["results"]
    assert results[0] == {
        "id": "a",
        "status": "error",
        "error": "No active subscription for collection",
    }
    assert results[1]["status"] == "success"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"items": []}, "1 to 100"),
        ({"items": [{"id": str(i)} for i in range(101)]}, "1 to 100"),
        ({"items": [{"collection_slug": "alpha"}]}, "items[0].id"),
        ({"items": [{"id": "a"}], "extra": True}, "extra: unknown field"),
    ],
)
def test_batch_envelope_errors_fail_the_request(
    body: dict[str, Any], problem: str, http: httpx.Client
) -> None:
    response = http.post("/api/v1/batch/evaluate", json=body)
    assert response.status_code == 400
    assert problem in response.json()["message"]


def test_batch_of_one_hundred_items(http: httpx.Client) -> None:
    items = [
        {
            "id": f"i{i}",
            "collection_slug": "alpha",
            "scenario_slug": "long",
            "messages": [say("x")] * (i % 10 + 1),
        }
        for i in range(100)
    ]
    results = http.post("/api/v1/batch/evaluate", json={"items": items}).json()["results"]
    assert [r["id"] for r in results] == [f"i{i}" for i in range(100)]
    assert [r["reward"] for r in results] == [pytest.approx((i % 10 + 1) / 10) for i in range(100)]


def test_compare_winner_tie_and_margin(http: httpx.Client) -> None:

    def compare(a: int, b: int) -> dict[str, Any]:
        body = {
            "collection_slug": "alpha",
            "scenario_slug": "long",
            "response_a": {"messages": [say("a")] * a},
            "response_b": {"messages": [say("b")] * b},
        }
        response = http.post("/api/v1/compare", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    better_a, better_b, tie = compare(4, 2), compare(1, 3), compare(2, 2)
    assert (better_a["winner"], better_a["reward_a"], better_a["reward_b"]) == ("a", 0.4, 0.2)
    assert better_a["margin"] == pytest.approx(0.2)
    assert better_b["winner"] == "b"
    assert (tie["winner"], tie["margin"]) == ("tie", 0.0)
    assert tie["scoring_version"] == "fake-1.0"
    bad = http.post("/api/v1/compare", json={"collection_slug": "alpha", "scenario_slug": "long"})
    assert bad.status_code == 400 and "response_a: field required" in bad.json()["message"]
