"""End to end on the embedded local server: policies play, records are summarised, compared,
plotted and exported."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labs_env import LabsClient, TrajectoryRecord
from labs_env.datasets import dpo_pairs, grpo_groups, sft_examples
from labs_env.evaluation import StatsOptions, compare, render_markdown, summarize
from labs_env.policies import load_policy
from tests.kit.chat_server import FakeChatServer

EPISODES = 6
Play = Callable[..., list[TrajectoryRecord]]


@pytest.fixture
def play(record_episodes: Play, local_client: LabsClient) -> Play:
    """``play(policy, path, episodes=EPISODES)``: every scenario of the first collection."""
    collection = local_client.catalog().collections[0].slug

    def run(policy: Any, path: Path, episodes: int = EPISODES) -> list[TrajectoryRecord]:
        return record_episodes(policy, path, collection=collection, episodes=episodes)

    return run


def test_scripted_beats_random_and_exports(play: Play, tmp_path: Path) -> None:
    scripted = play(load_policy("scripted"), tmp_path / "scripted.jsonl")
    randoms = play(load_policy("random", seed=0), tmp_path / "random.jsonl")
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


def test_openai_policy_plays_an_episode_with_tool_calls(
    play: Play, tmp_path: Path, fake_chat: FakeChatServer
) -> None:
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

    fake_chat.responder = decide_on_second_turn
    policy = load_policy("openai", base_url=fake_chat.base_url, model="fake")
    (record,) = play(policy, tmp_path / "chat.jsonl", episodes=1)
    assert record.ok and record.turns
    sent = [m for t in record.turns for m in t.messages if m["role"] == "assistant"]
    assert sent[0]["content"] == "Could you tell me what happened?"
    assert any(m.get("tool_calls") for m in sent[1:])  # the decision reached the service
    assert fake_chat.requests[0]["body"]["tools"]
