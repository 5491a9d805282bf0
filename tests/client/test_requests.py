"""Request building, argument validation and response parsing of both clients."""

from __future__ import annotations

import json

import httpx
import pytest

from labs_env import (
    BatchEvaluateItem,
    EpisodeNotFoundError,
    LabsValidationError,
    Message,
    RewardConfig,
)
from tests.kit.scripted_http import (
    CREATED,
    KEY,
    MESSAGES,
    TURN,
    Script,
    call,
    close,
    error,
    make_client,
    ok,
)


def test_submit_turn_sends_id_history_and_headers(kind: str) -> None:
    script = Script(ok(TURN))
    client = make_client(kind, script)
    history = [Message(role="user", content="Hi"), {"role": "assistant", "content": "Hello"}]
    result = call(
        client,
        "submit_turn",
        "ep_1",
        history,
        reward_config={"quality_weights": {"discovery": 1.0}},
    )
    request = script.requests[0]
    assert request.method == "POST"
    assert request.url == "https://labs.example/api/v1/episodes/ep_1/turns"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("labs-env/")
    assert len(request.headers["idempotency-key"]) >= 16
    assert json.loads(request.content) == {
        "id": "ep_1",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        "reward_config": {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": False},
    }
    assert result.reward == 0.25 and result.turn == 1 and result.request_id == "req_turn"
    close(client)


def test_each_logical_call_gets_its_own_idempotency_key(kind: str) -> None:
    script = Script(ok(CREATED))
    client = make_client(kind, script)
    call(client, "create_episode", "c", "s")
    call(client, "create_episode", "c", "s")
    keys = [r.headers["idempotency-key"] for r in script.requests]
    assert keys[0] != keys[1]
    assert script.bodies()[0] == {
        "collection_slug": "c",
        "scenario_slug": "s",
        "score_turns": False,
    }


def test_catalog_is_a_get_without_idempotency_key(kind: str) -> None:
    script = Script(
        ok(
            {"collections": [{"slug": "c", "name": "C", "scenarios": []}]},
            **{"X-Request-ID": "req_h"},
        )
    )
    client = make_client(kind, script)
    catalog = call(client, "catalog")
    assert script.requests[0].method == "GET"
    assert "idempotency-key" not in script.requests[0].headers
    assert catalog.collections[0].slug == "c"
    assert catalog.request_id == "req_h"  # filled from X-Request-ID when the body lacks it


def test_base_url_path_prefix_and_episode_id_quoting(kind: str) -> None:
    script = Script(ok(TURN))
    client = make_client(kind, script, base_url="https://labs.example/proxy/")
    call(client, "submit_turn", "ep/1 x", MESSAGES)
    assert script.requests[0].url.raw_path == b"/proxy/api/v1/episodes/ep%2F1%20x/turns"


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "field", "needle"),
    [
        (
            "submit_turn",
            (
                "ep_1",
                [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": "y"},
                    {"role": "user", "content": "z" * 10_001},
                ],
            ),
            {},
            "messages[2].content",
            "10000",
        ),
        ("submit_turn", ("ep_1", []), {}, "messages", "at least 1"),
        ("submit_turn", ("ep_1", "hello"), {}, "messages", "list of messages"),
        (
            "submit_turn",
            ("ep_1", [{"role": "robot", "content": "x"}]),
            {},
            "messages[0].role",
            "'user'",
        ),
        (
            "submit_turn",
            ("ep_1", [{"role": "user", "content": "x", "extra": 1}]),
            {},
            "messages[0].extra",
            "remove",
        ),
        ("submit_turn", ("", MESSAGES), {}, "episode_id", "non-empty"),
        (
            "submit_turn",
            ("ep_1", MESSAGES),
            {"reward_config": {"quality_weights": {"speed": 1.0}}},
            "reward_config.quality_weights",
            "speed",
        ),
        (
            "submit_turn",
            ("ep_1", MESSAGES),
            {"reward_config": {"quality_weights": {"discovery": 0.0}}},
            "reward_config.quality_weights",
            "at least one",
        ),
        (
            "evaluate",
            ("c", "s", MESSAGES),
            {"normalization_key": "run", "normalization_windows": ["7x"]},
            "normalization_windows",
            "7x",
        ),
        (
            "evaluate",
            ("c", "s", MESSAGES),
            {"normalization_windows": ["7d"]},
            "normalization_windows",
            "requires normalization_key",
        ),
        (
            "evaluate",
            ("c", "s", MESSAGES),
            {"normalization_key": "r", "normalization_windows": ["1d"] * 6},
            "normalization_windows",
            "at most 5",
        ),
        (
            "evaluate",
            ("c", "s", MESSAGES),
            {"normalization_key": "r", "normalization_windows": "7d"},
            "normalization_windows",
            "one string",
        ),
        ("create_episode", ("", "s"), {}, "collection_slug", "at least 1"),
        ("batch_evaluate", ([],), {}, "items", "empty"),
        (
            "batch_evaluate",
            (
                [
                    {"id": "a", "collection_slug": "c", "scenario_slug": "s", "messages": MESSAGES},
                    {"id": "b", "collection_slug": "c", "scenario_slug": "s", "messages": []},
                ],
            ),
            {},
            "items[1].messages",
            "at least 1",
        ),
        ("compare", ("c", "s", "text", MESSAGES), {}, "response_a", "list of messages"),
        ("terminate_episode", (None,), {}, "episode_id", "non-empty"),
    ],
)
def test_bad_arguments_raise_before_sending(
    kind: str,
    method: str,
    args: tuple[object, ...],
    kwargs: dict[str, object],
    field: str,
    needle: str,
) -> None:
    script = Script(ok(TURN))
    client = make_client(kind, script)
    with pytest.raises(LabsValidationError) as info:
        call(client, method, *args, **kwargs)
    assert info.value.field == field
    assert needle in str(info.value)
    assert info.value.fix
    assert script.requests == []


def test_duplicate_batch_ids_are_rejected(kind: str) -> None:
    item = {"id": "same", "collection_slug": "c", "scenario_slug": "s", "messages": MESSAGES}
    client = make_client(kind, Script(ok({"results": []})))
    with pytest.raises(
        LabsValidationError, match=r"duplicate id 'same' \(also items\[0\]\.id\)"
    ) as info:
        call(client, "batch_evaluate", [item, dict(item)])
    assert info.value.field == "items[1].id"


def _batch_handler(request: httpx.Request) -> httpx.Response:
    items = json.loads(request.content)["items"]
    results = [
        {"id": it["id"], "status": "error", "error": "bad scenario"}
        if it["scenario_slug"] == "missing"
        else {"id": it["id"], "status": "success", "reward": int(it["id"]) / 1000}
        for it in reversed(items)  # answer out of order: the client must match by id
    ]
    return ok({"results": results, "scoring_version": "v1", "total_time_ms": 10.0})


def test_batch_of_250_is_split_into_three_requests_and_keeps_order(kind: str) -> None:
    script = Script(_batch_handler)
    client = make_client(kind, script)
    items = [
        BatchEvaluateItem(
            id=str(i),
            collection_slug="c",
            scenario_slug="missing" if i == 7 else "s",
            messages=[Message(role="user", content="x")],
        )
        if i % 2
        else {"id": str(i), "collection_slug": "c", "scenario_slug": "s", "messages": MESSAGES}
        for i in range(250)
    ]
    result = call(client, "batch_evaluate", items)
    assert sorted(len(body["items"]) for body in script.bodies()) == [50, 100, 100]
    assert [r.id for r in result.results] == [str(i) for i in range(250)]
    assert result.results[3].reward == 0.003 and result.results[3].ok
    assert result.results[7].status == "error" and result.results[7].reward is None
    assert not result.results[7].ok
    assert result.total_time_ms == 30.0 and result.scoring_version == "v1"


def test_batch_response_missing_an_item_is_a_shape_error(kind: str) -> None:
    from labs_env import APIResponseValidationError

    client = make_client(kind, Script(ok({"results": [{"id": "a", "reward": 0.5}]})))
    items = [
        {"id": i, "collection_slug": "c", "scenario_slug": "s", "messages": MESSAGES} for i in "ab"
    ]
    with pytest.raises(APIResponseValidationError, match="'b'"):
        call(client, "batch_evaluate", items)


def test_compare_and_evaluate_bodies(kind: str) -> None:
    script = Script(
        ok({"winner": "a", "reward_a": 0.7, "reward_b": 0.4, "margin": 0.3, "reward": 0.5})
    )
    client = make_client(kind, script)
    result = call(client, "compare", "c", "s", MESSAGES, {"messages": MESSAGES})
    assert result.winner == "a" and result.margin == 0.3
    assert script.bodies()[0]["response_a"] == {"messages": MESSAGES}
    assert script.bodies()[0]["response_b"] == {"messages": MESSAGES}
    config = RewardConfig(quality_weights={"rubrics": 2.0})
    call(
        client,
        "evaluate",
        "c",
        "s",
        MESSAGES,
        reward_config=config,
        normalization_key="run-1",
        normalization_windows=("7d", "100n"),
    )
    assert script.bodies()[1] == {
        "collection_slug": "c",
        "scenario_slug": "s",
        "messages": MESSAGES,
        "reward_config": {"quality_weights": {"rubrics": 2.0}, "skip_safety_gate": False},
        "normalization_key": "run-1",
        "normalization_windows": ["7d", "100n"],
    }


def test_terminate_episode_true_false_and_not_found(kind: str) -> None:
    script = Script(
        ok(
            {"episode_id": "ep_1", "episode_complete": True, "terminal_reason": "client_terminated"}
        ),
        error(404, "Not Found"),
        error(405, "Method Not Allowed"),
        error(404, "Episode not found"),
    )
    client = make_client(kind, script)
    assert call(client, "terminate_episode", "ep_1") is True
    assert call(client, "terminate_episode", "ep_1") is False
    assert call(client, "terminate_episode", "ep_1") is False
    with pytest.raises(EpisodeNotFoundError):
        call(client, "terminate_episode", "ep_1")
    assert script.requests[0].url.path == "/api/v1/episodes/ep_1/terminate"
    assert script.bodies()[0] == {"id": "ep_1"}


def test_response_models_keep_unknown_fields(kind: str) -> None:
    client = make_client(kind, Script(ok({**TURN, "new_field": [1, 2]})))
    result = call(client, "submit_turn", "ep_1", MESSAGES)
    assert result.model_extra == {"new_field": [1, 2]}
