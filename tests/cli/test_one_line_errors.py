"""The CLI's promise: a problem is one line on stderr and an exit code, never a traceback —
unwritable outputs, a bad port, a missing extra, a corrupt trajectory file, a closed pipe."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from labs_env import __version__
from labs_env.cli import main
from tests.kit.scenarios import COLLECTION, TALK

SCENARIO = f"{COLLECTION}/{TALK}"
EVAL = ["eval", "--policy", "scripted", "--scenario", SCENARIO, "--episodes", "1"]
COMPARE = ["compare", "--policy-a", "scripted", "--policy-b", "random", "--scenario", SCENARIO]


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    """A regular file: nothing can be created below it."""
    path = tmp_path / "a-file"
    path.write_text("x")
    return path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"labs-env {__version__}"


def test_eval_into_an_unwritable_out(a_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*EVAL, "--out", str(a_file / "run")]) == 2
    assert str(a_file / "run") in _one_line(capsys)


def test_eval_with_unwritable_plots_stops_before_playing(
    tmp_path: Path, a_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main([*EVAL, "--out", str(out), "--plots", str(a_file / "plots")]) == 2
    assert "plots" in _one_line(capsys)
    assert not (out / "trajectories.jsonl").exists()


def test_compare_into_an_unwritable_out(a_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*COMPARE, "--episodes", "1", "--out", str(a_file / "cmp")]) == 2
    assert str(a_file / "cmp") in _one_line(capsys)


def test_export_into_an_unwritable_out(
    tmp_path: Path, a_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*EVAL, "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    source = str(tmp_path / "run" / "trajectories.jsonl")
    argv = ["export", source, "--format", "sft", "--min-reward", "0"]
    assert main([*argv, "--out", str(a_file / "sft.jsonl")]) == 2
    _one_line(capsys)


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_serve_on_a_port_out_of_range(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", port]) == 2
    assert "--port" in _one_line(capsys)


def test_serve_on_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    line = _one_line(capsys)
    assert "--port" in line and str(port) in line


def test_serve_with_uvicorn_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    assert main(["serve", "--port", "0", "--http", "uvicorn"]) == 2
    assert "'serve' extra" in _one_line(capsys)


def test_eval_on_a_run_with_a_corrupt_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main([*EVAL, "--episodes", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    path = out / "trajectories.jsonl"
    first, second = path.read_text().splitlines()
    path.write_text(f"{first}\n{second[:40]}\n{second}\n")
    assert main([*EVAL, "--episodes", "3", "--out", str(out)]) == 2
    assert f"{path}:2" in _one_line(capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["catalog"],
        ["catalog", "--json"],
        ["demo", "--episodes", "1"],
    ],
)
def test_output_into_a_closed_pipe_ends_quietly(argv: list[str]) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "labs_env", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # like `| head -0`: nobody reads what it prints
    err = child.stderr.read()
    assert child.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err, err
