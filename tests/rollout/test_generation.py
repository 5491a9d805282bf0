"""Token-level turns: a policy's Generation reaches info (LabsEnv, LabsVectorEnv), the records
of collect / LabsVectorEnv(record_to=) / TrajectoryRecorder, and the JSONL files; version-1
files still load; a malformed generation is refused before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labs_env import (
    LabsClient,
    LabsEnv,
    LabsValidationError,
    LabsVectorEnv,
    TrajectoryRecorder,
    read_trajectories,
)
from labs_env.rollout.collection import collect_sync, episode_specs
from labs_env.rollout.generation import Generation, Truncation
from labs_env.rollout.policy import EpisodeContext
from labs_env.rollout.trajectory import SCHEMA_VERSION, TrajectoryRecord
from tests.kit.scenarios import ASK, COLLECTION, TALK
from tests.kit.transports import async_client

GEN = Generation(
    prompt_ids=[1, 2, 3],
    completion_ids=[7, 8, 2],
    logprobs=[-0.5, -1.25, -0.01],
    text="Hello there",
    finish_reason="stop",
    usage={"prompt_tokens": 3, "completion_tokens": 3},
    model="tiny",
)
CUT = Generation(
    completion_ids=[9, 9],
    logprobs=[-2.0, -3.0],
    finish_reason="length",
    truncations=[Truncation(field="content", original_length=12, kept_length=10)],
)


def action(generation: Generation | dict[str, Any]) -> dict[str, Any]:
    return {"content": f"{ASK} please", "generation": generation}


def test_labs_env_info_carries_the_generation_and_marks_a_cut_reply(
    local_client: LabsClient,
) -> None:
    env = LabsEnv(COLLECTION, TALK, client=local_client)
    env.reset(seed=0)
    _, _, _, _, info = env.step(action(GEN))
    assert info["generation"] == GEN.summary()
    assert info["generation"]["completion_ids"] == [7, 8, 2]
    assert "reply_cut_by_length" not in info
    _, _, _, _, info = env.step(action(CUT))
    assert info["reply_cut_by_length"] is True
    assert info["generation"]["finish_reason"] == "length"
    assert info["generation"]["truncations"][0]["original_length"] == 12
    _, _, _, _, info = env.step(f"{ASK} again")  # a plain action: no generation keys
    assert "generation" not in info and "reply_cut_by_length" not in info
    env.close()


def test_a_generation_given_as_a_dict_is_accepted(local_client: LabsClient) -> None:
    env = LabsEnv(COLLECTION, TALK, client=local_client)
    env.reset(seed=0)
    _, _, _, _, info = env.step(action(GEN.model_dump()))
    assert info["generation"] == GEN.summary()
    env.close()


@pytest.mark.parametrize(
    ("generation", "problem"),
    [
        ({"completion_ids": [1, 2], "logprobs": [-0.1]}, "one log-probability per generated"),
        ({"completion_ids": [1], "logprobs": [0.5]}, "log-probabilities"),
        ({"completion_ids": [-3]}, "token ids >= 0"),
        ({"logprobs": [float("nan")]}, "finite"),
        ({"completion_ids": "abc"}, "completion_ids"),
        ("not a generation", "generation"),
    ],
)
def test_a_bad_generation_is_a_typed_error_before_anything_is_sent(
    local_client: LabsClient, generation: Any, problem: str
) -> None:
    env = LabsEnv(COLLECTION, TALK, client=local_client)
    env.reset(seed=0)
    with pytest.raises(LabsValidationError, match=r"action\.generation") as caught:
        env.step(action(generation))
    assert problem in str(caught.value)
    _, _, _, _, info = env.step(action(GEN))  # nothing was sent: the env goes on at turn 1
    assert info["turn"] == 1
    env.close()


def test_vector_env_infos_and_records_carry_generations(tmp_path: Path) -> None:
    path = tmp_path / "vector.jsonl"
    venv = LabsVectorEnv(
        2, COLLECTION, TALK, client=async_client(), record_to=path, max_episode_steps=2
    )
    venv.reset(seed=0)
    _, _, _, _, infos = venv.step((action(GEN), f"{ASK} plain"))
    assert infos["_generation"].tolist() == [True, False]
    assert infos["generation"][0] == GEN.summary() and infos["generation"][1] is None
    _, _, _, truncated, infos = venv.step((action(CUT), action(GEN)))
    assert truncated.all()  # max_episode_steps=2
    finals = infos["final_info"]
    assert finals["reply_cut_by_length"].tolist() == [True, False]
    venv.close()
    records = read_trajectories(path)
    assert len(records) == 2
    first = next(r for r in records if r.turns[0].generation is not None)
    assert first.schema_version == SCHEMA_VERSION == 2
    assert first.turns[0].generation == GEN
    assert first.turns[1].generation == CUT and first.turns[1].generation.cut_by_length
    other = next(r for r in records if r is not first)
    assert other.turns[0].generation is None and other.turns[1].generation == GEN


def test_collect_records_carry_generations(tmp_path: Path) -> None:
    def policy(history: Any, context: EpisodeContext) -> dict[str, Any]:
        ids = [context.turn + 10]
        return {
            "content": f"{ASK} (turn {context.turn + 1})",
            "generation": Generation(completion_ids=ids, logprobs=[-0.25], finish_reason="stop"),
        }

    out = tmp_path / "collected.jsonl"
    specs = episode_specs(COLLECTION, TALK, episodes=2)
    records = collect_sync(policy, specs, client=async_client(), max_turns=3, output=out)
    for record in [*records, *read_trajectories(out)]:
        ids = [t.generation.completion_ids for t in record.turns if t.generation]
        assert ids == [[10], [11], [12]]
        assert all(t.generation and t.generation.logprobs == [-0.25] for t in record.turns)


def test_trajectory_recorder_records_generations(tmp_path: Path, local_client: LabsClient) -> None:
    path = tmp_path / "recorded.jsonl"
    env = TrajectoryRecorder(LabsEnv(COLLECTION, TALK, client=local_client), path, fsync=False)
    env.reset(seed=1)
    env.step(action(GEN))
    env.step(action(CUT))
    env.close()
    (record,) = read_trajectories(path)
    assert [t.generation for t in record.turns] == [GEN, CUT]
    line = json.loads(path.read_text().splitlines()[0])
    assert line["turns"][1]["generation"]["finish_reason"] == "length"


def test_version_1_files_still_load(tmp_path: Path) -> None:
    line = {
        "episode_id": "ep_old",
        "collection": COLLECTION,
        "scenario": TALK,
        "turns": [
            {
                "turn": 1,
                "messages": [
                    {"role": "assistant", "content": "Hi"},
                    {"role": "user", "content": "Hello"},
                ],
                "reward": 0.5,
            }
        ],
        "final_reward": 0.5,
        "library_version": "0.0.9",
        "schema_version": 1,
    }
    path = tmp_path / "v1.jsonl"
    path.write_text(json.dumps(line) + "\n")
    (record,) = read_trajectories(path)
    assert record.schema_version == 1 and record.turns[0].generation is None
    assert TrajectoryRecord(episode_id="e", collection="c", scenario="s").schema_version == 2
