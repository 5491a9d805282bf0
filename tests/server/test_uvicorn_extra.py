"""uvicorn is an optional extra (``labs-env[serve]``): only ``labs-env serve --http uvicorn``
and the benchmarks need it, and ``import labs_env`` pulls in neither it nor click."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from labs_env.server import LabsServer, run_in_thread

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _names(requirements: list[str]) -> set[str]:
    return {r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip() for r in requirements}


def test_uvicorn_is_an_extra_not_a_dependency() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert "uvicorn" not in _names(project["dependencies"])
    assert "uvicorn" in _names(project["optional-dependencies"]["serve"])
    assert "uvicorn" in _names(project["optional-dependencies"]["test"])


# A base install has neither uvicorn nor click (click comes with uvicorn; httpx imports it
# whenever it is installed): block both as if they were not installed.
_BASE_INSTALL = textwrap.dedent(
    """
    import sys
    class Absent:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("uvicorn", "click"):
                raise ModuleNotFoundError(f"No module named {name!r}")
    sys.meta_path.insert(0, Absent())
    import labs_env, labs_env.cli, labs_env.server
    from labs_env.cli import main
    print("uvicorn" in sys.modules, "click" in sys.modules)
    sys.exit(main(["serve", "--http", "uvicorn", "--port", "0"]))
    """
)


def test_a_base_install_imports_and_says_how_to_get_uvicorn() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _BASE_INSTALL], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "False False"
    assert done.returncode == 2
    assert "'serve' extra" in done.stderr and "Traceback" not in done.stderr


def test_run_in_thread_on_uvicorn_without_it_says_which_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with (
        pytest.raises(ImportError, match="'serve' extra"),
        run_in_thread(LabsServer(), http="uvicorn"),
    ):
        pass  # pragma: no cover
