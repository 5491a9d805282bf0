"""Dataset export: SFT, DPO and GRPO rows from trajectory records."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from labs_env.datasets import (
    dpo_pairs,
    episode_messages,
    grpo_groups,
    sft_examples,
    to_hf_dataset,
    write_jsonl,
)
from labs_env.errors import LabsValidationError
from labs_env.rollout.trajectory import JsonlWriter, TrajectoryRecord, TurnRecord, read_trajectories

OPENING = {"role": "user", "content": "Hi, my kettle broke."}


def _record(
    episode_id: str, replies: list[str], final: float, *, seed: int | None = 1, **fields: Any
) -> TrajectoryRecord:
    turns = []
    for i, reply in enumerate(replies):
        agent: dict[str, Any] = {"role": "assistant", "content": reply}
        if reply.startswith("DECIDE"):
            agent["tool_calls"] = [
                {"type": "decision", "name": "claim_status", "input": {"value": "approve"}}
            ]
        turns.append(
            TurnRecord(
                turn=i + 1,
                messages=[agent, {"role": "user", "content": f"persona reply {i + 1}"}],
                reward=final if i == len(replies) - 1 else 0.1,
            )
        )
    return TrajectoryRecord(
        episode_id=episode_id,
        collection="support",
        scenario="refund",
        seed=seed,
        initial_observation=OPENING,
        turns=turns,
        total_reward=0.1 * (len(replies) - 1) + final,
        final_reward=final,
        **fields,
    )


RECORDS = [
    _record("good", ["Sorry! What model?", "DECIDE refund"], 0.9),
    _record("mid", ["Sorry! What model?", "Let me think."], 0.5),
    _record("bad", ["No refunds."], 0.2),
    _record("broken", ["Sorry! What model?", "DECIDE refund"], 0.95, error="APIConnectionError"),
    _record("other-seed", ["Hello."], 0.8, seed=2),
    _record("unseeded", ["Hello."], 0.7, seed=None),
]


def test_episode_messages_cut_trailing_persona_and_convert_tool_calls() -> None:
    messages = episode_messages(RECORDS[0], system_prompt="Be kind.")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[-1]["tool_calls"] == [  # as the model's chat template renders it
        {
            "id": "call_3_0",
            "type": "function",
            "function": {"name": "claim_status", "arguments": {"value": "approve"}},
        }
    ]
    labs = episode_messages(RECORDS[0], tool_call_format="labs")
    assert labs[-1]["tool_calls"][0] == {
        "type": "decision",
        "name": "claim_status",
        "input": {"value": "approve"},
    }
    with pytest.raises(LabsValidationError, match="tool_call_format"):
        episode_messages(RECORDS[0], tool_call_format="chatml")  # type: ignore[arg-type]


def test_sft_keeps_episodes_above_threshold_and_never_errored_ones() -> None:
    rows = sft_examples(RECORDS, min_reward=0.7)
    assert [r["episode_id"] for r in rows] == ["good", "other-seed", "unseeded"]
    assert rows[0]["reward"] == 0.9 and rows[0]["seed"] == 1
    assert rows[0]["messages"][0] == OPENING


def test_dpo_pairs_share_the_prompt_and_respect_the_margin() -> None:
    (pair,) = dpo_pairs(RECORDS, min_margin=0.3)
    assert (pair["chosen_episode_id"], pair["rejected_episode_id"]) == ("good", "bad")
    assert pair["margin"] == pytest.approx(0.7) and pair["seed"] == 1
    assert pair["prompt"] == [OPENING]
    assert pair["chosen"][0]["content"] == "Sorry! What model?"
    assert pair["rejected"] == [{"role": "assistant", "content": "No refunds."}]
    every = {
        (p["chosen_episode_id"], p["rejected_episode_id"]): p
        for p in dpo_pairs(RECORDS, min_margin=0.35, pairing="all")
    }
    assert set(every) == {("good", "bad"), ("good", "mid")}  # mid - bad = 0.3 < 0.35
    # good and mid share their first exchange: it belongs to the prompt.
    shared = every[("good", "mid")]
    assert [m["content"] for m in shared["prompt"]] == [
        OPENING["content"],
        "Sorry! What model?",
        "persona reply 1",
    ]
    assert [m["content"] for m in shared["rejected"]] == ["Let me think."]
    assert dpo_pairs(RECORDS, min_margin=0.8) == []


def test_grpo_groups_by_group_id_or_scenario_and_seed() -> None:
    groups = grpo_groups(RECORDS)
    assert len(groups) == 1  # seed 2 has one episode; errored and unseeded are left out
    group = groups[0]
    assert group["episode_ids"] == ["good", "mid", "bad"]
    assert group["rewards"] == [0.9, 0.5, 0.2]
    assert sum(group["advantages"]) == pytest.approx(0.0, abs=1e-9)
    assert group["advantages"][0] > 0 > group["advantages"][2]
    assert group["prompt"] == [OPENING] and len(group["completions"]) == 3
    tagged = [
        _record("x1", ["A"], 0.3, seed=None, extra={"group_id": "g-7"}),
        _record("x2", ["B"], 0.6, seed=None, extra={"group_id": "g-7"}),
    ]
    (by_id,) = grpo_groups(tagged)
    assert by_id["group_id"] == "g-7" and by_id["rewards"] == [0.3, 0.6]


def test_jsonl_round_trip_from_a_trajectory_file(tmp_path: Path) -> None:
    source = tmp_path / "runs.jsonl"
    with JsonlWriter(source, fsync=False) as writer:
        for record in RECORDS:
            writer.write(record)
    records = read_trajectories(source)
    out = tmp_path / "out" / "dpo.jsonl"
    assert write_jsonl(dpo_pairs(records, min_margin=0.3), out) == 1
    (line,) = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["chosen_episode_id"] == "good"


def test_hf_dataset_needs_the_datasets_package() -> None:
    rows = sft_examples(RECORDS, min_reward=0.7)
    if importlib.util.find_spec("datasets") is None:
        with pytest.raises(LabsValidationError, match="pip install datasets"):
            to_hf_dataset(rows)
    else:  # pragma: no cover - depends on the environment
        assert len(to_hf_dataset(rows)) == len(rows)
