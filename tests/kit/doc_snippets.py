"""The code blocks of the README and the docs pages, and how each is checked.

A block runs as written, in a scratch directory shared by the blocks of its page (in page
order, as a reader would run them), unless the HTML comment right above its fence says
otherwise:

- ``<!-- check: skip (why) -->``: not run (installs packages, serves forever...);
- ``<!-- check: import-only (why) -->``: only its ``import`` lines run (it needs something
  the tests do not have: the real service, a model server, a cluster);
- ``<!-- check: train (why) -->``: runs in the train stage only (``pytest -m train``);
- ``<!-- check: setup COMMAND -->``: runs, after ``COMMAND`` (bash) has prepared the directory.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!--\s*check:\s*(skip|import-only|train|setup)\b\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class Snippet:
    """One fenced block: where it is, its language, its code and its check marker."""

    page: Path
    line: int
    language: str
    code: str
    mode: str = "run"  # run, skip, import-only, train, setup
    setup: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def import_lines(self) -> str:
        """The block's top-level import statements (the whole block must parse)."""
        tree = ast.parse(self.code)
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        return "".join(ast.unparse(node) + "\n" for node in imports)


def snippets(page: Path) -> list[Snippet]:
    """The blocks of ``page`` that name a language, with the marker right above each fence."""
    found: list[Snippet] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None or not opening.group(1):
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        language = opening.group(1)
        above = lines[start - 1].strip() if start else ""
        marker = _MARKER.match(above)
        mode, setup = ("run", "") if marker is None else (marker.group(1), marker.group(2))
        found.append(Snippet(page, start + 1, language, "\n".join(body) + "\n", mode, setup))
    return found
