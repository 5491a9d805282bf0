"""The env reward computed from score dimensions instead of the Labs reward.

Scores come flattened in ``info["scores"]`` (nested dimensions as dotted keys, e.g.
``"rubrics.score"``); they need ``score_turns=True`` and a key whose access level returns
scores. Give weights (a weighted mean of the named dimensions) or a function.

Warning (from the service's documentation): a dimension you do not reward can regress while
the ones you do improve. Keep watching every dimension — they all stay in ``info["scores"]``,
and the Labs reward stays in ``info["labs_reward"]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, SupportsFloat

import gymnasium as gym

from labs_env.errors import LabsValidationError

__all__ = ["ScoreRewardWrapper"]

ScoreFunction = Callable[[Mapping[str, float], Mapping[str, Any]], float]


class ScoreRewardWrapper(gym.Wrapper[Any, Any, Any, Any]):
    """Replace the reward with a function of ``info["scores"]``.

    Args:
        env: a Labs env (or a wrapper of one).
        weights: ``{dimension: weight}``; the reward is the weighted mean of those scores.
        fn: or ``fn(scores, info) -> float`` (exactly one of ``weights`` / ``fn``).
        missing: a weighted dimension absent from a turn's scores: ``"error"`` (raise, the
            default: usually a typo or scores not returned) or ``"zero"`` (count it as 0).

    Example:
        >>> from labs_env import LabsEnv
        >>> weights = {"D1_InformationGathering": 2.0, "rubrics.score": 1.0}
        >>> env = ScoreRewardWrapper(LabsEnv("insurance-claims", "delayed-claim-call"), weights)
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step("I'm sorry. What happened?")
        >>> scores = info["scores"]
        >>> expected = (2 * scores["D1_InformationGathering"] + scores["rubrics.score"]) / 3
        >>> abs(reward - expected) < 1e-9, 0.0 <= info["labs_reward"] <= 1.0
        (True, True)
        >>> env.close()
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        weights: Mapping[str, float] | None = None,
        *,
        fn: ScoreFunction | None = None,
        missing: str = "error",
    ) -> None:
        super().__init__(env)
        if (weights is None) == (fn is None):
            raise LabsValidationError("weights", "give exactly one of weights / fn", "")
        if missing not in ("error", "zero"):
            raise LabsValidationError("missing", f"{missing!r}", "use 'error' or 'zero'")
        if weights is not None:
            bad = {k: w for k, w in weights.items() if not math.isfinite(w) or w < 0}
            if not weights or bad or not any(w > 0 for w in weights.values()):
                raise LabsValidationError(
                    "weights",
                    f"need finite weights >= 0 with at least one > 0, got {dict(weights)}",
                    "e.g. {'D1_InformationGathering': 1.0}",
                )
        self.weights = dict(weights) if weights is not None else None
        self.fn = fn
        self.missing = missing

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step; the reward becomes the score-based one, the Labs reward goes to info."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["labs_reward"] = float(reward)
        return obs, self.score_reward(info.get("scores") or {}, info), terminated, truncated, info

    def score_reward(self, scores: Mapping[str, float], info: Mapping[str, Any]) -> float:
        """The reward for one turn's flattened scores."""
        if self.fn is not None:
            return float(self.fn(scores, info))
        assert self.weights is not None
        absent = sorted(k for k in self.weights if k not in scores)
        if absent and self.missing == "error":
            raise LabsValidationError(
                "weights",
                f"dimension(s) {absent} not in this turn's scores "
                f"(available: {sorted(scores) or 'none'})",
                "check the names; scores need score_turns=True and a key with score access, "
                "or pass missing='zero'",
            )
        total = sum(self.weights.values())
        return sum(w * scores.get(k, 0.0) for k, w in self.weights.items()) / total
