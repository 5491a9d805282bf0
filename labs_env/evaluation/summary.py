"""The evaluation summary of a set of trajectory records: per scenario and overall.

See :mod:`labs_env.evaluation.outcomes` for what an episode's reward is (the final turn's
reward). Episodes with an infrastructure error are counted and listed apart, never averaged
into a result.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from labs_env.evaluation.outcomes import EpisodeOutcome, RecordLike, outcomes
from labs_env.evaluation.stats import Method, bootstrap_mean_ci, dimension_means, percentiles

__all__ = ["REWARD_DEFINITION", "SUMMARY_SCHEMA", "StatsOptions", "summarize", "summarize_outcomes"]

SUMMARY_SCHEMA = "labs_env.evaluation.summary/1"
REWARD_DEFINITION = (
    "reward = the final turn's reward (the service scores the whole conversation at each turn); "
    "total_reward = the sum of the turn rewards"
)
_MAX_ERROR_TEXT = 200


@dataclass(frozen=True)
class StatsOptions:
    """How intervals are computed: confidence level, bootstrap resamples, seed, method."""

    confidence: float = 0.95
    n_resamples: int = 5000
    seed: int = 0
    method: Method = "bca"

    def kwargs(self) -> dict[str, Any]:
        return {
            "confidence": self.confidence,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "method": self.method,
        }


def summarize(records: Iterable[RecordLike], options: StatsOptions | None = None) -> dict[str, Any]:
    """The summary (a JSON-ready dict) of trajectory records or dicts of their fields.

    Keys: ``schema``, ``reward_definition``, ``stats`` (the options used), ``overall`` and
    ``scenarios`` (``"collection/scenario"`` → group summary), ``errors``. A group summary has
    ``episodes`` (results), ``errored``, ``unscored`` (no turn and no error), ``reward`` and
    ``total_reward`` (mean with interval), ``dimensions`` (per score dimension),
    ``terminal_reasons``, ``turns``, ``latency_s`` and ``reward_by_turn``.

    Example:
        >>> rec = {"episode_id": "e1", "collection": "c", "scenario": "s",
        ...        "turns": [{"turn": 1, "reward": 0.5}], "final_reward": 0.5}
        >>> summarize([rec])["overall"]["reward"]["mean"]
        0.5
    """
    return summarize_outcomes(outcomes(records), options)


def summarize_outcomes(
    episodes: Sequence[EpisodeOutcome], options: StatsOptions | None = None
) -> dict[str, Any]:
    """:func:`summarize` for already-extracted outcomes."""
    opts = options or StatsOptions()
    by_key: dict[str, list[EpisodeOutcome]] = {}
    for episode in episodes:
        by_key.setdefault(episode.key, []).append(episode)
    scenarios = {}
    for key in sorted(by_key):
        group = by_key[key]
        scenarios[key] = {
            "collection": group[0].collection,
            "scenario": group[0].scenario,
            **_group(group, opts),
        }
    return {
        "schema": SUMMARY_SCHEMA,
        "reward_definition": REWARD_DEFINITION,
        "stats": {**opts.kwargs(), "interval": f"{opts.method} bootstrap"},
        "overall": _group(list(episodes), opts),
        "scenarios": scenarios,
        "errors": _errors(episodes),
    }


def _group(episodes: Sequence[EpisodeOutcome], opts: StatsOptions) -> dict[str, Any]:
    results = [e for e in episodes if e.ok]
    kwargs = opts.kwargs()
    turns = [e.num_turns for e in results]
    return {
        "episodes": len(results),
        "errored": sum(1 for e in episodes if e.error is not None),
        "unscored": sum(1 for e in episodes if e.error is None and e.reward is None),
        "reward": bootstrap_mean_ci([e.reward for e in results], **kwargs).to_dict(),
        "total_reward": bootstrap_mean_ci([e.total_reward for e in results], **kwargs).to_dict(),
        "dimensions": {
            name: interval.to_dict()
            for name, interval in dimension_means([e.scores for e in results], **kwargs).items()
        },
        "terminal_reasons": dict(
            sorted(Counter(e.terminal_reason or "not_ended" for e in results).items())
        ),
        "turns": {
            "mean": sum(turns) / len(turns) if turns else None,
            "min": min(turns, default=None),
            "max": max(turns, default=None),
            **percentiles(turns, (50,)),
        },
        "latency_s": {
            "turn": percentiles(lat for e in results for lat in e.turn_latencies),
            "episode": percentiles(e.duration_s for e in results),
        },
        "reward_by_turn": _reward_by_turn(results),
    }


def _reward_by_turn(results: Sequence[EpisodeOutcome]) -> list[dict[str, Any]]:
    """Mean reward at each turn number over the episodes that reached it."""
    longest = max((e.num_turns for e in results), default=0)
    rows = []
    for index in range(longest):
        values = [e.turn_rewards[index] for e in results if e.num_turns > index]
        values = [v for v in values if math.isfinite(v)]  # a missing value is not a reward
        mean = sum(values) / len(values) if values else None
        rows.append({"turn": index + 1, "mean": mean, "n": len(values)})
    return rows


def _errors(episodes: Sequence[EpisodeOutcome]) -> dict[str, Any]:
    errored = [e for e in episodes if e.error is not None]
    messages = Counter(_first_line(e.error or "") for e in errored)
    return {
        "count": len(errored),
        "by_scenario": dict(sorted(Counter(e.key for e in errored).items())),
        "messages": dict(messages.most_common()),
        "episode_ids": [e.episode_id for e in errored],
    }


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(empty error)"
    return line[:_MAX_ERROR_TEXT]
