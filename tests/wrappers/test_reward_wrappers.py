"""Curriculum, score-reward and sparse-scoring wrappers against the local server."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

from labs_env import (
    DOCUMENTED_CURRICULUM,
    CurriculumPhase,
    CurriculumWrapper,
    LabsClient,
    LabsEnv,
    LabsValidationError,
    ScoreRewardWrapper,
    SparseFinalScoring,
)
from tests.kit.scenarios import COLLECTION, DECIDE, DECISION, TALK
from tests.kit.transports import counting_client

QUESTION = "I'm sorry to hear that. What is your claim number, and when did it happen?"


def play(env: gym.Env[Any, Any], actions: list[Any], seed: int | None = None) -> list[tuple]:
    """Reset, then step through ``actions`` until the episode ends; the step tuples."""
    env.reset(seed=seed)
    steps = []
    for action in actions:
        step = env.step(action)
        steps.append(step)
        if step[2] or step[3]:
            break
    return steps


# ---------------------------------------------------------------- curriculum


def test_documented_curriculum_is_one_line_and_switches_by_episode_count(
    local_client: LabsClient,
) -> None:
    env = CurriculumWrapper.documented(
        LabsEnv(COLLECTION, DECIDE, client=local_client), episodes=(2, 1)
    )
    seen = []
    for episode in range(5):
        _, info = env.reset(seed=episode)
        _, _, terminated, _, step_info = env.step(DECISION)
        assert terminated
        seen.append((info["curriculum_phase_name"], step_info["reward_config"]))
    env.close()
    discovery = {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True}
    mixed = DOCUMENTED_CURRICULUM[1].reward_config
    assert mixed is not None
    assert seen == [
        ("discovery", discovery),
        ("discovery", discovery),
        ("mixed", mixed.model_dump()),
        ("full", None),
        ("full", None),
    ]


def test_curriculum_config_is_sent_with_every_turn_and_phase_in_info(
    local_client: LabsClient,
) -> None:
    env = CurriculumWrapper.documented(LabsEnv(COLLECTION, TALK, client=local_client))
    _, info = env.reset(seed=0)
    assert (info["curriculum_phase"], info["reward_config"]["quality_weights"]) == (
        0,
        {"discovery": 1.0},
    )
    for _ in range(2):
        _, _, _, _, info = env.step(QUESTION)
        assert info["curriculum_phase"] == 0
        assert info["reward_config"]["quality_weights"] == {"discovery": 1.0}
    env.close()


def test_adaptive_curriculum_advances_on_the_rolling_mean(local_client: LabsClient) -> None:
    phases = [
        CurriculumPhase.make("easy", {"quality_weights": {"discovery": 1.0}}, advance_at=0.5),
        CurriculumPhase.make("hard", None),
    ]
    env = CurriculumWrapper(LabsEnv(COLLECTION, DECIDE, client=local_client), phases, window=2)
    bad = {"content": "x", "tool_calls": [{"name": "claim_status", "input": {"value": "nope"}}]}
    for _ in range(3):  # low rewards: stays in phase 0
        play(env, [bad])
        assert env.phase_index == 0
    mean_low = env.rolling_mean
    assert mean_low is not None and mean_low < 0.5
    phase_names = []
    for _ in range(4):  # good episodes: the mean rises over the window, then it advances
        _, info = env.reset()
        phase_names.append(info["curriculum_phase_name"])
        for _ in range(8):
            if env.step(QUESTION)[2:4] != (False, False):
                break
        else:
            env.step(DECISION)
    env.close()
    assert phase_names[0] == "easy" and phase_names[-1] == "hard"


def test_gate_check_episodes_turn_the_safety_gate_on(local_client: LabsClient) -> None:
    env = CurriculumWrapper.documented(
        LabsEnv(COLLECTION, DECIDE, client=local_client), episodes=(10, 10), gate_check_every=2
    )
    gates = []
    for _ in range(4):
        _, info = env.reset()
        gates.append((info["curriculum_gate_check"], info["reward_config"]["skip_safety_gate"]))
        env.step(DECISION)
    env.close()
    assert gates == [(False, True), (True, False), (False, True), (True, False)]


def test_curriculum_validation(local_client: LabsClient) -> None:
    env = LabsEnv(COLLECTION, DECIDE, client=local_client)
    with pytest.raises(LabsValidationError, match="no way to end"):
        CurriculumWrapper(env, [CurriculumPhase("a"), CurriculumPhase("b")])
    with pytest.raises(LabsValidationError):
        CurriculumWrapper(env, [])
    with pytest.raises(LabsValidationError):
        CurriculumPhase.make("x", {"quality_weights": {"unknown": 1.0}})
    env.close()


# ---------------------------------------------------------------- score reward


def test_score_reward_from_weights_keeps_the_labs_reward_in_info(local_client: LabsClient) -> None:
    weights = {"D1_InformationGathering": 3.0, "rubrics.score": 1.0}
    env = ScoreRewardWrapper(LabsEnv(COLLECTION, TALK, client=local_client), weights)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(QUESTION)
    scores = info["scores"]
    expected = (3 * scores["D1_InformationGathering"] + scores["rubrics.score"]) / 4
    assert reward == pytest.approx(expected)
    assert 0.0 <= info["labs_reward"] <= 1.0 and "D3_Safety" in scores
    env.close()


def test_score_reward_from_a_function_and_missing_dimensions(local_client: LabsClient) -> None:
    env = ScoreRewardWrapper(
        LabsEnv(COLLECTION, TALK, client=local_client),
        fn=lambda scores, info: min(scores.values()),
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step(QUESTION)
    assert reward == min(info["scores"].values())
    env.close()

    typo = ScoreRewardWrapper(LabsEnv(COLLECTION, TALK, client=local_client), {"D1": 1.0})
    typo.reset(seed=0)
    with pytest.raises(LabsValidationError, match="available: \\['D1_Information"):
        typo.step(QUESTION)
    typo.close()

    zero = ScoreRewardWrapper(
        LabsEnv(COLLECTION, TALK, client=local_client), {"D1": 1.0}, missing="zero"
    )
    zero.reset(seed=0)
    assert zero.step(QUESTION)[1] == 0.0
    zero.close()
    with pytest.raises(LabsValidationError):
        ScoreRewardWrapper(LabsEnv(COLLECTION, TALK, client=local_client), {"D1": -1.0})


# ---------------------------------------------------------------- sparse scoring


def test_sparse_final_scoring_rewards_only_the_last_step(local_client: LabsClient) -> None:
    client, transport = counting_client()
    env = SparseFinalScoring(LabsEnv(COLLECTION, DECIDE, client=client))
    steps = play(env, [QUESTION, QUESTION, DECISION], seed=0)
    rewards = [float(s[1]) for s in steps]
    assert rewards[:-1] == [0.0, 0.0] and rewards[-1] > 0.0
    last_info = steps[-1][4]
    assert last_info["final_evaluation"] and last_info["scores"]
    assert not steps[0][4]["final_evaluation"]
    assert steps[0][4]["scores"] == {}  # turns were played unscored
    assert transport.paths().count("/api/v1/evaluate") == 1
    env.close()

    # The evaluation equals scoring the same conversation directly.
    direct = local_client.evaluate(COLLECTION, DECIDE, list(steps[-1][0]))
    assert rewards[-1] == pytest.approx(direct.reward)


def test_sparse_scoring_under_an_outer_time_limit() -> None:
    env = gym.make("labs_env:Labs-v0", collection=COLLECTION, scenario=TALK)
    env = gym.wrappers.TimeLimit(SparseFinalScoring(env), max_episode_steps=2)
    steps = play(env, [QUESTION] * 5, seed=0)
    assert len(steps) == 2 and steps[-1][3] is True
    # TimeLimit sits outside: the wrapper saw no end, so no evaluation happened.
    assert steps[-1][1] == 0.0
    env.close()
    inner = SparseFinalScoring(
        gym.wrappers.TimeLimit(
            gym.make("labs_env:Labs-v0", collection=COLLECTION, scenario=TALK),
            max_episode_steps=2,
        )
    )
    steps = play(inner, [QUESTION] * 5, seed=0)
    assert len(steps) == 2 and steps[-1][1] > 0.0 and steps[-1][4]["final_evaluation"]
    inner.close()


def test_sparse_scoring_needs_a_labs_env() -> None:
    with pytest.raises(LabsValidationError):
        SparseFinalScoring(gym.make("CartPole-v1"))


def test_wrappers_compose(local_client: LabsClient) -> None:
    env = ScoreRewardWrapper(
        CurriculumWrapper.documented(LabsEnv(COLLECTION, DECIDE, client=local_client)),
        {"D1_InformationGathering": 1.0},
    )
    _, info = env.reset(seed=0)
    _, reward, _, _, info = env.step(QUESTION)
    assert info["curriculum_phase_name"] == "discovery"
    # Only the active scorers run (discovery feeds D1): the reward is that dimension.
    assert reward == info["scores"]["D1_InformationGathering"]
    env.close()
