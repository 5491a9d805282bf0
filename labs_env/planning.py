"""Planning an episode before it is created: scenario, seed, config, reward config (no I/O).

Shared by :class:`~labs_env.env.LabsEnv` and the vector env so both check their common
constructor arguments alike, draw scenarios and seeds the same way from a seeded generator and
accept the same ``reset`` options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labs_env.episode import coerce_reward_config, draw_episode_seed, draw_scenario
from labs_env.errors import LabsValidationError
from labs_env.models import Catalog, RewardConfig

__all__ = [
    "ALL_SCENARIOS",
    "RESET_OPTIONS",
    "EpisodePlan",
    "check_env_arguments",
    "collection_scenarios",
    "only_collection",
    "plan_episode",
    "scenario_choice",
]

#: Pass as ``scenario`` (or ``None``) to mix every scenario of the collection.
ALL_SCENARIOS = "*"
#: The keys ``reset(options=...)`` accepts.
RESET_OPTIONS = frozenset({"scenario", "reward_config", "config"})


def check_env_arguments(
    *, render_mode: Any, client: Any, api_key: Any, base_url: Any, collection: Any, config: Any
) -> None:
    """Check the arguments every Labs env takes (a typed error before anything is sent).

    Raises:
        LabsValidationError: an unsupported ``render_mode``, a ``client`` given together with
            ``api_key`` / ``base_url``, an empty or non-str ``collection``, a non-mapping
            ``config``.
    """
    if render_mode not in (None, "ansi"):
        raise LabsValidationError(
            "render_mode", f"{render_mode!r} is not supported", "use None or 'ansi'"
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
    scenario = options.get("scenario")
    if scenario is None:
        scenario = scenarios[0] if len(scenarios) == 1 else draw_scenario(rng, scenarios)
    elif not isinstance(scenario, str) or not scenario:
        raise LabsValidationError("options.scenario", "must be a scenario slug", "")
    merged = {"seed": draw_episode_seed(rng), **(config or {}), **extra}
    return EpisodePlan(collection, scenario, merged, reward_config)
