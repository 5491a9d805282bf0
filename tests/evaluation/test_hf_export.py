"""The export's conversations are what ``OpenAIChatPolicy`` sent, as the model's chat template
renders it (TRL's tool-calling format: call ids, ``tool`` result messages with their function's
name, arguments as objects, a ``tools`` column), and a Hugging Face dataset of the rows gives
back exactly the rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labs_env.datasets import dpo_pairs, episode_messages, grpo_groups, sft_examples, to_hf_dataset
from labs_env.models import ToolDefinition
from labs_env.policies import OpenAIChatPolicy
from labs_env.policies.chat_format import template_form
from labs_env.rollout.collection import collect_sync, episode_specs
from labs_env.rollout.policy import EpisodeContext
from labs_env.rollout.trajectory import TrajectoryRecord, read_trajectories
from tests.kit.transports import async_client

DECISION = ToolDefinition(
    id="claim_status",
    type="decision",
    name="Claim status",
    mode="options",
    options=["approve", "deny", "escalate"],
)
NOTE = ToolDefinition(
    id="case_note",
    type="artifact",
    name="Case note",
    mode="json_schema",
    json_schema={
        "type": "object",
        "properties": {"amount": {"type": "number"}, "note": {"type": "string"}},
    },
)
TOOLS = [DECISION.model_dump(exclude_none=True), NOTE.model_dump(exclude_none=True)]


def _record(episode_id: str, decision: str, reward: float, group: str = "g") -> TrajectoryRecord:
    note = {"type": "artifact", "name": "case_note", "input": {"amount": 120.5, "note": "roof"}}
    decide = {"type": "decision", "name": "claim_status", "input": {"value": decision}}
    return TrajectoryRecord.model_validate(
        {
            "episode_id": episode_id,
            "collection": "insurance-claims",
            "scenario": "storm-roof-decision",
            "seed": 3,
            "tools": TOOLS,
            "initial_observation": {"role": "user", "content": "My roof is gone."},
            "turns": [
                {
                    "turn": 1,
                    "reward": 0.2,
                    "messages": [
                        {"role": "assistant", "content": "Noted.", "tool_calls": [note]},
                        {"role": "user", "content": "And now?"},
                    ],
                },
                {
                    "turn": 2,
                    "reward": reward,
                    "messages": [
                        {"role": "assistant", "content": "Decided.", "tool_calls": [decide]},
                        {"role": "user", "content": "Thanks."},
                    ],
                },
            ],
            "final_reward": reward,
            "extra": {"group_id": group},
        }
    )


def _sent(record: TrajectoryRecord) -> dict[str, Any]:
    """What ``OpenAIChatPolicy`` sends a model after the record's conversation, its messages
    cut after the agent's last one (what a trainer learns from)."""
    policy = OpenAIChatPolicy("http://127.0.0.1:9/v1", "m", api_key="", system_prompt=None)
    context = EpisodeContext(
        collection=record.collection,
        scenario=record.scenario,
        tools=(DECISION, NOTE),
    )
    body, _ = policy.build_request(record.conversation(), context)
    last = max(i for i, m in enumerate(body["messages"]) if m["role"] == "assistant")
    return {**body, "messages": body["messages"][: last + 1]}


def test_messages_are_what_the_policy_sent_as_the_template_renders_it() -> None:
    record = _record("ep_a", "deny", 0.9)
    body = _sent(record)
    messages = episode_messages(record)
    assert messages == template_form(body["messages"])
    assert len(messages) == len(body["messages"])
    for exported, sent in zip(messages, body["messages"], strict=True):
        assert exported["role"] == sent["role"] and exported["content"] == sent["content"]
        calls = zip(exported.get("tool_calls", []), sent.get("tool_calls", []), strict=True)
        for ours, theirs in calls:
            assert ours["id"] == theirs["id"]  # the call ids the model saw
            assert ours["function"]["name"] == theirs["function"]["name"]
            assert json.loads(theirs["function"]["arguments"]) == ours["function"]["arguments"]
    tool_messages = [m for m in messages if m["role"] == "tool"]
    assert [m["name"] for m in tool_messages] == ["case_note"]  # cut after the last agent turn
    row = sft_examples([record], min_reward=0.5)[0]
    assert row["messages"] == messages and row["tools"] == body["tools"]


def test_dpo_and_grpo_rows_carry_the_tools() -> None:
    records = [_record("ep_a", "deny", 0.9), _record("ep_b", "approve", 0.1)]
    (pair,) = dpo_pairs(records)
    (group,) = grpo_groups(records)
    assert pair["tools"] == group["tools"] == _sent(records[0])["tools"]


@pytest.mark.train  # needs the `datasets` package: the [train] stage has it
def test_rows_survive_a_hugging_face_dataset_exactly() -> None:
    records = [_record("ep_a", "deny", 0.9), _record("ep_b", "approve", 0.1)]
    for rows in (sft_examples(records, min_reward=0.0), dpo_pairs(records), grpo_groups(records)):
        assert rows
        assert to_hf_dataset(rows).to_list() == rows


def test_collected_records_keep_their_tools(tmp_path: Path) -> None:
    out = tmp_path / "episodes.jsonl"
    specs = episode_specs("insurance-claims", "storm-roof-decision")
    collect_sync(lambda h, c: "Hello", specs, client=async_client(), max_turns=1, output=out)
    (record,) = read_trajectories(out)
    assert [tool["id"] for tool in record.tools or []] == ["claim_status"]
