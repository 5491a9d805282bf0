"""Registry ids, gym.make / make_vec and Gymnasium's standard wrappers."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import RecordEpisodeStatistics, TimeLimit
from gymnasium.wrappers.vector import DictInfoToList
from gymnasium.wrappers.vector import RecordEpisodeStatistics as VectorEpisodeStatistics

import labs_env
from labs_env import LabsClient, LabsEnv, register_catalog
from labs_env.envs.registration import scenario_env_id
from labs_env.envs.spaces import AgentAction, MessageHistory
from tests.kit.scenarios import COLLECTION, DECIDE, DECISION, TALK

QUESTION = "Could you tell me what happened?"


def test_importing_registers_labs_v0() -> None:
    spec = gym.spec("Labs-v0")
    assert spec.entry_point == "labs_env.envs.env:LabsEnv"
    assert spec.nondeterministic is True
    assert spec.vector_entry_point == "labs_env.envs.vector_env:LabsVectorEnv"
    labs_env.register_envs()  # idempotent


def test_gym_make_with_module_prefix() -> None:
    env = gym.make("labs_env:Labs-v0", collection=COLLECTION, scenario=DECIDE)
    assert isinstance(env.unwrapped, LabsEnv)
    assert env.spec is not None and env.spec.id == "Labs-v0"
    assert env.observation_space == MessageHistory() and env.action_space == AgentAction()
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(DECISION)
    assert terminated and isinstance(reward, float) and info["terminal_reason"] == "completed"
    env.close()


def test_gym_make_shares_a_client_passed_in(local_client: LabsClient) -> None:
    env = gym.make("labs_env:Labs-v0", collection=COLLECTION, scenario=DECIDE, client=local_client)
    assert env.unwrapped.client is local_client  # type: ignore[attr-defined]
    env.close()
    assert not local_client.closed


def test_register_catalog_adds_one_id_per_scenario(local_client: LabsClient) -> None:
    catalog = local_client.catalog()
    ids = register_catalog(local_client)
    expected = [scenario_env_id(c.slug, s.slug) for c in catalog.collections for s in c.scenarios]
    assert ids == expected and len(ids) >= 2
    assert register_catalog(local_client) == ids  # idempotent
    env_id = scenario_env_id(COLLECTION, DECIDE)
    assert env_id == f"Labs-{COLLECTION}-{DECIDE}-v0"
    assert gym.spec(env_id).nondeterministic is True
    env = gym.make(env_id)
    _, info = env.reset(seed=0)
    assert (info["collection"], info["scenario"]) == (COLLECTION, DECIDE)
    env.close()
    assert register_catalog() == ids  # default: the embedded server's catalog


def test_time_limit_and_record_episode_statistics() -> None:
    env = RecordEpisodeStatistics(
        gym.make("labs_env:Labs-v0", collection=COLLECTION, scenario=TALK, max_episode_steps=3)
    )
    assert isinstance(env.env, TimeLimit)
    env.reset(seed=0)
    rewards = []
    for _ in range(5):
        _, reward, terminated, truncated, info = env.step(QUESTION)
        rewards.append(reward)
        if terminated or truncated:
            break
    assert len(rewards) == 3 and truncated and not terminated
    assert info["episode"]["l"] == 3
    assert info["episode"]["r"] == pytest.approx(sum(rewards))
    env.close()


def test_make_vec_sync_with_dict_info_to_list() -> None:
    envs = gym.make_vec(
        "labs_env:Labs-v0",
        num_envs=2,
        vectorization_mode="sync",
        collection=COLLECTION,
        scenario=DECIDE,
    )
    envs = DictInfoToList(VectorEpisodeStatistics(envs))
    obs, infos = envs.reset(seed=3)
    assert len(obs) == 2 and obs in envs.observation_space
    assert [info["turn"] for info in infos] == [0, 0]
    assert infos[0]["episode_id"] != infos[1]["episode_id"]
    obs, rewards, terminated, truncated, infos = envs.step((QUESTION, DECISION))
    assert isinstance(rewards, np.ndarray) and rewards.dtype == np.float64
    assert terminated.tolist() == [False, True] and truncated.tolist() == [False, False]
    assert all(isinstance(v, float) for v in infos[0]["scores"].values())
    assert infos[1]["terminal_reason"] == "completed"
    assert infos[1]["episode"]["l"] == 1
    obs, _, _, _, infos = envs.step((QUESTION, QUESTION))  # env 1 autoresets
    assert infos[0]["turn"] == 2 and infos[1]["turn"] == 0
    assert len(obs[1]) == 1
    envs.close()


def test_make_vec_action_space_samples_are_valid_actions() -> None:
    envs: Any = gym.make_vec(
        "labs_env:Labs-v0",
        num_envs=2,
        vectorization_mode="sync",
        collection=COLLECTION,
        scenario=TALK,
    )
    envs.reset(seed=0)
    actions = envs.action_space.sample()
    assert len(actions) == 2 and all(isinstance(a, str) for a in actions)
    _, rewards, _, _, _ = envs.step(actions)
    assert rewards.shape == (2,)
    envs.close()
