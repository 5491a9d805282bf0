"""Strict JSON for every file the library writes: ``NaN`` and ``Infinity`` are not JSON.

Python's :mod:`json` writes them by default (other readers then reject the whole file) or, with
``allow_nan=False``, raises an error that does not say where the value is. :func:`dumps` and
:func:`encode_line` refuse them (and text that is not valid Unicode) with a
:class:`~labs_env.errors.LabsValidationError` naming the value's path
(``record.turns[2].reward``), before anything is written.

Example:
    >>> dumps({"reward": 0.5})
    '{"reward": 0.5}'
    >>> dumps({"turns": [{"reward": float("nan")}]}, "record")
    Traceback (most recent call last):
    ...
    labs_env.errors.LabsValidationError: record.turns[0].reward: nan is not a finite number \
(JSON has no NaN or Infinity) (fix: pass plain JSON: finite numbers, str keys, valid Unicode text)
"""

from __future__ import annotations

import json
from typing import Any

from labs_env.checks import check_json

__all__ = ["dumps", "encode_line"]


def dumps(value: Any, field: str = "value", **options: Any) -> str:
    """``json.dumps(value, **options)``, refusing non-finite numbers.

    Args:
        field: how the value is named in an error (e.g. ``"record"``, ``"rows[3]"``).

    Raises:
        LabsValidationError: a ``NaN`` or an infinity somewhere in ``value``.
    """
    try:
        return json.dumps(value, allow_nan=False, **options)
    except ValueError:
        # Where is it? The permissive encoding, read back, holds the same values at the same
        # paths as plain JSON (``default`` applied), which check_json can walk.
        permissive = json.dumps(value, default=options.get("default"))
        check_json(json.loads(permissive), field)
        raise


def encode_line(value: Any, field: str = "value", **options: Any) -> bytes:
    """One compact UTF-8 JSON line with its newline, as the JSONL files hold them.

    Raises:
        LabsValidationError: a non-finite number, or a string with a lone surrogate.
    """
    text = dumps(value, field, ensure_ascii=False, separators=(",", ":"), **options)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        check_json(json.loads(text), field)
        raise
