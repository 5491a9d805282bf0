"""The sans-IO episode core: actions → messages, turn results → transitions."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from labs_env.errors import LabsValidationError, TurnMismatchError
from labs_env.models import EpisodeCreated, Message, RewardConfig, ToolCall, TurnResult
from labs_env.rollout.episode import Episode, end_flags, flatten_scores
from labs_env.rollout.planning import coerce_reward_config, draw_episode_seed, draw_scenario

TOOLS = [
    {
        "id": "claim_status",
        "type": "decision",
        "name": "Claim status",
        "mode": "options",
        "options": ["approve", "deny", "escalate"],
    },
    {
        "id": "summary",
        "type": "artifact",
        "name": "Case summary",
        "mode": "json_schema",
        "json_schema": {
            "type": "object",
            "required": ["text", "priority"],
            "properties": {
                "text": {"type": "string", "minLength": 5},
                "priority": {"type": "integer", "minimum": 1, "maximum": 3},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
            },
            "additionalProperties": False,
        },
    },
]


def make_episode(**kwargs: Any) -> Episode:
    created = EpisodeCreated.model_validate(
        {
            "episode_id": "ep_1",
            "initial_observation": {"role": "assistant", "content": "Hi, I need help."},
            "tools": TOOLS,
            "request_id": "req_0",
        }
    )
    return Episode(collection="col", scenario="scn", created=created, seed=7, **kwargs)


def turn_result(turn: int, **kwargs: Any) -> TurnResult:
    data: dict[str, Any] = {
        "turn": turn,
        "observation": {"role": "assistant", "content": f"reply {turn}"},
        "reward": 0.5,
        "episode_complete": False,
        "request_id": f"req_{turn}",
    }
    data.update(kwargs)
    return TurnResult.model_validate(data)


def test_string_action_sends_full_history_with_roles() -> None:
    episode = make_episode()
    messages = episode.build_turn("What happened?")
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[-1].content == "What happened?"
    episode.apply(turn_result(1))
    messages = episode.build_turn("And then?")
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Hi, I need help."),
        ("assistant", "What happened?"),
        ("user", "reply 1"),
        ("assistant", "And then?"),
    ]


def test_tool_call_type_is_filled_from_the_episode_tools() -> None:
    episode = make_episode()
    action = {
        "content": "Approving.",
        "tool_calls": [{"name": "claim_status", "input": {"value": "approve"}}],
    }
    message = episode.build_turn(action)[-1]
    assert message.tool_calls == [
        ToolCall(type="decision", name="claim_status", input={"value": "approve"})
    ]
    transition = episode.apply(turn_result(1))
    assert transition.observation[1]["tool_calls"] == [
        {"type": "decision", "name": "claim_status", "input": {"value": "approve"}}
    ]


def test_model_and_object_actions_are_accepted() -> None:
    episode = make_episode()
    model = Message(role="assistant", content="Noted.")
    assert episode.build_turn(model)[-1].content == "Noted."

    @dataclass
    class Call:
        name: str
        input: dict[str, Any]

    @dataclass
    class Act:
        content: str
        tool_calls: list[Call]

    calls = episode.build_turn(
        Act("Here is the summary.", [Call("summary", {"text": "hello world", "priority": 2})])
    )[-1].tool_calls
    assert calls is not None and calls[0].type == "artifact"


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"tool_calls": []}, "action.content"),
        ({"content": 3}, "action.content"),
        ({"content": "x", "tool_call": []}, "action"),
        ({"content": "x", "role": "user"}, "action.role"),
        ({"content": "x", "tool_calls": {"name": "summary"}}, "action.tool_calls"),
        (
            {"content": "x", "tool_calls": [{"name": "nope", "input": {}}]},
            "action.tool_calls[0].name",
        ),
        ({"content": "x", "tool_calls": [{"name": "claim_status"}]}, "action.tool_calls[0].input"),
        (
            {"content": "x", "tool_calls": [{"name": "claim_status", "input": [1]}]},
            "action.tool_calls[0].input",
        ),
        (
            {
                "content": "x",
                "tool_calls": [{"type": "artifact", "name": "claim_status", "input": {}}],
            },
            "action.tool_calls[0].type",
        ),
        ("x" * 10_001, "action.content"),
        (42, "action"),
    ],
)
def test_structural_mistakes_raise_before_sending(action: Any, field: str) -> None:
    episode = make_episode()
    with pytest.raises(LabsValidationError) as caught:
        episode.build_turn(action)
    assert caught.value.field == field
    assert episode.turn == 0 and len(episode.observation()) == 1


def test_display_name_instead_of_id_gets_a_helpful_fix() -> None:
    episode = make_episode()
    with pytest.raises(LabsValidationError, match="'claim_status', not its display name"):
        episode.build_turn({"content": "x", "tool_calls": [{"name": "Claim status", "input": {}}]})


def test_semantic_mistakes_are_sent_unless_validation_is_on() -> None:
    wrong_option = {
        "content": "x",
        "tool_calls": [{"name": "claim_status", "input": {"value": "maybe"}}],
    }
    bad_artifact = {
        "content": "x",
        "tool_calls": [{"name": "summary", "input": {"text": "hi", "priority": 9, "x": 1}}],
    }
    lenient = make_episode()
    assert lenient.build_turn(wrong_option)[-1].tool_calls is not None
    assert lenient.build_turn(bad_artifact)[-1].tool_calls is not None

    strict = make_episode(validate_tool_calls=True)
    with pytest.raises(LabsValidationError, match="one of \\['approve', 'deny', 'escalate'\\]"):
        strict.build_turn(wrong_option)
    with pytest.raises(LabsValidationError) as caught:
        strict.build_turn(bad_artifact)
    problem = caught.value.problem
    assert "fewer than minLength=5" in problem
    assert "above maximum 3" in problem
    assert "unexpected property 'x'" in problem
    good = {
        "content": "x",
        "tool_calls": [
            {"name": "summary", "input": {"text": "hello", "priority": 1, "tags": ["a"]}}
        ],
    }
    assert strict.build_turn(good)[-1].tool_calls is not None


def test_apply_returns_fresh_observations_and_float_scores() -> None:
    episode = make_episode(reward_config=RewardConfig(quality_weights={"discovery": 1.0}))
    episode.build_turn("Q1")
    t1 = episode.apply(
        turn_result(
            1,
            reward=1,
            scores={"D1": 1, "rubrics": {"score": 0.7, "criteria": {"tone": 0.5}}, "note": "x"},
            score_breakdown={"D1": {"reasoning": "ok"}},
        )
    )
    assert t1.reward == 1.0 and isinstance(t1.reward, float)
    assert t1.info["scores"] == {"D1": 1.0, "rubrics.score": 0.7, "rubrics.criteria.tone": 0.5}
    assert all(isinstance(v, float) for v in t1.info["scores"].values())
    assert t1.info["score_breakdown"] == {"D1": {"reasoning": "ok"}}
    assert t1.info["reward_config"] == {
        "quality_weights": {"discovery": 1.0},
        "skip_safety_gate": False,
    }
    assert t1.info["turn"] == 1 and t1.info["request_id"] == "req_1"
    assert "terminal_reason" not in t1.info
    t1.observation[0]["content"] = "mutated"
    assert episode.observation()[0]["content"] == "Hi, I need help."
    episode.build_turn("Q2")
    t2 = episode.apply(turn_result(2))
    assert t2.info["scores"] == {} and "score_breakdown" not in t2.info
    assert t1.observation[1] is not t2.observation[1]


def test_turns_leave_no_reference_cycles_behind() -> None:
    # Cyclic garbage is freed only by the garbage collector: at hundreds of turns per second
    # (vector envs, collect) it would add collections on every step.
    episode = make_episode()
    results = [turn_result(t, scores={"D1": 1, "rubrics": {"score": 0.7}}) for t in (1, 2, 3)]
    gc.collect()
    gc.disable()
    try:
        for turn, result in enumerate(results, start=1):
            episode.build_turn(f"Q{turn}")
            episode.apply(result)
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("reason", "terminated", "truncated", "recorded"),
    [
        ("completed", True, False, "completed"),
        ("error", True, False, "error"),
        ("max_turns_reached", False, True, "max_turns_reached"),
        ("client_terminated", False, True, "client_terminated"),
        ("some_future_reason", True, False, "some_future_reason"),
        (None, True, False, "completed"),
    ],
)
def test_terminal_reason_mapping(
    reason: str | None, terminated: bool, truncated: bool, recorded: str
) -> None:
    episode = make_episode()
    episode.build_turn("bye")
    t = episode.apply(turn_result(1, episode_complete=True, terminal_reason=reason))
    assert (t.terminated, t.truncated) == (terminated, truncated)
    assert t.info["terminal_reason"] == recorded
    assert episode.done and episode.terminal_reason == recorded


def test_turn_mismatch_is_detected_and_ends_the_episode() -> None:
    episode = make_episode()
    episode.build_turn("Q1")
    episode.apply(turn_result(1))
    episode.build_turn("Q2")
    with pytest.raises(TurnMismatchError, match=r"reports turn 3 .* submitted 2"):
        episode.apply(turn_result(3))
    assert episode.done and episode.turn == 1


def test_apply_without_pending_turn_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        make_episode().apply(turn_result(1))


def test_transcript_and_context() -> None:
    episode = make_episode()
    episode.build_turn(
        {
            "content": "Deciding",
            "tool_calls": [{"name": "claim_status", "input": {"value": "deny"}}],
        }
    )
    episode.apply(
        turn_result(1, scores={"D1": 0.25}, episode_complete=True, terminal_reason="completed")
    )
    text = episode.transcript()
    assert "persona: Hi, I need help." in text
    assert "agent: Deciding" in text and "decision claim_status" in text
    assert "reward=0.500" in text and "D1=0.25" in text and "ended: completed" in text
    context = episode.context(description="d", max_turns=5)
    assert (context.episode_id, context.turn, context.seed, context.max_turns) == ("ep_1", 1, 7, 5)
    assert [t.id for t in context.tools] == ["claim_status", "summary"]


def test_helpers() -> None:
    assert end_flags(False, "completed") == (False, False)
    assert flatten_scores(None) == {}
    assert flatten_scores({"a": True, "b": None, "c": [1]}) == {}
    assert coerce_reward_config(None) is None
    config = coerce_reward_config({"quality_weights": {"rubrics": 2}})
    assert config is not None and config.quality_weights == {"rubrics": 2.0}
    with pytest.raises(LabsValidationError, match="unknown quality_weights"):
        coerce_reward_config({"quality_weights": {"nope": 1}})
    with pytest.raises(LabsValidationError):
        coerce_reward_config("discovery")
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert [draw_scenario(a, ["x", "y", "z"]) for _ in range(5)] == [
        draw_scenario(b, ["x", "y", "z"]) for _ in range(5)
    ]
    assert draw_episode_seed(np.random.default_rng(1)) == draw_episode_seed(
        np.random.default_rng(1)
    )
    with pytest.raises(LabsValidationError):
        draw_scenario(a, [])


def test_plan_episode_draws_and_applies_options() -> None:
    from labs_env.rollout.planning import plan_episode, scenario_choice

    def plan(seed: int, **kwargs: Any) -> Any:
        base: dict[str, Any] = {
            "collection": "col",
            "scenarios": ("a", "b", "c"),
            "reward_config": None,
            "config": {"difficulty": 2},
        }
        return plan_episode(np.random.default_rng(seed), **{**base, **kwargs})

    first = plan(1)
    assert first == plan(1)  # a seeded generator gives the same plan
    assert first.scenario in ("a", "b", "c") and first.config["difficulty"] == 2
    assert first.seed == first.config["seed"] and isinstance(first.seed, int)
    assert {plan(s).scenario for s in range(20)} == {"a", "b", "c"}
    custom = plan(
        1,
        options={
            "scenario": "z",
            "config": {"seed": 9, "difficulty": 3},
            "reward_config": {"quality_weights": {"rubrics": 1}},
        },
    )
    assert (custom.scenario, custom.seed, custom.config["difficulty"]) == ("z", 9, 3)
    assert custom.reward_config is not None and custom.reward_config.active_scorers == ("rubrics",)
    default = RewardConfig(quality_weights={"discovery": 1.0})
    assert plan(1, reward_config=default, options={"reward_config": None}).reward_config is None
    assert plan(1, reward_config=default).reward_config == default
    for bad in ({"senario": "a"}, {"config": 3}, {"scenario": 5}):
        with pytest.raises(LabsValidationError):
            plan(1, options=bad)
    assert scenario_choice(None) is None and scenario_choice("*") is None
    assert scenario_choice("a") == ("a",) and scenario_choice(["a", "b"]) == ("a", "b")
    for bad_choice in ("", [], ["a", ""]):
        with pytest.raises(LabsValidationError):
            scenario_choice(bad_choice)


def test_turn_body_from_the_episode_encoding_is_the_request_models_bytes() -> None:
    from labs_env.client.requests import submit_turn_spec
    from labs_env.models import SubmitTurnRequest

    episode = make_episode(reward_config=RewardConfig(quality_weights={"discovery": 1.0}))
    for turn in range(1, 4):
        action = {
            "content": f'turn {turn}: é \x00 "quoted" \n',
            "tool_calls": [{"name": "claim_status", "input": {"value": "deny"}}],
        }
        messages = episode.build_turn(action if turn == 2 else f"plain {turn}")
        for config in (None, episode.reward_config):
            body = submit_turn_spec("ep_1", messages, reward_config=config).body
            expected = SubmitTurnRequest(
                id="ep_1", messages=list(messages), reward_config=config
            ).model_dump_json(exclude_none=True)
            assert body == expected.encode()
        episode.apply(turn_result(turn))


def test_a_built_turn_is_immutable_and_an_edited_copy_is_encoded_from_its_contents() -> None:
    from labs_env.client.requests import submit_turn_spec

    episode = make_episode()
    messages = episode.build_turn("hello")
    with pytest.raises(TypeError):
        messages[-1] = Message(role="assistant", content="edited")  # type: ignore[index]
    edited = list(messages)
    edited[-1] = Message(role="assistant", content="edited")
    body = submit_turn_spec("ep_1", edited).body
    assert body is not None and b"edited" in body and b"hello" not in body
    edited.append(Message(role="assistant", content="more"))
    assert b"more" in (submit_turn_spec("ep_1", edited).body or b"")
