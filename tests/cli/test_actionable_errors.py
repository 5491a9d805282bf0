"""Errors that tell the user what to do: a run whose episodes all fail the same way stops early
and prints the cause; an export with nothing to export says what it needs; a bad key, an
unreachable service, an unknown reward-config key and a ``LABS_URL`` without a key each say
what to change."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from labs_env import LabsValidationError, make_client
from labs_env.cli import main
from labs_env.evaluation.early_stop import RunStoppedError
from labs_env.server import LabsServer, run_in_thread
from labs_env.testing import instant_retries
from tests.kit.scenarios import COLLECTION, TALK

SCENARIO = f"{COLLECTION}/{TALK}"


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("labs-env ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def closed_url() -> str:
    """An http URL on loopback where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def fast() -> Iterator[None]:
    with instant_retries():
        yield


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _compare_with_a_policy_server_down(out: Path, url: str, episodes: int) -> int:
    """``labs-env compare``: A is a model on ``url``, where nothing listens; B is scripted."""
    argv = ["compare", "--policy-a", "openai", "--model-a", "m", "--base-url", f"{url}/v1"]
    argv += ["--policy-b", "scripted", "--scenario", SCENARIO, "--episodes", str(episodes)]
    return main([*argv, "--out", str(out)])


def test_compare_stops_when_a_policy_server_is_down(
    tmp_path: Path, closed_url: str, fast: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _compare_with_a_policy_server_down(tmp_path, closed_url, 60) == 1
    line = _err_line(capsys)
    assert "ChatCompletionError" in line and "all failed the same way" in line
    assert _lines(tmp_path / "a" / "errors.jsonl") == 5  # not 60
    assert not (tmp_path / "b").exists()


def test_eval_stops_when_every_episode_fails_the_same_way(
    tmp_path: Path, closed_url: str, fast: None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "--policy", "openai", "--model", "m", "--base-url", f"{closed_url}/v1"]
    argv += ["--scenario", SCENARIO, "--episodes", "40", "--concurrency", "2"]
    assert main([*argv, "--out", str(tmp_path)]) == 1
    assert "first 5 episodes" in _err_line(capsys)
    assert _lines(tmp_path / "errors.jsonl") == 5
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["errors"]["count"] == 5  # the summary covers what was played


def test_eval_does_not_stop_when_failures_differ_or_some_succeed(tmp_path: Path) -> None:
    from labs_env.evaluation.early_stop import UniformFailures
    from labs_env.rollout.trajectory import TrajectoryRecord

    def record(error: str | None) -> TrajectoryRecord:
        return TrajectoryRecord(episode_id="e", collection="c", scenario="s", error=error)

    mixed = UniformFailures(5)
    for error in ["A: x 1", "A: x 2", None, "A: x 3", "A: x 4", "A: x 5", "A: x 6"]:
        mixed.add(record(error))
    different = UniformFailures(5)
    for error in ["A: x", "B: y", "A: x", "A: x", "A: x", "A: x"]:
        different.add(record(error))
    with pytest.raises(RunStoppedError, match="first 5 episodes"):
        same = UniformFailures(5)
        for n in range(5):  # ids and numbers differ, the pattern is the same
            same.add(record(f"APIError: episode ep_{n}abc failed after {n + 1} s"))


def _trajectories(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    argv = ["eval", "--policy", "scripted", "--scenario", SCENARIO, "--episodes", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    return out / "trajectories.jsonl"


@pytest.mark.parametrize(("fmt", "needs"), [("dpo", "same scenario and seed"), ("grpo", "group")])
def test_export_with_nothing_to_export_says_what_it_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, needs: str
) -> None:
    source = _trajectories(tmp_path)
    capsys.readouterr()
    out = tmp_path / f"{fmt}.jsonl"
    assert main(["export", str(source), "--format", fmt, "--out", str(out)]) == 2
    assert needs in _err_line(capsys)
    assert not out.exists()


@pytest.fixture
def served() -> Iterator[str]:
    with run_in_thread(LabsServer()) as url:
        yield url


def test_a_rejected_key_says_how_to_set_it(
    served: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABS_URL", served)
    monkeypatch.setenv("LABS_API_KEY", "lab_not_the_right_key_000000")
    assert main(["catalog"]) == 1
    line = _err_line(capsys)
    assert "401" in line and "LABS_API_KEY" in line and "--local" in line


def test_an_unreachable_service_names_the_host(
    closed_url: str,
    fast: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LABS_URL", closed_url)
    monkeypatch.setenv("LABS_API_KEY", "lab_demo_local")
    assert main(["catalog"]) == 1
    line = _err_line(capsys)
    assert closed_url.removeprefix("http://") in line and "--local" in line


def test_an_unknown_reward_config_key_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = json.dumps({"quality_weight": {"discovery": 1.0}})
    argv = ["eval", "--policy", "scripted", "--scenario", SCENARIO, "--reward-config", bad]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    line = _err_line(capsys)
    assert "'quality_weight'" in line and "quality_weights" in line


def test_labs_url_without_a_key_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABS_URL", "https://labs.example")
    with pytest.raises(LabsValidationError, match="LABS_URL"):
        make_client()
    assert main(["catalog"]) == 2
    line = _err_line(capsys)
    assert "LABS_URL" in line and "LABS_API_KEY" in line
    assert main(["catalog", "--local"]) == 0  # --local still plays the embedded server


def test_compare_says_why_a_side_failed_below_the_early_stop(
    tmp_path: Path, closed_url: str, fast: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _compare_with_a_policy_server_down(tmp_path, closed_url, 2) == 1
    out = capsys.readouterr().out
    assert "A: 2 episodes failed" in out and "ChatCompletionError" in out


async def hangs(history: object, context: object) -> str:
    """A policy whose model server never answers (loaded by the CLI as ``module:name``)."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")  # pragma: no cover


def test_eval_time_limits_cut_a_hanging_policy_and_refuse_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "--policy", f"{__name__}:hangs", "--scenario", SCENARIO, "--episodes", "2"]
    assert main([*argv, "--policy-timeout", "0.05", "--out", str(tmp_path / "run")]) == 1
    errors = [json.loads(line) for line in (tmp_path / "run" / "errors.jsonl").open()]
    assert [e["extra"]["error_type"] for e in errors] == ["PolicyTimeoutError"] * 2
    capsys.readouterr()
    assert main([*argv, "--policy-timeout", "0", "--out", str(tmp_path / "zero")]) == 2
    assert "--policy-timeout: must be a finite number > 0" in _err_line(capsys)
    assert main([*argv, "--episode-timeout", "5", "--ray", "--out", str(tmp_path / "r")]) == 2
    line = _err_line(capsys)
    assert "--ray" in line and "time limits" in line
