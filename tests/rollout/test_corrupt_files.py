"""A corrupt line in the middle of a trajectory file is a typed error naming file:line, in one
line; a torn last line (a crash mid-write) is still skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from labs_env import LabsValidationError, TrajectoryRecord, read_trajectories
from labs_env.rollout.specs import completed_keys
from labs_env.rollout.trajectory import JsonlWriter


def _file(tmp_path: Path, middle: bytes, tail: bytes = b"") -> Path:
    path = tmp_path / "trajectories.jsonl"
    with JsonlWriter(path, fsync=False) as writer:
        writer.write(TrajectoryRecord(episode_id="ep_1", collection="c", scenario="s"))
    with path.open("ab") as handle:
        handle.write(middle + b"\n")
    with JsonlWriter(path, fsync=False) as writer:
        writer.write(TrajectoryRecord(episode_id="ep_3", collection="c", scenario="s"))
    with path.open("ab") as handle:
        handle.write(tail)
    return path


@pytest.mark.parametrize(
    "middle", [b'{"episode_id": "ep_2", "coll', b'{"episode_id": 5}', b"\xff\xfe", b"[]"]
)
def test_a_corrupt_middle_line_is_a_typed_one_line_error(tmp_path: Path, middle: bytes) -> None:
    path = _file(tmp_path, middle)
    with pytest.raises(LabsValidationError) as caught:
        read_trajectories(path)
    assert caught.value.field == f"{path}:2"
    assert "\n" not in str(caught.value)
    with pytest.raises(LabsValidationError, match=":2: "):
        completed_keys(path)


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = _file(tmp_path, b'{"episode_id": "ep_2", "collection": "c", "scenario": "s"}', b'{"ep')
    assert [r.episode_id for r in read_trajectories(path)] == ["ep_1", "ep_2", "ep_3"]
