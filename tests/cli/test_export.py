"""``labs-env export``: JSONL in, training rows out; bad input exits 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labs_env.cli import main
from labs_env.rollout.trajectory import JsonlWriter, TrajectoryRecord, TurnRecord


def _write(path: Path) -> None:
    with JsonlWriter(path, fsync=False) as writer:
        for episode_id, reply, reward, error in [
            ("good", "I can help with that.", 0.9, None),
            ("bad", "No.", 0.1, None),
            ("broken", "I can help with that.", 0.95, "APIConnectionError: reset"),
        ]:
            writer.write(
                TrajectoryRecord(
                    episode_id=episode_id,
                    collection="support",
                    scenario="refund",
                    seed=3,
                    initial_observation={"role": "user", "content": "Hello?"},
                    turns=[
                        TurnRecord(
                            turn=1,
                            reward=reward,
                            messages=[
                                {"role": "assistant", "content": reply},
                                {"role": "user", "content": "ok"},
                            ],
                        )
                    ],
                    final_reward=reward,
                    total_reward=reward,
                    error=error,
                )
            )


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    ("fmt", "extra", "expected"),
    [
        ("sft", ["--min-reward", "0.5"], ["good"]),
        ("dpo", ["--min-margin", "0.5"], [("good", "bad")]),
        ("grpo", [], [["good", "bad"]]),
    ],
)
def test_export_formats(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
    extra: list[str],
    expected: list[object],
) -> None:
    source, out = tmp_path / "runs.jsonl", tmp_path / "out" / f"{fmt}.jsonl"
    _write(source)
    assert main(["export", str(source), "--format", fmt, "--out", str(out), *extra]) == 0
    rows = _rows(out)
    if fmt == "sft":
        assert [r["episode_id"] for r in rows] == expected
    elif fmt == "dpo":
        assert [(r["chosen_episode_id"], r["rejected_episode_id"]) for r in rows] == expected
    else:
        assert [r["episode_ids"] for r in rows] == expected
    assert "from 3 episodes (1 with errors skipped)" in capsys.readouterr().err


def test_export_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "o.jsonl")
    assert main(["export", str(tmp_path / "missing.jsonl"), "--format", "sft", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labs-env export:") and err.count("\n") == 1
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"not": "a record"}\n{"also": 1}\n', encoding="utf-8")
    assert main(["export", str(garbage), "--format", "sft", "--out", out]) == 2
    assert "not a trajectory record" in capsys.readouterr().err
    source = tmp_path / "runs.jsonl"
    _write(source)
    code = main(["export", str(source), "--format", "dpo", "--min-margin", "-1", "--out", out])
    assert code == 2 and "min_margin" in capsys.readouterr().err


def test_export_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["export", "--help"])
    assert exited.value.code == 0
    assert "labs-env export runs/episodes.jsonl --format sft" in capsys.readouterr().out
