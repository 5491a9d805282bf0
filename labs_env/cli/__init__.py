"""The ``labs-env`` command line.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a parser
and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit
code). Add a module name to ``_COMMANDS`` to add a command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from labs_env.errors import APIError, LabsError

__all__ = ["main"]

_COMMANDS: tuple[str, ...] = ("catalog", "compare", "demo", "eval", "export", "score", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labs-env",
        description="Labs API episodes as Gymnasium environments; a local Labs server.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"labs_env.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labs-env`` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code: int = func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except LabsError as exc:  # bad input or a failed service call: one line, no traceback
        print(f"labs-env {args.command}: {_one_line(exc)}", file=sys.stderr)
        return 1 if isinstance(exc, APIError) else 2
    return code


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
