"""The layout is the architecture: imports point down the layers only, no import loops
(type-checking and function-level imports included), no private name imported across packages."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labs_env"

#: Bottom up. A module may import its own package and anything of a lower layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("labs_env._version", "labs_env.errors", "labs_env.models", "labs_env.json_schema"),
    ("labs_env.checks",),
    ("labs_env.client", "labs_env.server"),
    ("labs_env.connect", "labs_env.testing"),
    ("labs_env.rollout",),
    ("labs_env.envs",),
    ("labs_env.wrappers",),
    ("labs_env.policies",),
    ("labs_env.distributed",),
    ("labs_env.evaluation",),
    ("labs_env.datasets",),
    ("labs_env.training",),
    ("labs_env.integrations",),
    ("labs_env.cli",),
    ("labs_env.__main__",),
)
#: Private modules any layer may import: the version string, by convention.
SHARED_PRIVATE = ("labs_env._version",)
#: The local server is a sibling of the client, not a dependency: it sees the wire models only.
SERVER_MAY_IMPORT = (
    "labs_env.server",
    "labs_env.models",
    "labs_env.json_schema",
    "labs_env._version",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str) -> Iterator[tuple[str, str, int]]:
    """``(module imported, name imported or "", line)`` for every labs_env import of ``name``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("labs_env"):
                    yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            if base.startswith("labs_env"):
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in MODULES:
                        yield submodule, "", node.lineno
                    else:
                        yield base, alias.name, node.lineno


def _layer(name: str) -> tuple[int, str]:
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                return rank, prefix
    raise AssertionError(f"{name} is in no layer: add its package to LAYERS")


def _package_of(name: str) -> str:
    return (
        name if name in MODULES and MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    )


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        if name != "labs_env":
            _layer(name)


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for name in MODULES:
        if name == "labs_env":
            continue  # the public API re-exports everything
        rank, own = _layer(name)
        for target, _, line in _imports(name):
            if target == "labs_env":
                wrong.append(f"{name}:{line} imports the package root (import the module)")
                continue
            target_rank, target_group = _layer(target)
            if target_rank > rank or (target_rank == rank and target_group != own):
                wrong.append(f"{name}:{line} imports {target} (a layer above or beside)")
    assert not wrong, "\n".join(wrong)


def test_the_server_sees_only_the_wire_models() -> None:
    wrong = [
        f"{name}:{line} imports {target}"
        for name in MODULES
        if name.startswith("labs_env.server")
        for target, _, line in _imports(name)
        if not any(target == ok or target.startswith(ok + ".") for ok in SERVER_MAY_IMPORT)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_private_name_is_imported_across_packages() -> None:
    wrong = []
    for name in MODULES:
        for target, symbol, line in _imports(name):
            last = target.rpartition(".")[2]
            private_module = last.startswith("_") and not last.startswith("__")
            private_symbol = symbol.startswith("_") and not symbol.startswith("__")
            if target in SHARED_PRIVATE:
                continue
            if (private_module or private_symbol) and _package_of(target) != _package_of(name):
                wrong.append(f"{name}:{line} imports {target} {symbol}".rstrip())
    assert not wrong, "\n".join(wrong)


def test_there_is_no_import_loop() -> None:
    graph = {name: {target for target, _, _ in _imports(name)} & MODULES.keys() for name in MODULES}
    graph.pop("labs_env")  # the root only re-exports; nothing imports it
    loops: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node] & graph.keys()):
            if state.get(nxt) == 1:
                loops.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not loops, "\n".join(" -> ".join(loop) for loop in loops)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if MODULES[n].name != "__init__.py"))
def test_no_two_modules_share_a_name(name: str) -> None:
    short = name.rpartition(".")[2]
    same = sorted(n for n in MODULES if n.rpartition(".")[2] == short and n != name)
    assert not same or short.startswith("__"), f"{name} shares its name with {same}"
