"""``labs-env compare``: paired statistics of two policies, the service's verdicts beside ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labs_env.cli import main
from labs_env.rollout.trajectory import read_trajectories

DECIDE = ["--collection", "insurance-claims", "--scenario", "storm-roof-decision"]


def test_compare_scripted_with_random(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compare", "--policy-a", "scripted", "--policy-b", "random", *DECIDE]
    argv += ["--episodes", "3", "--out", str(tmp_path), "--service-compare"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    seeds_a = sorted(r.seed for r in read_trajectories(tmp_path / "a" / "trajectories.jsonl"))
    seeds_b = sorted(r.seed for r in read_trajectories(tmp_path / "b" / "trajectories.jsonl"))
    assert seeds_a == seeds_b == [0, 1, 2]
    comparison = json.loads((tmp_path / "compare.json").read_text())
    assert comparison["labels"] == {"a": "scripted", "b": "random"}
    assert comparison["overall"]["pairs"] == 3
    assert comparison["overall"]["win_tie_loss"]["wins"] == 3
    assert comparison["service_compare"]["judged"] == 3
    assert len((tmp_path / "service_compare.jsonl").read_text().splitlines()) == 3
    out = captured.out
    all_row = next(line for line in out.splitlines() if line.startswith("all "))
    assert " 3/0/0" in all_row and "+0." in all_row
    assert "service /compare  3" in out and "agreement 100%" in out
    assert "scripted: mean 1.000" in captured.err and "random: mean" in captured.err

    assert main(argv) == 0  # rerun: both sides resume, judged pairs are not sent again
    assert "0 to play" in capsys.readouterr().err
    assert len((tmp_path / "service_compare.jsonl").read_text().splitlines()) == 3


def test_same_policy_twice_gets_distinct_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compare", "--policy-a", "random", "--policy-b", "random", "--option-b", "seed=9"]
    assert main([*argv, *DECIDE, "--episodes", "2", "--out", str(tmp_path)]) == 0
    comparison = json.loads((tmp_path / "compare.json").read_text())
    assert comparison["labels"] == {"a": "random (A)", "b": "random (B)"}
    assert comparison["overall"]["pairs"] == 2
    assert "mean random (A)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--policy-a", "scripted", "--policy-b", "nope"], "unknown policy 'nope'"),
        (["--policy-a", "openai", "--policy-b", "random"], "needs base_url and model"),
        (["--policy-a", "scripted", "--policy-b", "random", "--episodes", "0"], "--episodes"),
        (["--policy-a", "scripted", "--policy-b", "random", "--option-b", "x"], "--option-b"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert main(["compare", *argv, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("labs-env compare: ") and needle in err[0]
    assert not (tmp_path / "c").exists()


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = capsys.readouterr().out
    assert "labs-env compare --policy-a scripted --policy-b random" in text
    assert "--service-compare" in text
