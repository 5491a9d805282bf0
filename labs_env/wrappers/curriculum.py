"""Curriculum over ``reward_config``: train on easy signals first, the full score last.

The Labs documentation's example has three phases: discovery only (safety gate skipped), a mix
of discovery, success metrics and rubrics (gate skipped), then the default scoring (no
``reward_config``, gate on). It is :data:`DOCUMENTED_CURRICULUM`, set up in one line with
:meth:`CurriculumWrapper.documented`.

Phases advance at episode boundaries, by episode count and/or adaptively when the rolling mean
of the episode reward reaches a threshold. The phase's config is passed to the env's ``reset``
as ``options["reward_config"]`` and so sent with every turn of the episode. ``info`` carries
``curriculum_phase`` (index) and ``curriculum_phase_name``.

With the safety gate skipped a model can drift out of scope unpenalised; the service advises
turning the gate back on periodically: ``gate_check_every=N`` plays every N-th episode of a
gate-skipping phase with the same weights and the gate on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym

from labs_env.episode import coerce_reward_config
from labs_env.errors import LabsValidationError
from labs_env.models import RewardConfig

__all__ = ["DOCUMENTED_CURRICULUM", "CurriculumPhase", "CurriculumWrapper"]

_METRICS = ("final", "return")


@dataclass(frozen=True)
class CurriculumPhase:
    """One phase.

    Attributes:
        name: shown in ``info["curriculum_phase_name"]``.
        reward_config: sent with every turn; ``None`` = the service's default scoring.
        episodes: leave the phase after this many finished episodes (``None``: no count).
        advance_at: leave the phase once the rolling mean episode reward reaches this
            (``None``: not adaptive). The last phase never ends.
    """

    name: str
    reward_config: RewardConfig | None = None
    episodes: int | None = None
    advance_at: float | None = None

    @classmethod
    def make(
        cls,
        name: str,
        reward_config: RewardConfig | Mapping[str, Any] | None = None,
        *,
        episodes: int | None = None,
        advance_at: float | None = None,
    ) -> CurriculumPhase:
        """A phase from a config given as a mapping (validated) or a model."""
        config = coerce_reward_config(reward_config, f"phases[{name!r}].reward_config")
        return cls(name, config, episodes, advance_at)


#: The three phases of the Labs documentation (no switching rule: see ``documented``).
DOCUMENTED_CURRICULUM: tuple[CurriculumPhase, ...] = (
    CurriculumPhase.make(
        "discovery", {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True}
    ),
    CurriculumPhase.make(
        "mixed",
        {
            "quality_weights": {"discovery": 0.5, "success_metrics": 0.3, "rubrics": 0.2},
            "skip_safety_gate": True,
        },
    ),
    CurriculumPhase.make("full", None),
)


class CurriculumWrapper(gym.Wrapper[Any, Any, Any, Any]):
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
        >>> env = CurriculumWrapper.documented(LabsEnv("support"), episodes=(200, 200))
        ... # doctest: +SKIP
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        phases: Sequence[CurriculumPhase],
        *,
        window: int = 20,
        metric: str = "final",
        gate_check_every: int | None = None,
    ) -> None:
        super().__init__(env)
        if not phases:
            raise LabsValidationError("phases", "empty", "give at least one CurriculumPhase")
        if metric not in _METRICS:
            raise LabsValidationError("metric", f"{metric!r}", f"use one of {_METRICS}")
        if window < 1 or (gate_check_every is not None and gate_check_every < 1):
            raise LabsValidationError("window", "must be >= 1 (gate_check_every too)", "")
        for phase in phases[:-1]:
            if phase.episodes is None and phase.advance_at is None:
                raise LabsValidationError(
                    f"phases[{phase.name!r}]",
                    "has no way to end (episodes and advance_at are both None)",
                    "set episodes=N or advance_at=threshold (only the last phase may be open)",
                )
        self.phases = tuple(phases)
        self.window = window
        self.metric = metric
        self.gate_check_every = gate_check_every
        self.phase_index = 0
        self.episodes_in_phase = 0
        self.episodes_total = 0
        self._recent: deque[float] = deque(maxlen=window)
        self._episode_return = 0.0
        self._last_reward = 0.0
        self._in_episode = False
        self._gate_check = False

    @classmethod
    def documented(
        cls,
        env: gym.Env[Any, Any],
        *,
        episodes: tuple[int, int] | None = (100, 100),
        advance_at: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> CurriculumWrapper:
        """The documented three-phase curriculum in one line.

        Args:
            episodes: finished episodes in phases 1 and 2 (``None``: adaptive only).
            advance_at: rolling-mean thresholds that end phases 1 and 2 (``None``: by count).
            **kwargs: ``window``, ``metric``, ``gate_check_every``.
        """
        phases = list(DOCUMENTED_CURRICULUM)
        for i in range(2):
            phases[i] = CurriculumPhase(
                phases[i].name,
                phases[i].reward_config,
                episodes[i] if episodes else None,
                advance_at[i] if advance_at else None,
            )
        return cls(env, phases, **kwargs)

    @property
    def phase(self) -> CurriculumPhase:
        """The active phase."""
        return self.phases[self.phase_index]

    @property
    def rolling_mean(self) -> float | None:
        """Mean episode reward over the last ``window`` finished episodes of this phase."""
        return sum(self._recent) / len(self._recent) if self._recent else None

    def active_reward_config(self) -> RewardConfig | None:
        """The config the current episode uses (gate forced on during a gate check)."""
        config = self.phase.reward_config
        if self._gate_check and config is not None:
            return config.model_copy(update={"skip_safety_gate": False})
        return config

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode with the active phase's ``reward_config``."""
        self._maybe_advance()
        config = self.phase.reward_config
        self._gate_check = bool(
            self.gate_check_every
            and config is not None
            and config.skip_safety_gate
            and (self.episodes_in_phase + 1) % self.gate_check_every == 0
        )
        options = {**(options or {}), "reward_config": self.active_reward_config()}
        obs, info = self.env.reset(seed=seed, options=options)
        self._episode_return = 0.0
        self._last_reward = 0.0
        self._in_episode = True
        return obs, self._annotate(info)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env; count the episode when it ends."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._last_reward = float(reward)
        self._episode_return += float(reward)
        if (terminated or truncated) and self._in_episode:
            self._in_episode = False
            self.episodes_in_phase += 1
            self.episodes_total += 1
            value = self._last_reward if self.metric == "final" else self._episode_return
            self._recent.append(value)
        return obs, reward, terminated, truncated, self._annotate(info)

    def _annotate(self, info: dict[str, Any]) -> dict[str, Any]:
        info["curriculum_phase"] = self.phase_index
        info["curriculum_phase_name"] = self.phase.name
        info["curriculum_gate_check"] = self._gate_check
        return info

    def _maybe_advance(self) -> None:
        if self.phase_index == len(self.phases) - 1:
            return
        phase = self.phase
        by_count = phase.episodes is not None and self.episodes_in_phase >= phase.episodes
        mean = self.rolling_mean
        by_reward = (
            phase.advance_at is not None
            and len(self._recent) >= self.window
            and mean is not None
            and mean >= phase.advance_at
        )
        if by_count or by_reward:
            self.phase_index += 1
            self.episodes_in_phase = 0
            self._recent.clear()
