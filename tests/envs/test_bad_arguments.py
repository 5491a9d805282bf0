"""Bad arguments of the envs, the collection and the Ray collector: a ``LabsValidationError``
naming the field and the fix, before anything is sent (and nothing is sent)."""

from __future__ import annotations

import json
import math
from typing import Any

import gymnasium as gym
import pytest

from labs_env import (
    LabsEnv,
    LabsValidationError,
    LabsVectorEnv,
    RewardConfig,
)
from labs_env.connect import make_local_async_client, make_local_client
from labs_env.rollout.collection import collect_sync
from labs_env.rollout.specs import EpisodeSpec, episode_specs
from tests.kit.scenarios import ASK, COLLECTION, DECIDE, TALK

FLAGS = [("score_turns", "no"), ("validate_tool_calls", "false"), ("score_turns", 1)]


def ask(history: object, context: object) -> str:
    return ASK


@pytest.mark.parametrize("max_turns", [0, -1, 1.5, True])
def test_collect_rejects_a_max_turns_below_one(max_turns: Any) -> None:
    specs = episode_specs(COLLECTION, TALK)
    with pytest.raises(LabsValidationError, match="max_turns"):
        collect_sync(ask, specs, client=make_local_async_client(), max_turns=max_turns)


@pytest.mark.parametrize(("name", "value"), FLAGS)
def test_flags_must_be_booleans_everywhere(name: str, value: object) -> None:
    specs = episode_specs(COLLECTION, TALK)
    with pytest.raises(LabsValidationError, match=name):
        LabsEnv(COLLECTION, TALK, **{name: value})
    with pytest.raises(LabsValidationError, match=name):
        LabsVectorEnv(2, COLLECTION, TALK, **{name: value})
    with pytest.raises(LabsValidationError, match=name):
        collect_sync(ask, specs, client=make_local_async_client(), **{name: value})


@pytest.mark.parametrize(("name", "value"), [*FLAGS, ("max_turns", 0)])
def test_ray_collector_checks_its_arguments_before_starting_ray(name: str, value: object) -> None:
    pytest.importorskip("ray")
    from labs_env.distributed import RayCollector

    with pytest.raises(LabsValidationError, match=name):
        RayCollector(ask, **{name: value})


NAN_CONFIGS = [{"seed": math.nan}, {"seed": 1, "options": [math.inf]}]


@pytest.mark.parametrize("config", NAN_CONFIGS)
def test_a_non_finite_config_value_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(LabsValidationError, match=r"config\.(seed|options\[0\])"):
        LabsEnv(COLLECTION, TALK, config=config)
    with pytest.raises(LabsValidationError, match=r"config\.(seed|options\[0\])"):
        LabsVectorEnv(2, COLLECTION, TALK, config=config)
    with pytest.raises(LabsValidationError, match=r"config\.(seed|options\[0\])"):
        EpisodeSpec(COLLECTION, TALK, config=config)
    with pytest.raises(LabsValidationError, match=r"config\.(seed|options\[0\])"):
        episode_specs(COLLECTION, TALK, config=config)
    with make_local_client() as client, pytest.raises(LabsValidationError, match="config"):
        client.create_episode(COLLECTION, TALK, config=config)


def test_a_non_finite_reset_config_is_refused_before_anything_is_sent() -> None:
    with LabsEnv(COLLECTION, TALK) as env, pytest.raises(LabsValidationError, match="seed"):
        env.reset(options={"config": {"seed": math.nan}})
    venv = LabsVectorEnv(2, COLLECTION, TALK)
    try:
        with pytest.raises(LabsValidationError, match=r"options\.config\.seed"):
            venv.reset(options={"config": {"seed": math.nan}})
    finally:
        venv.close()


@pytest.mark.parametrize("extra", [{"t": math.nan}, {"t": object()}])
def test_spec_extra_must_be_json(extra: dict[str, Any]) -> None:
    with pytest.raises(LabsValidationError, match=r"extra\.t"):
        EpisodeSpec(COLLECTION, TALK, extra=extra)


@pytest.mark.parametrize("scenario", [123, [TALK, 7], b"talk"])
def test_a_scenario_that_is_not_a_slug_is_refused(scenario: Any) -> None:
    with pytest.raises(LabsValidationError, match="scenario"):
        LabsEnv(COLLECTION, scenario)
    with pytest.raises(LabsValidationError, match="scenario"):
        LabsVectorEnv(2, COLLECTION, scenario)
    with pytest.raises(LabsValidationError, match="scenario"):
        episode_specs(COLLECTION, scenario)


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return root


BAD_INPUTS = [
    ({"value": math.nan}, r"input\.value.*not a finite number"),
    ({"value": object()}, r"input\.value.*not a JSON value"),
    ({"value": "approve\ud800"}, r"input\.value.*lone surrogate"),
    (_deep(5000), r"input(\.a)+.*deeper than"),
    ({1: "approve"}, r"input.*key 1"),
]


@pytest.mark.parametrize(("payload", "match"), BAD_INPUTS)
def test_a_tool_input_that_is_not_plain_json_is_refused(payload: Any, match: str) -> None:
    with LabsEnv(COLLECTION, DECIDE) as env:
        env.reset(seed=0)
        action = {"content": "x", "tool_calls": [{"name": "claim_status", "input": payload}]}
        with pytest.raises(LabsValidationError, match=match):
            env.step(action)
        assert env.unwrapped.episode.turn == 0  # nothing was sent
        env.step(ASK)  # the episode goes on


def test_a_message_with_a_lone_surrogate_names_the_field() -> None:
    with LabsEnv(COLLECTION, TALK) as env:
        env.reset(seed=0)
        with pytest.raises(LabsValidationError, match=r"^action\.content: .*lone surrogate"):
            env.step("Hello \udc80")


def test_the_client_refuses_a_tool_input_that_is_not_plain_json() -> None:
    message = {
        "role": "assistant",
        "content": "x",
        "tool_calls": [{"type": "decision", "name": "claim_status", "input": {"v": math.nan}}],
    }
    with make_local_client() as client:
        created = client.create_episode(COLLECTION, DECIDE)
        with pytest.raises(LabsValidationError, match=r"messages\[0\]\.tool_calls\[0\]\.input"):
            client.submit_turn(created.episode_id, [message])


def _spec_json(env: gym.Env[Any, Any]) -> dict[str, Any]:
    try:
        return dict(json.loads(env.spec.to_json()))  # type: ignore[union-attr]
    finally:
        env.close()


REWARD = {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True}


@pytest.mark.parametrize("reward_config", [REWARD, RewardConfig.model_validate(REWARD)])
def test_the_spec_of_an_env_without_a_client_is_json(reward_config: Any) -> None:
    made = _spec_json(
        gym.make("labs_env:Labs-v0", collection=COLLECTION, reward_config=reward_config)
    )
    assert made["kwargs"]["reward_config"] == REWARD
    direct = _spec_json(LabsEnv(COLLECTION, TALK, reward_config=reward_config))
    assert direct["kwargs"]["reward_config"] == REWARD
    remade = gym.make(gym.envs.registration.EnvSpec.from_json(json.dumps(direct)))
    try:
        assert remade.unwrapped.reward_config == RewardConfig.model_validate(REWARD)
    finally:
        remade.close()


def test_the_spec_of_an_env_with_a_client_or_key_says_why_it_has_no_json() -> None:
    with make_local_client() as client:
        env = gym.make("labs_env:Labs-v0", collection=COLLECTION, client=client)
        with pytest.raises(LabsValidationError, match=r"^spec\.kwargs\.client: "):
            _spec_json(env)
    key = "lab_" + "k" * 28
    env = LabsEnv(COLLECTION, TALK, api_key=key, base_url="http://127.0.0.1:9")
    with pytest.raises(LabsValidationError, match=r"^spec\.kwargs\.api_key: ") as caught:
        _spec_json(env)
    assert key not in str(caught.value)
