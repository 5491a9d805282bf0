"""Argument checks shared by every layer; each raises
:class:`~labs_env.errors.LabsValidationError` naming the field and the fix, before anything is
sent.

Example:
    >>> check_int(3, "concurrency", minimum=1)
    3
    >>> check_flag("no", "score_turns")
    Traceback (most recent call last):
    ...
    labs_env.errors.LabsValidationError: score_turns: must be True or False, got 'no' (fix: \
pass score_turns=True or score_turns=False)
"""

from __future__ import annotations

import math
from typing import TypeVar

from labs_env.errors import LabsValidationError
from labs_env.models import is_plain_json, json_problem

__all__ = [
    "check_choice",
    "check_flag",
    "check_int",
    "check_json",
    "check_number",
    "check_optional_int",
]

S = TypeVar("S", bound=str)
T = TypeVar("T")


def check_flag(value: object, field: str) -> bool:
    """``value`` if it is a bool (NumPy's included): ``"no"`` or ``1`` are not read as true."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise LabsValidationError(
        field, f"must be True or False, got {value!r}", f"pass {field}=True or {field}=False"
    )


def check_int(value: object, field: str, *, minimum: int, example: int | None = None) -> int:
    """``value`` if it is an int (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        hint = f"pass e.g. {field}={example if example is not None else max(minimum, 1)}"
        raise LabsValidationError(field, f"must be an int >= {minimum}, got {value!r}", hint)
    return value


def check_optional_int(value: object, field: str, *, minimum: int) -> int | None:
    """``None``, or an int ``>= minimum``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LabsValidationError(
            field,
            f"must be an int >= {minimum} or None, got {value!r}",
            f"pass e.g. {field}={max(minimum, 1)}, or None for no limit",
        )
    return value


def check_number(value: object, field: str, *, positive: bool = False) -> float:
    """``value`` as a float if it is a finite number ``>= 0`` (``> 0`` with ``positive``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        bound = "> 0" if positive else ">= 0"
        raise LabsValidationError(
            field, f"must be a finite number {bound}, got {value!r}", f"pass e.g. {field}=1.0"
        )
    return float(value)


def check_choice(value: object, field: str, choices: tuple[S, ...]) -> S:
    """``value`` if it is one of ``choices`` (the ``Literal`` modes of an argument)."""
    for choice in choices:
        if value == choice and isinstance(value, str):
            return choice
    raise LabsValidationError(field, f"unknown value {value!r}", f"use one of {list(choices)}")


def check_json(value: T, field: str) -> T:
    """``value`` if it is plain JSON (see :func:`labs_env.models.json_problem`): finite numbers,
    valid Unicode, string keys, bounded nesting; sent or written unchanged.

    Example:
        >>> check_json({"seed": float("nan")}, "config")
        Traceback (most recent call last):
        ...
        labs_env.errors.LabsValidationError: config.seed: nan is not a finite number (JSON has \
no NaN or Infinity) (fix: pass plain JSON: finite numbers, str keys, valid Unicode text)
    """
    if is_plain_json(value):  # the fast check; the slow one says where
        return value
    problem = json_problem(value, field)
    if problem is not None:
        raise LabsValidationError(
            problem[0], problem[1], "pass plain JSON: finite numbers, str keys, valid Unicode text"
        )
    return value
