"""Planning an episode before it is created: scenario, seed, config, reward config (no I/O).

Shared by :class:`~labs_env.LabsEnv` and the vector env so both check their common
constructor arguments alike, draw scenarios and seeds the same way from a seeded generator and
accept the same ``reset`` options.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from labs_env.checks import check_json
from labs_env.errors import LabsValidationError
from labs_env.models import Catalog, RewardConfig

__all__ = [
    "ALL_SCENARIOS",
    "RESET_OPTIONS",
    "EpisodePlan",
    "coerce_reward_config",
    "collection_scenarios",
    "draw_episode_seed",
    "draw_scenario",
    "only_collection",
    "plan_episode",
    "scenario_choice",
]

#: Pass as ``scenario`` (or ``None``) to mix every scenario of the collection.
ALL_SCENARIOS = "*"
#: The keys ``reset(options=...)`` accepts.
RESET_OPTIONS = frozenset({"scenario", "reward_config", "config"})


_SEED_BOUND = 2**31 - 1


def coerce_reward_config(value: Any, field: str = "reward_config") -> RewardConfig | None:
    """A :class:`RewardConfig` from a model, a mapping or ``None``.

    Raises:
        LabsValidationError: the value is not a valid reward config.
    """
    if value is None or isinstance(value, RewardConfig):
        return value
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if not isinstance(value, Mapping):
        raise LabsValidationError(
            field,
            f"expected a RewardConfig, a mapping or None, got {type(value).__name__}",
            'pass e.g. {"quality_weights": {"discovery": 1.0}}',
        )
    known = list(RewardConfig.model_fields)
    unknown = sorted(str(key) for key in value if key not in known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise LabsValidationError(
            field,
            f"unknown key(s) {unknown}",
            f"{hint}a reward config has {known}, e.g. "
            '{"quality_weights": {"discovery": 1.0}, "skip_safety_gate": false}',
        )
    try:
        return RewardConfig.model_validate(dict(value))
    except ValidationError as exc:
        problem = "; ".join(
            ".".join(str(part) for part in err["loc"]) + f": {err['msg']}"
            for err in exc.errors(include_url=False)
        ).replace("Value error, ", "")
        raise LabsValidationError(
            field, problem, "see RewardConfig: quality_weights keys and weights >= 0"
        ) from None


def draw_scenario(rng: np.random.Generator, scenarios: Sequence[str]) -> str:
    """One scenario slug drawn uniformly with ``rng`` (the env's seeded generator)."""
    if not scenarios:
        raise LabsValidationError("scenario", "no scenario to draw from", "name at least one")
    return scenarios[int(rng.integers(len(scenarios)))]


def draw_episode_seed(rng: np.random.Generator) -> int:
    """The episode seed sent as ``config.seed``, drawn from the env's seeded generator."""
    return int(rng.integers(_SEED_BOUND))


@dataclass(frozen=True)
class EpisodePlan:
    """What to create: ``client.create_episode(collection, scenario, config=config)``.

    Attributes:
        reward_config: sent with every turn of the episode (``None``: default scoring).
    """

    collection: str
    scenario: str
    config: dict[str, Any]
    reward_config: RewardConfig | None

    @property
    def seed(self) -> int | None:
        """The episode seed sent as ``config.seed`` (``None`` if not an int)."""
        seed = self.config.get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def scenario_choice(scenario: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """The scenarios to draw from (``None``: every scenario of the collection).

    Raises:
        LabsValidationError: an empty slug or list, or a non-string entry.
    """
    if scenario is None or scenario == ALL_SCENARIOS:
        return None
    if not isinstance(scenario, (str, Sequence)) or isinstance(scenario, (bytes, bytearray)):
        raise LabsValidationError(
            "scenario",
            f"expected a slug, a list of slugs, or None / '*', got {type(scenario).__name__}",
            "pass e.g. scenario='delayed-claim-call'",
        )
    if isinstance(scenario, str):
        if not scenario:
            raise LabsValidationError("scenario", "empty slug", "pass a slug, a list, or None")
        return (scenario,)
    slugs = tuple(scenario)
    if not slugs or not all(isinstance(s, str) and s for s in slugs):
        raise LabsValidationError(
            "scenario", "must be a slug, a non-empty list of slugs, or None / '*'", ""
        )
    return slugs


def only_collection(catalog: Catalog) -> str:
    """The catalog's collection when it has exactly one (for ``collection=None``)."""
    slugs = [c.slug for c in catalog.collections]
    if len(slugs) != 1:
        raise LabsValidationError(
            "collection",
            f"not given and the catalog has {len(slugs)} collections {slugs}",
            "pass collection=<slug>",
        )
    return slugs[0]


def collection_scenarios(catalog: Catalog, collection: str) -> tuple[str, ...]:
    """Every scenario slug of ``collection`` in catalog order."""
    slugs = tuple(s.slug for c in catalog.collections if c.slug == collection for s in c.scenarios)
    if not slugs:
        known = [c.slug for c in catalog.collections]
        raise LabsValidationError(
            "collection", f"{collection!r} has no scenarios in the catalog", f"one of {known}"
        )
    return slugs


def plan_episode(
    rng: np.random.Generator,
    *,
    collection: str,
    scenarios: Sequence[str],
    reward_config: RewardConfig | None,
    config: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> EpisodePlan:
    """Draw the next episode's scenario and seed from ``rng`` and apply ``reset`` options.

    Args:
        rng: the env's seeded generator.
        scenarios: the slugs to draw from (one: no draw).
        reward_config: the env's default for this episode.
        config: the env's create-episode ``config`` (``seed`` is drawn unless given).
        options: ``scenario``, ``reward_config`` (``None`` = default scoring), ``config``.

    Raises:
        LabsValidationError: unknown option keys or invalid values.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - RESET_OPTIONS)
    if unknown:
        raise LabsValidationError(
            "options", f"unknown key(s) {unknown}", f"use {sorted(RESET_OPTIONS)}"
        )
    if "reward_config" in options:
        reward_config = coerce_reward_config(options["reward_config"], "options.reward_config")
    extra = options.get("config") or {}
    if not isinstance(extra, Mapping):
        raise LabsValidationError("options.config", "must be a mapping", "e.g. {'seed': 1}")
    check_json(dict(extra), "options.config")
    scenario = options.get("scenario")
    if scenario is None:
        scenario = scenarios[0] if len(scenarios) == 1 else draw_scenario(rng, scenarios)
    elif not isinstance(scenario, str) or not scenario:
        raise LabsValidationError("options.scenario", "must be a scenario slug", "")
    merged = {"seed": draw_episode_seed(rng), **(config or {}), **extra}
    return EpisodePlan(collection, scenario, merged, reward_config)
