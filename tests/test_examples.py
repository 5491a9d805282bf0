"""Smoke tests: every example runs top to bottom against the embedded local server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

CASES = {
    "quickstart.py": ([], "scores of the last turn"),
    "curriculum.py": (["1"], "phase full"),
    "custom_reward.py": ([], "weakest-dimension reward"),
    "record_and_reload.py": (["{tmp}/episodes.jsonl"], "4 episodes in"),
    "train_reinforce.py": (
        ["--iterations", "3", "--batch", "8", "--eval-episodes", "8"],
        "learnt phrases per turn",
    ),
}
#: Examples that need the [train] extra (torch, transformers, trl) and the SmolLM2 GGUF.
TRAIN_CASES = {
    "train_grpo.py": (
        [
            "--steps", "1", "--groups", "1", "--group-size", "2", "--max-turns", "2",
            "--max-new-tokens", "8", "--log", "{tmp}/grpo.jsonl", "--png", "{tmp}/grpo.png",
        ],
        "done: 1 steps",
    ),
    "train_trl.py": (
        ["--steps", "1", "--max-new-tokens", "8", "--output-dir", "{tmp}/trl"],
        "1 GRPO steps with TRL",
    ),
}  # fmt: skip


def test_every_example_is_covered() -> None:
    covered = sorted([*CASES, *TRAIN_CASES])
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == covered


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name: str, tmp_path: Path) -> None:
    _run(name, *CASES[name], tmp_path)


@pytest.mark.train
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(TRAIN_CASES))
def test_training_example_runs(name: str, tmp_path: Path) -> None:
    _run(name, *TRAIN_CASES[name], tmp_path, timeout=600)


def _run(name: str, args: list[str], expected: str, tmp_path: Path, timeout: int = 120) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LABS_API_KEY", "LABS_URL")}
    env["PYTHONPATH"] = str(EXAMPLES.parent)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *(a.format(tmp=tmp_path) for a in args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
