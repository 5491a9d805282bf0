"""The reward-config curriculum for vector envs.

:class:`VectorCurriculumWrapper` runs the same schedule as
:class:`~labs_env.wrappers.CurriculumWrapper` — phases by episode count or rolling mean reward,
periodic safety-gate checks — over the episodes of all N envs: every finished episode counts
once, and each env's *next* episode is played with the phase active when it starts. Both
wrappers run one :class:`~labs_env.wrappers.curriculum_schedule.CurriculumSchedule`, so they
cannot drift apart. Episodes ended by an infrastructure error are not counted: an error is
never a reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorWrapper

from labs_env.envs.vector_env import LabsVectorEnv
from labs_env.errors import LabsValidationError
from labs_env.wrappers.curriculum import CurriculumMetric, CurriculumView, check_metric
from labs_env.wrappers.curriculum_schedule import CurriculumPhase, CurriculumSchedule

__all__ = ["VectorCurriculumWrapper"]


class VectorCurriculumWrapper(VectorWrapper, CurriculumView):
    """Switch ``reward_config`` through phases for all envs of a :class:`LabsVectorEnv`.

    Args:
        env: the vector env (or a vector wrapper of one).
        phases, window, metric, gate_check_every: as for
            :class:`~labs_env.wrappers.CurriculumWrapper`.

    ``infos["curriculum_phase"]`` (int array) gives the phase index of each env's current
    episode.

    Example:
        >>> venv = LabsVectorEnv(8, collection="insurance-claims")
        >>> venv = VectorCurriculumWrapper.documented(venv, episodes=(200, 200))
        >>> venv.phase.name
        'discovery'
        >>> venv.close()
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        phases: Sequence[CurriculumPhase],
        *,
        window: int = 20,
        metric: CurriculumMetric = "final",
        gate_check_every: int | None = None,
    ) -> None:
        super().__init__(env)
        self.metric = check_metric(metric)
        if not isinstance(env.unwrapped, LabsVectorEnv):
            raise LabsValidationError(
                "env", f"needs a LabsVectorEnv, got {type(env.unwrapped).__name__}", ""
            )
        self.schedule = CurriculumSchedule(phases, window=window, gate_check_every=gate_check_every)
        n = env.num_envs
        self._returns = np.zeros(n)
        self._phase_of = np.zeros(n, dtype=np.int64)
        self._next_config = self.schedule.start_episode()

    def _apply(self, env_ids: Sequence[int]) -> None:
        venv = self.env.unwrapped
        assert isinstance(venv, LabsVectorEnv)
        venv.set_reward_config(self._next_config, env_ids)
        self._phase_of[list(env_ids)] = self.schedule.phase_index

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset with the active phase's config for every env reset."""
        mask = (options or {}).get("reset_mask")
        ids = [i for i in range(self.num_envs) if mask is None or mask[i]]
        self._apply(ids)
        self._returns[ids] = 0.0
        obs, infos = self.env.reset(seed=seed, options=options)
        infos["curriculum_phase"] = self._phase_of.copy()
        return obs, infos

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step; count each finished episode and configure the env's next one."""
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        self._returns += rewards
        ended = np.flatnonzero(terminated | truncated)
        failed = _error_mask(infos, self.num_envs)
        for i in ended:
            if not failed[i]:
                value = rewards[i] if self.metric == "final" else self._returns[i]
                self.schedule.end_episode(float(value))
                self._next_config = self.schedule.start_episode()
            self._returns[i] = 0.0
        if len(ended):
            self._apply([int(i) for i in ended])
        infos["curriculum_phase"] = self._phase_of.copy()
        return obs, rewards, terminated, truncated, infos


def _error_mask(infos: dict[str, Any], n: int) -> np.ndarray[Any, Any]:
    """Envs whose episode ended by an infrastructure error: the step's info is the
    ``final_info`` of an env that autoreset in the same step, else the info itself."""
    step_errors = infos.get("_error", np.zeros(n, dtype=np.bool_))
    final = infos.get("final_info")
    if final is None:
        return np.asarray(step_errors, dtype=np.bool_)
    final_errors = final.get("_error", np.zeros(n, dtype=np.bool_))
    mask: np.ndarray[Any, Any] = np.where(infos["_final_info"], final_errors, step_errors)
    return mask
