"""Trajectory records, the JSONL writer and the tolerant reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from labs_env import __version__
from labs_env.rollout.trajectory import (
    JsonlWriter,
    TrajectoryRecord,
    TurnRecord,
    iter_trajectories,
    read_trajectories,
)


def record(episode_id: str, turns: int = 2) -> TrajectoryRecord:
    return TrajectoryRecord(
        episode_id=episode_id,
        collection="col",
        scenario="scn",
        seed=3,
        reward_config={"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True},
        initial_observation={"role": "user", "content": "Hi"},
        turns=[
            TurnRecord(
                turn=i + 1,
                messages=[
                    {"role": "assistant", "content": f"q{i}"},
                    {"role": "user", "content": f"a{i}"},
                ],
                reward=0.25 * i,
                scores={"rubrics.score": 0.5},
                latency_s=0.01,
            )
            for i in range(turns)
        ],
        total_reward=0.25,
        terminal_reason="completed",
        terminated=True,
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "runs.jsonl"
    with JsonlWriter(path) as writer:
        writer.write(record("ep_1"))
        writer.write(record("ep_2", turns=0))
        assert writer.records_written == 2
    loaded = read_trajectories(path)
    assert loaded == [record("ep_1"), record("ep_2", turns=0)]
    first = loaded[0]
    assert first.library_version == __version__ and first.ok and first.num_turns == 2
    assert [m["content"] for m in first.conversation()] == ["Hi", "q0", "a0", "q1", "a1"]
    assert path.read_text().count("\n") == 2


def test_reader_tolerates_a_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    with JsonlWriter(path) as writer:
        writer.write(record("ep_1"))
    with path.open("a") as handle:
        handle.write(record("ep_2").model_dump_json()[:57])
    assert [r.episode_id for r in read_trajectories(path)] == ["ep_1"]


def test_reader_rejects_a_corrupt_middle_line(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text('{"broken": \n' + record("ep_1").model_dump_json() + "\n")
    with pytest.raises(ValueError, match=r"runs.jsonl:1"):
        list(iter_trajectories(path))


def test_writer_cuts_a_torn_tail_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    with JsonlWriter(path) as writer:
        writer.write(record("ep_1"))
    with path.open("a") as handle:
        handle.write('{"episode_id": "ep_torn", "coll')
    with JsonlWriter(path) as writer:
        writer.write(record("ep_2"))
    assert [r.episode_id for r in read_trajectories(path)] == ["ep_1", "ep_2"]


def test_writer_on_a_file_that_is_only_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_text('{"episode_id": "x"')
    with JsonlWriter(path) as writer:
        writer.write(record("ep_1"))
    assert [r.episode_id for r in read_trajectories(path)] == ["ep_1"]


def test_unknown_fields_survive_a_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    line = record("ep_1").model_dump(mode="json") | {"future_field": [1, 2]}
    with JsonlWriter(path) as writer:
        writer.write(line)
    (loaded,) = read_trajectories(path)
    assert loaded.model_extra == {"future_field": [1, 2]}


def test_error_records_are_not_ok(tmp_path: Path) -> None:
    bad = record("ep_1").model_copy(update={"error": "APIConnectionError: boom"})
    assert not bad.ok


def test_closed_writer_refuses(tmp_path: Path) -> None:
    writer = JsonlWriter(tmp_path / "x.jsonl")
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(record("ep_1"))
