"""Argument parsing for the vector env: per-env values, autoreset modes, ``on_error``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from gymnasium.vector import AutoresetMode

from labs_env.errors import LabsValidationError

__all__ = ["ON_ERROR", "PerEnv", "parse_autoreset", "parse_on_error", "per_env_values"]

T = TypeVar("T")
U = TypeVar("U")

#: Accepted values of ``on_error``.
ON_ERROR = ("raise", "truncate", "replace")
_AUTORESET_SHORT = {
    AutoresetMode.SAME_STEP: "same",
    AutoresetMode.NEXT_STEP: "next",
    AutoresetMode.DISABLED: "disabled",
}


class PerEnv(Generic[T]):
    """One value per env, for arguments that otherwise apply to every env.

    A plain list of scenarios means "draw from these" (as in :class:`~labs_env.LabsEnv`);
    ``PerEnv`` means "env ``i`` gets item ``i``" (an item may itself be a list to draw from).

    Example:
        >>> from labs_env.vector import LabsVectorEnv, PerEnv
        >>> venv = LabsVectorEnv(2, scenario=PerEnv(["delayed-claim-call", "car-theft-claim"]))
        ... # doctest: +SKIP
    """

    __slots__ = ("values",)

    def __init__(self, values: Iterable[T]) -> None:
        if isinstance(values, (str, bytes)):
            raise LabsValidationError("PerEnv", "got a string", "pass one value per env")
        self.values: tuple[T, ...] = tuple(values)

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Any:
        return iter(self.values)

    def __getitem__(self, index: int) -> T:
        return self.values[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PerEnv) and self.values == other.values

    def __hash__(self) -> int:
        return hash((PerEnv, self.values))

    def __repr__(self) -> str:
        return f"PerEnv({list(self.values)!r})"


def per_env_values(
    value: Any,
    num_envs: int,
    field: str,
    convert: Callable[[Any, str], U],
    *,
    lists_are_per_env: bool = False,
) -> list[U]:
    """``value`` expanded to one converted item per env.

    Args:
        value: a single value, a :class:`PerEnv`, or (with ``lists_are_per_env``) a list.
        convert: ``convert(item, field_name)`` validates one item.
    """
    per_env = isinstance(value, PerEnv) or (lists_are_per_env and isinstance(value, (list, tuple)))
    if not per_env:
        item = convert(value, field)
        return [item] * num_envs
    items: Sequence[Any] = list(value)
    if len(items) != num_envs:
        raise LabsValidationError(
            field, f"has {len(items)} per-env values for {num_envs} envs", "give one per env"
        )
    return [convert(item, f"{field}[{i}]") for i, item in enumerate(items)]


def parse_autoreset(value: AutoresetMode | str) -> tuple[AutoresetMode, str]:
    """The mode and its short name (``"same"``, ``"next"``, ``"disabled"``)."""
    if isinstance(value, AutoresetMode):
        return value, _AUTORESET_SHORT[value]
    if isinstance(value, str):
        wanted = value.replace("_", "").replace("-", "").lower()
        for mode, short in _AUTORESET_SHORT.items():
            if wanted in (mode.value.lower(), mode.name.replace("_", "").lower()):
                return mode, short
    raise LabsValidationError(
        "autoreset_mode",
        f"unknown mode {value!r}",
        "use gymnasium.vector.AutoresetMode.SAME_STEP, NEXT_STEP or DISABLED",
    )


def parse_on_error(value: str) -> str:
    """Check ``on_error``."""
    if value not in ON_ERROR:
        raise LabsValidationError("on_error", f"unknown value {value!r}", f"use one of {ON_ERROR}")
    return value
