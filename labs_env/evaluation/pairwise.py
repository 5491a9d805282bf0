"""Paired comparison of two policies run on the same scenarios and seeds.

Episodes are paired by ``(collection, scenario, seed)``; when a key occurs several times on a
side, the k-th episode of A is paired with the k-th of B. Episodes without a seed, without a
partner, or with an error on either side are counted but not compared. The difference is
A minus B: positive means A scored higher.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from labs_env.evaluation.outcomes import EpisodeOutcome, RecordLike, outcomes
from labs_env.evaluation.stats import paired_bootstrap_diff, win_tie_loss
from labs_env.evaluation.summary import REWARD_DEFINITION, StatsOptions

__all__ = ["COMPARE_SCHEMA", "compare", "pair_outcomes"]

COMPARE_SCHEMA = "labs_env.evaluation.compare/1"

Pair = tuple[EpisodeOutcome, EpisodeOutcome]


def pair_outcomes(
    a: Sequence[EpisodeOutcome], b: Sequence[EpisodeOutcome]
) -> tuple[list[Pair], dict[str, int]]:
    """The comparable pairs, and counts of what could not be paired.

    The counts: ``unseeded`` (episodes without a seed), ``unmatched_a`` / ``unmatched_b``
    (no partner on the other side) and ``errored_pairs`` (a partner exists but one side has
    no usable result).
    """
    counts = {"unseeded": 0, "unmatched_a": 0, "unmatched_b": 0, "errored_pairs": 0}
    slots_b: dict[tuple[str, str, int], list[EpisodeOutcome]] = {}
    for episode in b:
        if episode.seed is None:
            counts["unseeded"] += 1
        else:
            slots_b.setdefault((episode.collection, episode.scenario, episode.seed), []).append(
                episode
            )
    pairs: list[Pair] = []
    for episode in a:
        if episode.seed is None:
            counts["unseeded"] += 1
            continue
        queue = slots_b.get((episode.collection, episode.scenario, episode.seed))
        if not queue:
            counts["unmatched_a"] += 1
            continue
        partner = queue.pop(0)
        if episode.ok and partner.ok:
            pairs.append((episode, partner))
        else:
            counts["errored_pairs"] += 1
    counts["unmatched_b"] = sum(len(queue) for queue in slots_b.values())
    return pairs, counts


def compare(
    records_a: Iterable[RecordLike],
    records_b: Iterable[RecordLike],
    *,
    tie_eps: float = 1e-3,
    options: StatsOptions | None = None,
    labels: tuple[str, str] = ("A", "B"),
) -> dict[str, Any]:
    """The paired comparison (a JSON-ready dict) of two runs' trajectory records.

    Keys: ``schema``, ``labels``, ``reward_definition``, ``tie_eps``, ``pairing`` (the counts
    of :func:`pair_outcomes`), ``overall`` and ``scenarios``: each with ``pairs``,
    ``mean_a``, ``mean_b``, ``diff`` (mean of A − B with a paired-bootstrap interval),
    ``win_tie_loss`` (from A's side) and ``dimensions`` (per-dimension paired differences).
    """
    opts = options or StatsOptions()
    pairs, counts = pair_outcomes(outcomes(records_a), outcomes(records_b))
    by_key: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_key.setdefault(pair[0].key, []).append(pair)
    return {
        "schema": COMPARE_SCHEMA,
        "labels": {"a": labels[0], "b": labels[1]},
        "reward_definition": REWARD_DEFINITION,
        "tie_eps": tie_eps,
        "stats": {**opts.kwargs(), "interval": f"paired {opts.method} bootstrap"},
        "pairing": counts,
        "overall": _paired_group(pairs, tie_eps, opts),
        "scenarios": {key: _paired_group(by_key[key], tie_eps, opts) for key in sorted(by_key)},
    }


def _paired_group(pairs: Sequence[Pair], tie_eps: float, opts: StatsOptions) -> dict[str, Any]:
    a = [pa.reward for pa, _ in pairs]
    b = [pb.reward for _, pb in pairs]
    dims = sorted({name for pa, pb in pairs for name in (*pa.scores, *pb.scores)})
    return {
        "pairs": len(pairs),
        "mean_a": _mean(a),
        "mean_b": _mean(b),
        "diff": paired_bootstrap_diff(a, b, **opts.kwargs()).to_dict(),
        "win_tie_loss": win_tie_loss(a, b, eps=tie_eps).to_dict(),
        "dimensions": {
            name: paired_bootstrap_diff(
                [pa.scores.get(name) for pa, _ in pairs],
                [pb.scores.get(name) for _, pb in pairs],
                **opts.kwargs(),
            ).to_dict()
            for name in dims
        },
    }


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
