"""One evaluation at a time per run directory: a second run refuses, naming the holder (pid,
host, start time); the lock of a dead run is taken over. The summary counts each episode spec
once whatever the files hold (the first finished record of a spec wins)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from labs_env.cli import main
from labs_env.evaluation import evaluate_policy
from labs_env.evaluation.run_dir import RunDir
from labs_env.evaluation.run_lock import LOCK_FILE, RunLock, RunLockedError
from tests.kit.scenarios import COLLECTION, TALK

SCENARIO = f"{COLLECTION}/{TALK}"


def _evaluate(out: Path, episodes: int = 2) -> object:
    return evaluate_policy("scripted", [SCENARIO], episodes=episodes, out_dir=out, fsync=False)


def test_a_second_run_on_a_locked_directory_refuses_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with RunLock(out), pytest.raises(RunLockedError) as caught:
        _evaluate(out)
    message = str(caught.value)
    assert f"pid {os.getpid()}" in message and socket.gethostname() in message
    assert "started" in message and "\n" not in message
    assert not (out / "trajectories.jsonl").exists()
    _evaluate(out)  # released: the next run goes ahead
    assert RunDir(out).finished_keys()


def test_the_lock_of_a_dead_run_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    holder = {"pid": int(dead.stdout), "host": socket.gethostname(), "started_at": "earlier"}
    (out / LOCK_FILE).write_text(json.dumps(holder))
    result = _evaluate(out)
    assert result.ran == 2  # type: ignore[attr-defined]


_HOLD = textwrap.dedent(
    """
    import sys
    from labs_env.evaluation.run_lock import RunLock
    with RunLock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.read()
    """
)


def test_labs_env_eval_refuses_a_directory_another_process_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        argv = ["eval", "--policy", "scripted", "--scenario", SCENARIO, "--episodes", "1"]
        assert main([*argv, "--out", str(out)]) == 2
    finally:
        holder.communicate("")
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"pid {holder.pid}" in err and str(out) in err


def _duplicate_every_line(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines + lines), encoding="utf-8")


def test_the_summary_counts_each_spec_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _evaluate(out, episodes=3)
    _duplicate_every_line(first.trajectories)  # type: ignore[attr-defined]
    again = _evaluate(out, episodes=3)
    summary = json.loads(again.summary_path.read_text())  # type: ignore[attr-defined]
    assert summary["overall"]["episodes"] == 3
    assert summary["duplicates_ignored"] == 3
    kept = RunDir(out).results()
    assert len(kept) == 3 and len({r.extra["spec_key"] for r in kept}) == 3
