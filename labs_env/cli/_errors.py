"""How the CLI reports a problem: one line on stderr that says what to do, and an exit code.

Exit codes: 2 for bad input (``LabsValidationError``: nothing was sent) or a file that cannot be
read or written (``OSError``); 1 for a failure of a service (``APIError``) or a run stopped
early because its episodes all failed the same way.
"""

from __future__ import annotations

import argparse
import os
from urllib.parse import urlsplit

from labs_env.client import BASE_URL_ENV, DEFAULT_BASE_URL
from labs_env.client.api_key import API_KEY_ENV
from labs_env.errors import (
    APIConnectionError,
    AuthenticationError,
    LabsError,
    LabsValidationError,
)

__all__ = ["exit_code", "one_line"]


def exit_code(exc: BaseException) -> int | None:
    """The exit code for ``exc``; ``None`` for a bug (which keeps its traceback)."""
    if isinstance(exc, (LabsValidationError, OSError)):
        return 2
    if isinstance(exc, LabsError):
        return 1
    return None


def one_line(exc: BaseException, args: argparse.Namespace) -> str:
    """``exc`` in one line, with what to do about a bad key or an unreachable service."""
    text = _first_line(exc)
    if isinstance(exc, OSError) and not isinstance(exc, LabsError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or text}{where}"
    local = getattr(args, "local", False)
    if isinstance(exc, AuthenticationError):
        return (
            f"{text} — the service rejected the key: check {API_KEY_ENV} (export "
            f"{API_KEY_ENV}=lab_...) and that {BASE_URL_ENV} is the service that issued it, "
            "or pass --local to play the embedded local server"
        )
    if isinstance(exc, APIConnectionError) and not local:
        host = urlsplit(os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).netloc
        return (
            f"{text} — cannot reach the Labs service at {host}: check {BASE_URL_ENV} and the "
            "network, or pass --local to play the embedded local server"
        )
    return text


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
