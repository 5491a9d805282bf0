"""``labs-env demo``: offline, every bundled scenario, a transcript and a reward table."""

from __future__ import annotations

import io

import pytest

from labs_env.cli import main
from labs_env.cli.demo import run_demo
from labs_env.connect import make_local_client


def test_demo_plays_every_bundled_scenario(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABS_API_KEY", "lab_mustnotbeused000001")  # the demo stays local
    out, progress = io.StringIO(), io.StringIO()
    results = run_demo(episodes=2, seed=1, out=out, progress=progress)
    with make_local_client() as client:
        slugs = [s.slug for c in client.catalog().collections for s in c.scenarios]
    assert [r.scenario for r in results] == slugs
    for result in results:
        assert len(result.final_rewards) == 2 and sum(result.reasons.values()) == 2
        assert all(0.0 <= r <= 1.0 for r in result.final_rewards)
    text = out.getvalue()
    assert "[turn 1] reward=" in text and "persona:" in text and "agent:" in text
    for slug in slugs:
        assert slug in text
    assert "final reward" in text
    assert f"{2 * len(slugs)}/{2 * len(slugs)}" in progress.getvalue()


def test_demo_is_reproducible_for_a_seed() -> None:
    first = run_demo(episodes=1, seed=3, out=io.StringIO(), progress=io.StringIO())
    again = run_demo(episodes=1, seed=3, out=io.StringIO(), progress=io.StringIO())
    assert [r.final_rewards for r in first] == [r.final_rewards for r in again]


def test_demo_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--episodes", "1"]) == 0
    captured = capsys.readouterr()
    assert "Mean reward per scenario" in captured.out
    assert main(["demo", "--episodes", "0"]) == 2
