"""Argument checks of the envs (a typed error before anything is sent): the arguments both
envs take, the vector env's per-env values (:class:`PerEnv`), autoreset modes, ``on_error`` and
``reset`` plans."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, NamedTuple, TypeVar

import numpy as np
from gymnasium.vector import AutoresetMode

from labs_env.checks import check_choice, check_int, check_json, check_optional_int
from labs_env.client import AsyncLabsClient, LabsClient
from labs_env.errors import LabsValidationError
from labs_env.rollout.planning import RESET_OPTIONS, coerce_reward_config

__all__ = [
    "ON_ERROR",
    "OnError",
    "PerEnv",
    "RenderMode",
    "ResetPlan",
    "check_env_arguments",
    "check_vector_arguments",
    "parse_autoreset",
    "parse_on_error",
    "per_env_values",
    "plan_reset",
]

T = TypeVar("T")
U = TypeVar("U")

#: What an infrastructure failure does to the vector env it hits (see ``LabsVectorEnv``).
OnError = Literal["raise", "truncate", "replace"]
#: Accepted values of ``on_error``.
ON_ERROR: tuple[OnError, ...] = ("raise", "truncate", "replace")
#: The render modes of the envs: ``"ansi"`` renders the transcript.
RenderMode = Literal["ansi"]
_RESET_OPTIONS = RESET_OPTIONS | {"reset_mask"}
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
        >>> from labs_env import LabsVectorEnv, PerEnv
        >>> scenarios = PerEnv(["delayed-claim-call", "car-theft-claim"])
        >>> venv = LabsVectorEnv(2, collection="insurance-claims", scenario=scenarios)
        >>> obs, infos = venv.reset(seed=0)
        >>> infos["scenario"].tolist()
        ['delayed-claim-call', 'car-theft-claim']
        >>> venv.close()
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


def parse_on_error(value: object) -> OnError:
    """Check ``on_error``."""
    return check_choice(value, "on_error", ON_ERROR)


class ResetPlan(NamedTuple):
    """A checked ``reset(seed=..., options=...)``: which envs, their seeds and options."""

    mask: np.ndarray[Any, Any]
    seeds: list[int | None]
    options: list[dict[str, Any]]


def _one_slug(value: Any, field: str) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise LabsValidationError(field, f"expected a scenario slug, got {value!r}", "")


def plan_reset(
    num_envs: int, seed: int | Sequence[int | None] | None, options: Mapping[str, Any] | None
) -> ResetPlan:
    """Check a vector ``reset``'s arguments before anything is sent.

    ``seed``: an int (env ``i`` gets ``seed + i``), one per env, or ``None``. ``options``:
    ``reset_mask``, and per reset env ``scenario`` / ``reward_config`` (a value or
    :class:`PerEnv`) and ``config``.
    """
    n = num_envs
    options = dict(options or {})
    unknown = sorted(set(options) - _RESET_OPTIONS)
    if unknown:
        raise LabsValidationError(
            "options", f"unknown key(s) {unknown}", f"use {sorted(_RESET_OPTIONS)}"
        )
    mask = options.pop("reset_mask", None)
    if mask is None:
        mask = np.ones(n, dtype=np.bool_)
    elif (
        not isinstance(mask, np.ndarray)
        or mask.dtype != np.bool_
        or mask.shape != (n,)
        or not mask.any()
    ):
        raise LabsValidationError(
            "options.reset_mask", f"must be a bool array of shape ({n},) with a True", ""
        )
    if seed is None:
        seeds: list[int | None] = [None] * n
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        seeds = [int(seed) + i for i in range(n)]
    else:
        seeds = list(seed)  # type: ignore[arg-type]
        if len(seeds) != n:
            raise LabsValidationError("seed", f"has {len(seeds)} seeds for {n} envs", "")
    per_env: list[dict[str, Any]] = [{} for _ in range(n)]
    if "scenario" in options:
        slugs = per_env_values(options["scenario"], n, "options.scenario", _one_slug)
        for i, value in enumerate(slugs):
            if value is not None:
                per_env[i]["scenario"] = value
    if "reward_config" in options:
        configs = per_env_values(
            options["reward_config"], n, "options.reward_config", coerce_reward_config
        )
        for i, config in enumerate(configs):
            per_env[i]["reward_config"] = config
    extra = options.get("config")
    if extra:
        if not isinstance(extra, Mapping):
            raise LabsValidationError("options.config", "must be a mapping", "")
        check_json(dict(extra), "options.config")
        for item in per_env:
            item["config"] = dict(extra)
    return ResetPlan(mask, seeds, per_env)


_CLIENT_FIXES = {
    "LabsClient": "LabsEnv is synchronous: pass a LabsClient (or use LabsVectorEnv, which "
    "takes an AsyncLabsClient)",
    "AsyncLabsClient": "pass labs_env.AsyncLabsClient(...) or labs_env.make_async_client()",
}


def check_env_arguments(
    *,
    render_mode: object,
    client: object,
    client_type: type[LabsClient] | type[AsyncLabsClient],
    api_key: object,
    base_url: object,
    collection: object,
    config: object,
) -> None:
    """Check the arguments every Labs env takes (a typed error before anything is sent).

    Raises:
        LabsValidationError: an unsupported ``render_mode``, a client of the wrong kind or
            given together with ``api_key`` / ``base_url``, an empty or non-str
            ``collection``, a non-mapping ``config``.
    """
    if render_mode not in (None, "ansi"):
        raise LabsValidationError(
            "render_mode", f"{render_mode!r} is not supported", "use None or 'ansi'"
        )
    if client is not None and not isinstance(client, client_type):
        raise LabsValidationError(
            "client",
            f"expected a {client_type.__name__}, got {type(client).__name__}",
            _CLIENT_FIXES[client_type.__name__],
        )
    if client is not None and (api_key is not None or base_url is not None):
        raise LabsValidationError(
            "client", "given together with api_key/base_url", "configure the client instead"
        )
    if collection is not None and (not isinstance(collection, str) or not collection):
        raise LabsValidationError(
            "collection", "must be a non-empty slug", "e.g. 'insurance-claims'"
        )
    if config is not None and not isinstance(config, Mapping):
        raise LabsValidationError("config", "must be a mapping", "e.g. {'seed': 7}")
    if config is not None:
        check_json(dict(config), "config")


def check_vector_arguments(
    *,
    num_envs: Any,
    render_mode: Any,
    client: Any,
    api_key: Any,
    base_url: Any,
    collection: Any,
    config: Any,
    max_concurrency: Any,
    max_episode_steps: Any,
) -> None:
    """Check the vector env's scalar arguments (a typed error before anything is sent)."""
    check_int(num_envs, "num_envs", minimum=1, example=8)
    check_env_arguments(
        render_mode=render_mode,
        client=client,
        client_type=AsyncLabsClient,
        api_key=api_key,
        base_url=base_url,
        collection=collection,
        config=config,
    )
    check_optional_int(max_concurrency, "max_concurrency", minimum=1)
    check_optional_int(max_episode_steps, "max_episode_steps", minimum=1)
