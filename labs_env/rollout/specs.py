"""Episode specs for :func:`labs_env.collect`: what to play, with a stable key per episode.

A spec names one episode: collection, scenario, seed (sent as ``config.seed``), reward config,
and its GRPO group. Its :attr:`EpisodeSpec.key` depends only on those fields, so a resumed run
can skip the specs whose records are already on disk (:func:`completed_keys`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labs_env.checks import check_json
from labs_env.errors import LabsValidationError
from labs_env.models import RewardConfig
from labs_env.rollout.planning import EpisodePlan, coerce_reward_config
from labs_env.rollout.trajectory import TrajectoryRecord, iter_trajectories

__all__ = ["EpisodeSpec", "completed_keys", "episode_specs"]


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to play.

    Attributes:
        collection / scenario: what to play.
        seed: sent as ``config.seed`` (against the local server: the same seed and actions
            give the same episode); ``None`` sends none.
        reward_config: sent with every turn (``None``: the service's default scoring).
        config: extra create-episode overrides.
        group: GRPO group id (members share scenario and seed); ``None``: not grouped.
        member: index within the group.
        extra: stored in the record's ``extra`` (e.g. a policy name).
        key: stable id of the episode (derived from the fields above when not given).
    """

    collection: str
    scenario: str
    seed: int | None = None
    reward_config: RewardConfig | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    group: str | None = None
    member: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        for name in ("collection", "scenario"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise LabsValidationError(f"EpisodeSpec.{name}", "must be a non-empty slug", "")
        if self.seed is not None and (
            not isinstance(self.seed, int) or isinstance(self.seed, bool)
        ):
            raise LabsValidationError("EpisodeSpec.seed", f"must be an int, got {self.seed!r}", "")
        config = coerce_reward_config(self.reward_config, "EpisodeSpec.reward_config")
        object.__setattr__(self, "reward_config", config)
        for name in ("config", "extra"):  # sent or written as JSON: plain JSON only
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise LabsValidationError(f"EpisodeSpec.{name}", "must be a mapping", "")
            check_json(dict(value), f"EpisodeSpec.{name}")
        if not self.key:
            object.__setattr__(self, "key", self._derive_key())

    def _derive_key(self) -> str:
        key = f"{self.collection}/{self.scenario}/seed={self.seed}"
        if self.reward_config is not None:
            key += f"/rc={_digest(self.reward_config.model_dump())}"
        if self.config:
            key += f"/cfg={_digest(dict(self.config))}"
        if self.group is not None:
            key += f"/g={self.group}#{self.member}"
        return key

    def group_of(self, size: int) -> list[EpisodeSpec]:
        """``size`` members of one GRPO group: this episode's scenario and seed, repeated."""
        if size < 1:
            raise LabsValidationError("group_size", f"must be >= 1, got {size}", "")
        base = self.key
        return [replace(self, group=base, member=j, key=f"{base}#{j}") for j in range(size)]

    def plan(self) -> EpisodePlan:
        """The create-episode plan (``config.seed`` = :attr:`seed`)."""
        config = {**({"seed": self.seed} if self.seed is not None else {}), **self.config}
        return EpisodePlan(self.collection, self.scenario, config, self.reward_config)

    def failed_record(self, error: str, error_type: str) -> TrajectoryRecord:
        """The record of this episode when it failed before it started (no episode id, no
        turns): an error, never a reward."""
        return TrajectoryRecord(
            episode_id="",
            collection=self.collection,
            scenario=self.scenario,
            seed=self.seed,
            reward_config=self.reward_config.model_dump() if self.reward_config else None,
            started_at=time.time(),
            error=error,
            extra={**self.record_extra(), "error_type": error_type},
        )

    def record_extra(self) -> dict[str, Any]:
        """What the episode's record stores in ``extra``."""
        extra = {"spec_key": self.key, **self.extra}
        if self.group is not None:
            extra.update(group=self.group, member=self.member)
        return extra


def episode_specs(
    collection: str,
    scenarios: str | Sequence[str],
    *,
    episodes: int = 1,
    seed: int = 0,
    group_size: int = 1,
    reward_config: RewardConfig | Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[EpisodeSpec]:
    """``episodes`` per scenario with seeds ``seed, seed + 1, ...`` (the same seeds for every
    scenario, so results pair up); with ``group_size=k`` each becomes a GRPO group of ``k``
    episodes sharing scenario and seed.

    Example:
        >>> specs = episode_specs("insurance-claims", ["a", "b"], episodes=2, group_size=4)
        >>> len(specs), specs[0].key
        (16, 'insurance-claims/a/seed=0#0')
    """
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    if not isinstance(scenarios, Sequence) or isinstance(scenarios, (bytes, bytearray)):
        raise LabsValidationError(
            "scenarios",
            f"expected a slug or a list of slugs, got {type(scenarios).__name__}",
            "pass e.g. 'delayed-claim-call' or ['delayed-claim-call', 'car-theft-claim']",
        )
    if episodes < 1:
        raise LabsValidationError("episodes", f"must be >= 1, got {episodes}", "")
    config_model = coerce_reward_config(reward_config)
    specs: list[EpisodeSpec] = []
    for scenario in scenarios:
        for i in range(episodes):
            spec = EpisodeSpec(
                collection,
                scenario,
                seed + i,
                config_model,
                dict(config or {}),
                extra=dict(extra or {}),
            )
            specs.extend(spec.group_of(group_size) if group_size > 1 else [spec])
    return specs


def completed_keys(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, ok_only: bool = True
) -> set[str]:
    """The spec keys already recorded in JSONL file(s) (missing files: none).

    Args:
        ok_only: count only records without an infrastructure error (failed episodes are
            played again on resume).

    Example:
        >>> specs = episode_specs("insurance-claims", "delayed-claim-call", episodes=4)
        >>> todo = [s for s in specs if s.key not in completed_keys("runs/eval.jsonl")]
        >>> len(todo)  # no such file yet: every episode is still to play
        4
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    keys: set[str] = set()
    for path in paths:
        if not Path(path).exists():
            continue
        for record in iter_trajectories(path):
            key = record.extra.get("spec_key")
            if isinstance(key, str) and (record.ok or not ok_only):
                keys.add(key)
    return keys
