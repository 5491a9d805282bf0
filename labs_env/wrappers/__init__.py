"""Gymnasium wrappers for Labs envs; each works with ``gym.make`` and on its own, and they compose.

- :class:`CurriculumWrapper` / :class:`VectorCurriculumWrapper` — phases of ``reward_config``
  by episode count or reward, on one :class:`CurriculumSchedule`.
- :class:`ScoreRewardWrapper` — the reward computed from score dimensions.
- :class:`TrajectoryRecorder` — every finished episode appended to a JSONL file.
- :class:`SparseFinalScoring` — unscored turns, one ``/evaluate`` of the finished conversation.
"""

from labs_env.wrappers.curriculum import CurriculumWrapper
from labs_env.wrappers.curriculum_schedule import (
    DOCUMENTED_CURRICULUM,
    CurriculumPhase,
    CurriculumSchedule,
)
from labs_env.wrappers.recorder import TrajectoryRecorder
from labs_env.wrappers.score_reward import ScoreRewardWrapper
from labs_env.wrappers.sparse import SparseFinalScoring
from labs_env.wrappers.vector_curriculum import VectorCurriculumWrapper

__all__ = [
    "DOCUMENTED_CURRICULUM",
    "CurriculumPhase",
    "CurriculumSchedule",
    "CurriculumWrapper",
    "ScoreRewardWrapper",
    "SparseFinalScoring",
    "TrajectoryRecorder",
    "VectorCurriculumWrapper",
]
