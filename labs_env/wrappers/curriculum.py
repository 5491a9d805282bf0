"""Curriculum over ``reward_config`` for one env: train on easy signals first, the full score
last (the schedule is :class:`~labs_env.wrappers.curriculum_schedule.CurriculumSchedule`).

The phase's config is passed to the env's ``reset`` as ``options["reward_config"]`` and so sent
with every turn of the episode. ``info`` carries ``curriculum_phase`` (index),
``curriculum_phase_name`` and ``curriculum_gate_check``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, SupportsFloat

import gymnasium as gym
from typing_extensions import Self, Unpack

from labs_env.errors import LabsValidationError
from labs_env.models import RewardConfig
from labs_env.wrappers.curriculum_schedule import (
    CurriculumPhase,
    CurriculumSchedule,
    DocumentedOptions,
)

__all__ = ["CurriculumMetric", "CurriculumView", "CurriculumWrapper", "check_metric"]

#: The per-episode reward a curriculum counts: the last turn's reward (the score of the whole
#: conversation) or the sum of the turn rewards.
CurriculumMetric = Literal["final", "return"]
_METRICS = ("final", "return")


def check_metric(metric: object) -> CurriculumMetric:
    """``metric`` if it is ``"final"`` or ``"return"``; a typed error otherwise."""
    if metric == "final" or metric == "return":
        return metric
    raise LabsValidationError("metric", f"{metric!r}", f"use one of {_METRICS}")


class CurriculumView:
    """What both curriculum wrappers expose: their schedule and its state, and the documented
    curriculum in one line. Subclasses set :attr:`schedule` and :attr:`metric`."""

    schedule: CurriculumSchedule
    metric: CurriculumMetric

    if TYPE_CHECKING:  # the wrappers' constructors, as `documented` calls them

        def __init__(
            self,
            env: Any,
            phases: Sequence[CurriculumPhase],
            *,
            window: int = 20,
            metric: CurriculumMetric = "final",
            gate_check_every: int | None = None,
        ) -> None: ...

    @classmethod
    def documented(
        cls, env: Any, *, metric: CurriculumMetric = "final", **options: Unpack[DocumentedOptions]
    ) -> Self:
        """The documented three-phase curriculum in one line (``options``: see
        :meth:`~labs_env.wrappers.CurriculumSchedule.documented`)."""
        schedule = CurriculumSchedule.documented(**options)
        return cls(
            env,
            schedule.phases,
            window=schedule.window,
            metric=metric,
            gate_check_every=schedule.gate_check_every,
        )

    @property
    def phases(self) -> tuple[CurriculumPhase, ...]:
        """The phases in order."""
        return self.schedule.phases

    @property
    def phase(self) -> CurriculumPhase:
        """The active phase (the one new episodes start in)."""
        return self.schedule.phase

    @property
    def phase_index(self) -> int:
        """The active phase's index."""
        return self.schedule.phase_index

    @property
    def episodes_total(self) -> int:
        """Finished episodes counted so far."""
        return self.schedule.episodes_total

    @property
    def rolling_mean(self) -> float | None:
        """Mean episode reward over the last ``window`` finished episodes of this phase."""
        return self.schedule.rolling_mean


class CurriculumWrapper(gym.Wrapper[Any, Any, Any, Any], CurriculumView):
    """Switch ``reward_config`` through phases by episode count or a rolling mean of reward.

    Args:
        env: a Labs env (or a wrapper of one).
        phases: the phases in order (at least one).
        window: episodes in the rolling mean for ``advance_at``.
        metric: the per-episode reward the mean uses: ``"final"`` (the last turn's reward,
            the score of the whole conversation) or ``"return"`` (the sum of turn rewards).
        gate_check_every: every N-th episode of a phase that skips the safety gate is played
            with the gate on (``None``: never).

    Example:
        >>> from labs_env import LabsEnv
        >>> env = CurriculumWrapper.documented(LabsEnv("insurance-claims"), episodes=(200, 200))
        >>> obs, info = env.reset(seed=0)
        >>> info["curriculum_phase_name"], info["reward_config"]["quality_weights"]
        ('discovery', {'discovery': 1.0})
        >>> env.close()
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        phases: Sequence[CurriculumPhase],
        *,
        window: int = 20,
        metric: CurriculumMetric = "final",
        gate_check_every: int | None = None,
    ) -> None:
        super().__init__(env)
        self.metric = check_metric(metric)
        self.schedule = CurriculumSchedule(phases, window=window, gate_check_every=gate_check_every)
        self._episode_return = 0.0
        self._in_episode = False

    def active_reward_config(self) -> RewardConfig | None:
        """The config the current episode uses (gate forced on during a gate check)."""
        return self.schedule.active_reward_config()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode with the active phase's ``reward_config``."""
        config = self.schedule.start_episode()
        options = {**(options or {}), "reward_config": config}
        obs, info = self.env.reset(seed=seed, options=options)
        self._episode_return = 0.0
        self._in_episode = True
        return obs, self._annotate(info)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env; count the episode when it ends."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._episode_return += float(reward)
        if (terminated or truncated) and self._in_episode:
            self._in_episode = False
            value = float(reward) if self.metric == "final" else self._episode_return
            self.schedule.end_episode(value)
        return obs, reward, terminated, truncated, self._annotate(info)

    def _annotate(self, info: dict[str, Any]) -> dict[str, Any]:
        info["curriculum_phase"] = self.schedule.phase_index
        info["curriculum_phase_name"] = self.schedule.phase.name
        info["curriculum_gate_check"] = self.schedule.gate_check
        return info
