"""End to end on the embedded local server: policies play, records are summarised, compared,
plotted and exported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _fake_chat import fake_chat_server

from labs_env.connect import make_local_client
from labs_env.datasets import dpo_pairs, grpo_groups, sft_examples
from labs_env.envs.env import LabsEnv
from labs_env.evaluation import StatsOptions, compare, render_markdown, summarize
from labs_env.policies import load_policy
from labs_env.rollout.policy import call_policy
from labs_env.rollout.trajectory import TrajectoryRecord, read_trajectories
from labs_env.wrappers import TrajectoryRecorder

EPISODES = 6


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with make_local_client() as local:
        yield local


def _play(client: Any, policy: Any, path: Path, episodes: int = EPISODES) -> list[TrajectoryRecord]:
    collection = client.catalog().collections[0].slug
    env = TrajectoryRecorder(LabsEnv(collection, client=client), path)
    try:
        for seed in range(episodes):
            obs, _ = env.reset(seed=seed)
            done = False
            while not done:
                action = call_policy(policy, obs, env.unwrapped.context)  # type: ignore[attr-defined]
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
    finally:
        env.close()
    return read_trajectories(path)


def test_scripted_beats_random_and_exports(client: Any, tmp_path: Path) -> None:
    scripted = _play(client, load_policy("scripted"), tmp_path / "scripted.jsonl")
    randoms = _play(client, load_policy("random", seed=0), tmp_path / "random.jsonl")
    options = StatsOptions(n_resamples=1000)
    summary = summarize(scripted + randoms, options)
    assert summary["overall"]["episodes"] == 2 * EPISODES and summary["errors"]["count"] == 0
    assert summary["overall"]["dimensions"]  # the local server returns score dimensions
    assert "## Per scenario" in render_markdown(summary)
    result = compare(scripted, randoms, options=options)
    assert result["overall"]["pairs"] == EPISODES
    assert result["overall"]["diff"]["low"] > 0  # the scripted baseline is clearly better
    assert len(sft_examples(scripted + randoms, min_reward=0.0)) == 2 * EPISODES
    pairs = dpo_pairs(scripted + randoms, min_margin=0.05)
    assert pairs and all(p["chosen_reward"] - p["rejected_reward"] >= 0.05 for p in pairs)
    assert all(len(g["rewards"]) == 2 for g in grpo_groups(scripted + randoms))
    json.dumps([summary, result, pairs], allow_nan=False)


def test_openai_policy_plays_an_episode_with_tool_calls(client: Any, tmp_path: Path) -> None:
    def decide_on_second_turn(body: dict[str, Any]) -> dict[str, Any]:
        turns = sum(1 for m in body["messages"] if m["role"] == "assistant")
        decisions = [
            t["function"]
            for t in body["tools"]
            if "enum" in t["function"]["parameters"]["properties"].get("value", {})
        ]
        if turns == 0 or not decisions:
            return {"content": "Could you tell me what happened?"}
        function = decisions[0]
        value = function["parameters"]["properties"]["value"]["enum"][0]
        call = {
            "id": "c",
            "type": "function",
            "function": {"name": function["name"], "arguments": json.dumps({"value": value})},
        }
        return {"content": None, "tool_calls": [call]}

    with fake_chat_server() as fake:
        fake.responder = decide_on_second_turn
        policy = load_policy("openai", base_url=fake.base_url, model="fake")
        (record,) = _play(client, policy, tmp_path / "chat.jsonl", episodes=1)
    assert record.ok and record.turns
    sent = [m for t in record.turns for m in t.messages if m["role"] == "assistant"]
    assert sent[0]["content"] == "Could you tell me what happened?"
    assert any(m.get("tool_calls") for m in sent[1:])  # the decision reached the service
    assert fake.requests[0]["body"]["tools"]
