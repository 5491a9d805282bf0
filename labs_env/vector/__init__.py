"""Vectorized Labs environments and the asyncio machinery behind them.

- :class:`LabsVectorEnv` — N episodes as one :class:`gymnasium.vector.VectorEnv`, stepped
  concurrently on one event loop and one pooled client (``gym.make_vec("labs_env:Labs-v0")``).
- :class:`PerEnv` — one value per env for ``scenario`` / ``reward_config``.
- :class:`VectorStepError` — infrastructure failures under ``on_error="raise"``.
- :class:`VectorCurriculumWrapper` — the reward-config curriculum for vector envs.
"""

from labs_env.vector._options import PerEnv
from labs_env.vector.curriculum import VectorCurriculumWrapper
from labs_env.vector.env import LabsVectorEnv, VectorStepError

__all__ = ["LabsVectorEnv", "PerEnv", "VectorCurriculumWrapper", "VectorStepError"]
