"""LabsVectorEnv: registry, batching, autoreset modes, per-env settings, the async API."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode

import labs_env
from labs_env import LabsClient, LabsEnv, LabsValidationError
from labs_env.envs import LabsVectorEnv, PerEnv
from tests.kit.scenarios import ASK, COLLECTION, DECIDE, TALK, THEFT
from tests.kit.transports import ScriptedTransport, async_client

FakeVenv = Callable[..., LabsVectorEnv]

DISCOVERY = {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True}


def test_make_vec_returns_the_vector_env_through_the_registered_entry_point() -> None:
    client = async_client()
    for mode in ("vector_entry_point", None):
        venv = gym.make_vec(
            "labs_env:Labs-v0",
            num_envs=3,
            vectorization_mode=mode,
            collection=COLLECTION,
            scenario=TALK,
            client=client,
        )
        assert isinstance(venv, LabsVectorEnv)
        assert venv.num_envs == 3
        assert venv.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
        assert venv.spec is not None and venv.spec.id == "Labs-v0"
        obs, _ = venv.reset(seed=1)
        assert len(obs) == 3 and all(o[0]["role"] == "user" for o in obs)
        assert obs in venv.observation_space
        venv.close()
    assert not client.closed  # a client passed in is not closed by the env


def test_reset_draws_episodes_exactly_as_labs_env_does(local_client: LabsClient) -> None:
    venv = LabsVectorEnv(
        3, collection=COLLECTION, scenario=[TALK, DECIDE, THEFT], client=async_client()
    )
    obs, infos = venv.reset(seed=7)
    single = LabsEnv(collection=COLLECTION, scenario=[TALK, DECIDE, THEFT], client=local_client)
    for i in range(3):
        env_obs, env_info = single.reset(seed=7 + i)
        assert infos["scenario"][i] == env_info["scenario"]
        assert infos["seed"][i] == env_info["seed"]
        assert obs[i] == env_obs
    venv.close()
    single.close()


def test_step_batches_rewards_flags_and_typed_infos_for_mixed_scenarios() -> None:
    venv = LabsVectorEnv(
        3, collection=COLLECTION, scenario=PerEnv([TALK, DECIDE, THEFT]), client=async_client()
    )
    venv.reset(seed=0)
    obs, rewards, terminated, truncated, infos = venv.step([ASK] * 3)
    assert rewards.dtype == np.float64 and rewards.shape == (3,)
    assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_
    assert all(len(o) == 3 and o[1] == {"role": "assistant", "content": ASK} for o in obs)
    scores = infos["scores"]
    # D5_DecisionAccuracy exists only for the decision scenario: NaN elsewhere, never 0.
    decision = scores["D5_DecisionAccuracy"]
    assert decision.dtype == np.float64
    assert np.isnan(decision[0]) and np.isnan(decision[2]) and not np.isnan(decision[1])
    assert scores["_D5_DecisionAccuracy"].tolist() == [False, True, False]
    assert all(v.dtype == np.float64 for k, v in scores.items() if not k.startswith("_"))
    assert scores["_D1_InformationGathering"].all()
    assert infos["turn"].dtype == np.int64 and infos["turn"].tolist() == [1, 1, 1]
    assert infos["scenario"].tolist() == [TALK, DECIDE, THEFT]
    assert infos["_episode_id"].all()
    venv.close()


def run_until_any_done(venv: LabsVectorEnv, actions: list[object], limit: int = 20) -> tuple:
    for _ in range(limit):
        result = venv.step(actions)
        if (result[2] | result[3]).any():
            return result
    raise AssertionError("no episode ended")


def test_same_step_autoreset_returns_the_new_episode_and_the_final_obs_in_info(
    fake_venv: FakeVenv,
) -> None:
    venv = fake_venv(2)
    obs, _ = venv.reset(seed=0)
    obs, rewards, terminated, _, infos = venv.step(["DONE", "hi"])
    assert terminated.tolist() == [True, False]
    assert rewards[0] > 0
    assert len(obs[0]) == 1  # the new episode's opening
    assert len(obs[1]) == 3
    assert infos["_final_obs"].tolist() == [True, False]
    final_obs = infos["final_obs"][0]
    assert final_obs[-2]["content"] == "DONE" and final_obs[-1]["content"] == "Goodbye."
    final = infos["final_info"]
    assert final["_terminal_reason"].tolist() == [True, False]
    assert final["terminal_reason"][0] == "completed"
    assert infos["turn"].tolist() == [0, 1]  # env 0 reports its reset info
    assert infos["episode_id"][0] != final["episode_id"][0]
    obs, *_ = venv.step(["hi", "hi"])
    assert len(obs[0]) == 3
    venv.close()


def test_next_step_autoreset_resets_in_the_following_step_and_ignores_that_action(
    fake_venv: FakeVenv,
) -> None:
    venv = fake_venv(2, autoreset_mode=AutoresetMode.NEXT_STEP)
    assert venv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    venv.reset(seed=0)
    obs, _, terminated, _, infos = venv.step(["DONE", "hi"])
    assert terminated.tolist() == [True, False]
    assert "final_obs" not in infos and len(obs[0]) == 3
    obs, rewards, terminated, truncated, infos = venv.step([None, "hi"])
    assert len(obs[0]) == 1 and len(obs[1]) == 5
    assert rewards[0] == 0.0 and not terminated[0] and not truncated[0]
    assert infos["turn"].tolist() == [0, 2]
    venv.close()


def test_disabled_autoreset_needs_a_masked_reset(fake_venv: FakeVenv) -> None:
    venv = fake_venv(2, autoreset_mode="Disabled")
    obs, _ = venv.reset(seed=0)
    venv.step(["DONE", "hi"])
    with pytest.raises(ResetNeeded):
        venv.step(["hi", "hi"])
    obs, infos = venv.reset(options={"reset_mask": np.array([True, False])})
    assert len(obs[0]) == 1 and len(obs[1]) == 3
    assert infos["_episode_id"].tolist() == [True, False]
    obs, *_ = venv.step(["hi", "hi"])
    assert len(obs[0]) == 3 and len(obs[1]) == 5
    venv.close()


def test_per_env_reward_configs_and_setting_them_later() -> None:
    venv = LabsVectorEnv(
        2,
        collection=COLLECTION,
        scenario=TALK,
        reward_config=[DISCOVERY, None],
        client=async_client(),
    )
    _, infos = venv.reset(seed=0)
    assert infos["reward_config"][0]["quality_weights"] == {"discovery": 1.0}
    assert infos["reward_config"][1] is None
    venv.set_reward_config(DISCOVERY, [1])
    assert [c is not None for c in venv.reward_configs()] == [True, True]
    *_, infos = venv.step([ASK, ASK])
    assert infos["reward_config"][1]["quality_weights"] == {"discovery": 1.0}
    venv.close()


def test_bad_arguments_and_actions_fail_before_anything_is_sent(fake_venv: FakeVenv) -> None:
    with pytest.raises(LabsValidationError):
        LabsVectorEnv(2, scenario=PerEnv([TALK]), client=async_client())
    with pytest.raises(LabsValidationError):
        LabsVectorEnv(2, on_error="ignore", client=async_client())
    with pytest.raises(LabsValidationError):
        LabsVectorEnv(2, autoreset_mode="sometimes", client=async_client())
    venv = fake_venv(2)
    with pytest.raises(ResetNeeded):
        venv.step(["hi", "hi"])
    venv.reset(seed=0)
    with pytest.raises(LabsValidationError, match=r"actions\[1\]"):
        venv.step(["hi", {"content": 3}])
    with pytest.raises(LabsValidationError):
        venv.step(["hi"])
    obs, *_ = venv.step(["hi", "hi"])  # nothing was sent by the refused steps
    assert len(obs[0]) == 3
    venv.close()


def test_async_api_runs_on_the_callers_loop_without_a_thread(fake_venv: FakeVenv) -> None:
    threads_before = set(threading.enumerate())

    async def main() -> None:
        venv = fake_venv(3)
        obs, _ = await venv.areset(seed=0)
        assert len(obs) == 3
        obs, _, terminated, _, _ = await venv.astep(["hi", "DONE", "hi"])
        assert terminated.tolist() == [False, True, False]
        assert set(threading.enumerate()) == threads_before
        with pytest.raises(RuntimeError, match="async API"):
            venv.step(["hi"] * 3)
        await venv.aclose()
        assert venv.closed
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


def test_render_gives_each_transcript(fake_venv: FakeVenv) -> None:
    venv = fake_venv(2, render_mode="ansi")
    venv.reset(seed=0)
    venv.step(["hello there", "hi"])
    frames = venv.render()
    assert frames is not None and len(frames) == 2 and "hello there" in frames[0]
    venv.close()


def test_public_names_are_exported() -> None:
    assert labs_env.LabsVectorEnv is LabsVectorEnv
    assert labs_env.PerEnv is PerEnv


def test_max_concurrency_bounds_the_requests_in_flight() -> None:
    transport = ScriptedTransport(yields=3)
    venv = LabsVectorEnv(
        6,
        collection=COLLECTION,
        scenario=TALK,
        client=async_client(transport),
        max_concurrency=2,
        prefetch=False,
    )
    venv.reset(seed=0)
    obs, *_ = venv.step([ASK] * 6)
    assert all(len(o) == 3 for o in obs)
    assert transport.max_in_flight == 2
    venv.close()


def test_prefetched_episodes_are_created_behind_a_steps_turns_and_used_by_autoreset() -> None:
    transport = ScriptedTransport()
    venv = LabsVectorEnv(
        2, collection=COLLECTION, scenario=TALK, client=async_client(transport), max_episode_steps=2
    )

    def requests_of(call: Any) -> list[str]:
        start = len(transport.requests)
        call()
        return [path.rsplit("/", 1)[-1] for _, path in transport.requests[start:]]

    assert requests_of(lambda: venv.reset(seed=0)) == ["catalog", "episodes", "episodes"]
    # each env's next episode is created once the step's turns are out, not on its critical path
    assert requests_of(lambda: venv.step([ASK] * 2)) == ["turns", "turns", "episodes", "episodes"]
    outcome: list[Any] = []
    # both episodes reach max_episode_steps: the autoreset takes the prefetched episodes at once
    sent = requests_of(lambda: outcome.extend(venv.step([ASK] * 2)))
    obs, _, _, truncated, infos = outcome
    assert truncated.all() and [len(o) for o in obs] == [1, 1]
    assert "episodes" not in sent and sent.count("turns") == 2
    assert infos["final_info"]["turn"].tolist() == [2, 2]
    assert requests_of(lambda: venv.step([ASK] * 2))[:4] == [
        "turns",
        "turns",
        "episodes",
        "episodes",
    ]
    venv.close()
    created, ended = len(transport.paths("/episodes")), len(transport.paths("/terminate"))
    assert created == 6 and ended == 6  # 2 cut by max_episode_steps, 2 running, 2 prefetched
