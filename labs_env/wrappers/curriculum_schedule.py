"""The reward-config curriculum as a schedule, shared by the single and the vector wrapper.

The Labs documentation's example has three phases: discovery only (safety gate skipped), a mix
of discovery, success metrics and rubrics (gate skipped), then the default scoring (no
``reward_config``, gate on). It is :data:`DOCUMENTED_CURRICULUM`, set up in one line with
:meth:`CurriculumSchedule.documented`.

Phases advance at episode boundaries, by episode count and/or adaptively when the rolling mean
of the episode reward reaches a threshold. With the safety gate skipped a model can drift out
of scope unpenalised; the service advises turning the gate back on periodically:
``gate_check_every=N`` plays every N-th episode of a gate-skipping phase with the same weights
and the gate on.

Example:
    >>> schedule = CurriculumSchedule.documented(episodes=(1, 1))
    >>> [schedule.start_episode() is not None for _ in range(1)], schedule.phase.name
    ([True], 'discovery')
    >>> schedule.end_episode(0.4); schedule.start_episode(); schedule.phase.name
    RewardConfig(quality_weights={'discovery': 0.5, 'success_metrics': 0.3, 'rubrics': 0.2}, \
skip_safety_gate=True)
    'mixed'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from labs_env.errors import LabsValidationError
from labs_env.models import RewardConfig
from labs_env.rollout.planning import coerce_reward_config

__all__ = ["DOCUMENTED_CURRICULUM", "CurriculumPhase", "CurriculumSchedule", "DocumentedOptions"]


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


class DocumentedOptions(TypedDict, total=False):
    """The options of the documented curriculum (see :meth:`CurriculumSchedule.documented`)."""

    episodes: tuple[int, int] | None
    advance_at: tuple[float, float] | None
    window: int
    gate_check_every: int | None


class CurriculumSchedule:
    """Which phase (and so which ``reward_config``) the next episode is played with.

    Call :meth:`start_episode` when an episode starts (it returns the config to play it with)
    and :meth:`end_episode` with its reward when it ends; episodes may overlap (a vector env).

    Args:
        phases: the phases in order (at least one; only the last may have no end rule).
        window: episodes in the rolling mean for ``advance_at``.
        gate_check_every: every N-th episode of a phase that skips the safety gate is played
            with the gate on (``None``: never).
    """

    def __init__(
        self,
        phases: Sequence[CurriculumPhase],
        *,
        window: int = 20,
        gate_check_every: int | None = None,
    ) -> None:
        if not phases:
            raise LabsValidationError("phases", "empty", "give at least one CurriculumPhase")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise LabsValidationError("window", f"must be an int >= 1, got {window!r}", "")
        if gate_check_every is not None and (
            isinstance(gate_check_every, bool)
            or not isinstance(gate_check_every, int)
            or gate_check_every < 1
        ):
            raise LabsValidationError(
                "gate_check_every", f"must be an int >= 1 or None, got {gate_check_every!r}", ""
            )
        for phase in phases[:-1]:
            if phase.episodes is None and phase.advance_at is None:
                raise LabsValidationError(
                    f"phases[{phase.name!r}]",
                    "has no way to end (episodes and advance_at are both None)",
                    "set episodes=N or advance_at=threshold (only the last phase may be open)",
                )
        self.phases = tuple(phases)
        self.window = window
        self.gate_check_every = gate_check_every
        self.phase_index = 0
        self.episodes_in_phase = 0
        self.episodes_total = 0
        self.gate_check = False
        self._recent: deque[float] = deque(maxlen=window)

    @classmethod
    def documented(
        cls,
        *,
        episodes: tuple[int, int] | None = (100, 100),
        advance_at: tuple[float, float] | None = None,
        window: int = 20,
        gate_check_every: int | None = None,
    ) -> CurriculumSchedule:
        """The documented three-phase curriculum.

        Args:
            episodes: finished episodes in phases 1 and 2 (``None``: adaptive only).
            advance_at: rolling-mean thresholds that end phases 1 and 2 (``None``: by count).
            window, gate_check_every: as for the constructor.
        """
        phases = list(DOCUMENTED_CURRICULUM)
        for i in range(2):
            phases[i] = CurriculumPhase(
                phases[i].name,
                phases[i].reward_config,
                episodes[i] if episodes else None,
                advance_at[i] if advance_at else None,
            )
        return cls(phases, window=window, gate_check_every=gate_check_every)

    @property
    def phase(self) -> CurriculumPhase:
        """The active phase."""
        return self.phases[self.phase_index]

    @property
    def rolling_mean(self) -> float | None:
        """Mean episode reward over the last ``window`` finished episodes of this phase."""
        return sum(self._recent) / len(self._recent) if self._recent else None

    def active_reward_config(self) -> RewardConfig | None:
        """The config of the episode started last (gate forced on during a gate check)."""
        config = self.phase.reward_config
        if self.gate_check and config is not None:
            return config.model_copy(update={"skip_safety_gate": False})
        return config

    def start_episode(self) -> RewardConfig | None:
        """Advance the phase if its end rule is met; the config to play the new episode with."""
        self._maybe_advance()
        config = self.phase.reward_config
        self.gate_check = bool(
            self.gate_check_every
            and config is not None
            and config.skip_safety_gate
            and (self.episodes_in_phase + 1) % self.gate_check_every == 0
        )
        return self.active_reward_config()

    def end_episode(self, value: float) -> None:
        """Count a finished episode whose reward (the wrapper's metric) is ``value``."""
        self.episodes_in_phase += 1
        self.episodes_total += 1
        self._recent.append(float(value))

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
