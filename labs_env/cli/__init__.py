"""The ``labs-env`` command line.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a parser
and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit
code). Add a module name to ``_COMMANDS`` to add a command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from labs_env._version import __version__
from labs_env.cli._errors import exit_code, one_line

__all__ = ["main"]

_COMMANDS: tuple[str, ...] = ("catalog", "compare", "demo", "eval", "export", "score", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labs-env",
        description="Labs API episodes as Gymnasium environments; a local Labs server.",
    )
    parser.add_argument("--version", action="version", version=f"labs-env {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"labs_env.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labs-env`` script."""
    try:
        code = _run(argv)
        sys.stdout.flush()  # here, not at exit: a closed pipe is noticed inside the try
    except BrokenPipeError:
        # The reader went away (``labs-env catalog | head``): the standard way out is quiet.
        # Later writes (and the interpreter's final flush) go to /dev/null, not a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code


def _run(argv: Sequence[str] | None) -> int:
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
    except BrokenPipeError:
        raise
    except Exception as exc:  # a known problem: one line, no traceback (bugs still raise)
        known = exit_code(exc)
        if known is None:
            raise
        print(f"labs-env {args.command}: {one_line(exc, args)}", file=sys.stderr)
        return known
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
