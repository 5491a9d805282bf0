"""Sparse final scoring: unscored turns, one ``/evaluate`` of the finished conversation.

The wrapper switches the env to ``score_turns=False`` (every turn's reward is 0 and the service
runs no scorers per turn), and when the episode ends — terminated, or truncated by the service
or by a ``TimeLimit`` placed between the env and this wrapper (an outer one cuts the episode
without this wrapper seeing the end, so it is not scored) — scores the whole conversation once
with ``/evaluate``. The
reward is 0 on every step but the last. The evaluation's scores and breakdown go to ``info``
(``scores``, ``score_breakdown``, ``scoring_version``, ``final_evaluation=True``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, SupportsFloat

import gymnasium as gym

from labs_env.envs.env import LabsEnv
from labs_env.errors import LabsValidationError
from labs_env.models import RewardConfig
from labs_env.rollout.episode import flatten_scores
from labs_env.rollout.planning import coerce_reward_config

__all__ = ["SparseFinalScoring"]


class SparseFinalScoring(gym.Wrapper[Any, Any, Any, Any]):
    """Reward 0 per turn, then the ``/evaluate`` reward of the whole conversation at the end.

    Args:
        env: a :class:`~labs_env.LabsEnv` or a wrapper of one.
        reward_config: used for the evaluation; ``"episode"`` (default): the episode's own
            reward config; ``None``: the service's default scoring.
        normalization_key / normalization_windows: passed to ``/evaluate`` (the reward is
            still the raw one; z-scores land in ``info["normalized"]``).
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        *,
        reward_config: RewardConfig | Mapping[str, Any] | Literal["episode"] | None = "episode",
        normalization_key: str | None = None,
        normalization_windows: list[str] | None = None,
    ) -> None:
        super().__init__(env)
        base = env.unwrapped
        if not isinstance(base, LabsEnv):
            raise LabsValidationError(
                "env", f"needs a LabsEnv underneath, got {type(base).__name__}", ""
            )
        self.labs_env = base
        base.score_turns = False
        self._reward_config: RewardConfig | Literal["episode"] | None = (
            "episode" if reward_config == "episode" else coerce_reward_config(reward_config)
        )
        self.normalization_key = normalization_key
        self.normalization_windows = normalization_windows

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step with reward 0; on the last step, evaluate the conversation."""
        obs, _, terminated, truncated, info = self.env.step(action)
        info["final_evaluation"] = False
        if not (terminated or truncated):
            return obs, 0.0, terminated, truncated, info
        episode = self.labs_env.episode
        assert episode is not None
        config = episode.reward_config if self._reward_config == "episode" else self._reward_config
        result = self.labs_env.client.evaluate(
            episode.collection,
            episode.scenario,
            list(obs),
            reward_config=config,
            normalization_key=self.normalization_key,
            normalization_windows=self.normalization_windows,
        )
        info["final_evaluation"] = True
        info["scores"] = flatten_scores(result.scores)
        if result.score_breakdown is not None:
            info["score_breakdown"] = result.score_breakdown
        if result.normalized is not None:
            info["normalized"] = result.normalized
        info["scoring_version"] = result.scoring_version
        info["request_id"] = result.request_id
        return obs, float(result.reward), terminated, truncated, info
