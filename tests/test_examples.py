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
}


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name: str, tmp_path: Path) -> None:
    args, expected = CASES[name]
    env = {k: v for k, v in os.environ.items() if k not in ("LABS_API_KEY", "LABS_URL")}
    env["PYTHONPATH"] = str(EXAMPLES.parent)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *(a.format(tmp=tmp_path) for a in args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
