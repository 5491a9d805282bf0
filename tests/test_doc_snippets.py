"""Every code block of the README and the docs runs as written (see tests/kit/doc_snippets.py).

Each page's blocks run in order in one scratch directory, each in a fresh interpreter or
shell, offline against the embedded local server; the pages run side by side (most of the
time is spent starting interpreters and waiting on the server's latency). A failure names the
page and line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.kit.doc_snippets import PAGES, ROOT, Snippet, snippets

# The blocks a page marks ``train`` run only in the train stage; in the light stage their
# import lines still run, so a renamed name fails here too.
_LIGHT = {"run": "run", "setup": "run", "import-only": "imports", "train": "imports"}
_TRAIN = {"run": "run", "setup": "run", "import-only": "imports", "train": "run"}


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(MPLBACKEND="Agg", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


def _run(snippet: Snippet, how: str, cwd: Path, env: dict[str, str]) -> None:
    if snippet.mode == "setup":
        _execute(["bash", "-euo", "pipefail", "-c", snippet.setup], snippet, cwd, env, "setup")
    if snippet.language == "bash" and how == "run":
        _execute(["bash", "-euo", "pipefail", "-c", snippet.code], snippet, cwd, env, "block")
    elif snippet.language == "python":
        script = cwd / f"_snippet_{snippet.line}.py"
        script.write_text(snippet.code if how == "run" else snippet.import_lines())
        _execute([sys.executable, script.name], snippet, cwd, env, how)


def _execute(argv: list[str], snippet: Snippet, cwd: Path, env: dict[str, str], what: str) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    _check(done, snippet, what)


def _check(done: subprocess.CompletedProcess[str], snippet: Snippet, what: str) -> None:
    if done.returncode != 0:
        raise _BlockFailed(
            f"{snippet.where} ({snippet.language} {what}) exited {done.returncode}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )


class _BlockFailed(Exception):
    """A block exited non-zero; the message names its page and line, with its output."""


def _play(page: Path, modes: dict[str, str], scratch: Path) -> str | None:
    """Run ``page``'s blocks in ``scratch``; the first failure's message, or ``None``."""
    scratch.mkdir()
    (scratch / "examples").symlink_to(ROOT / "examples")  # the reader is in a checkout
    env = _environment()
    try:
        for snippet in snippets(page):
            how = modes.get(snippet.mode)
            if how is not None:
                _run(snippet, how, scratch, env)
    except (_BlockFailed, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None


def _play_all(pages: list[Path], modes: dict[str, str], tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = pool.map(lambda page: _play(page, modes, tmp_path / page.stem), pages)
        failures = [failure for failure in outcomes if failure is not None]
    assert not failures, "\n\n".join(failures)


@pytest.mark.timeout(900)
def test_every_page_runs(tmp_path: Path) -> None:
    _play_all(PAGES, _LIGHT, tmp_path)


_TRAIN_PAGES = [page for page in PAGES if any(s.mode == "train" for s in snippets(page))]


@pytest.mark.train
@pytest.mark.timeout(1800)
def test_training_pages_run_with_the_train_extra(tmp_path: Path) -> None:
    _play_all(_TRAIN_PAGES, _TRAIN, tmp_path)


def test_every_marker_is_understood() -> None:
    for page in PAGES:
        markers = [line for line in page.read_text().splitlines() if line.startswith("<!-- check:")]
        marked = sum(1 for s in snippets(page) if s.mode != "run")
        assert len(markers) == marked, f"{page.name}: a marker not right above a fence"
