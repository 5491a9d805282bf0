"""Evaluation statistics, summaries, paired comparisons and Markdown reports."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from labs_env.errors import LabsValidationError
from labs_env.evaluation import (
    StatsOptions,
    bootstrap_mean_ci,
    compare,
    dimension_means,
    paired_bootstrap_diff,
    percentiles,
    render_compare_markdown,
    render_markdown,
    summarize,
    win_tie_loss,
)
from labs_env.rollout.trajectory import TrajectoryRecord, TurnRecord

TRUE_MEAN = 2 / 7  # Beta(2, 5): skewed and bounded like many reward distributions


@pytest.mark.parametrize("method", ["bca", "percentile"])
def test_interval_coverage_is_close_to_nominal(method: str) -> None:
    rng = np.random.default_rng(2024)
    covered = 0
    trials = 200
    for trial in range(trials):
        data = rng.beta(2, 5, size=30)
        ci = bootstrap_mean_ci(data, n_resamples=1000, seed=trial, method=method)  # type: ignore[arg-type]
        covered += ci.contains(TRUE_MEAN)
    assert 0.88 <= covered / trials <= 0.99


def test_interval_on_known_data_is_seeded_and_shrinks_with_n() -> None:
    data = np.random.default_rng(7).beta(2, 5, size=100)
    ci = bootstrap_mean_ci(data, seed=1)
    assert ci.contains(TRUE_MEAN) and ci.n == 100
    assert ci.mean == pytest.approx(float(data.mean()))
    assert bootstrap_mean_ci(data, seed=1) == ci
    assert bootstrap_mean_ci(data, seed=2) != ci
    small = bootstrap_mean_ci(data[:25], seed=1)
    assert (small.high - small.low) > 1.5 * (ci.high - ci.low)


def test_missing_values_are_ignored_and_degenerate_cases_collapse() -> None:
    ci = bootstrap_mean_ci([1.0, math.nan, None, 0.0, float("inf"), 1.0])
    assert ci.n == 3 and ci.mean == pytest.approx(2 / 3)
    empty = bootstrap_mean_ci([None, math.nan])
    assert empty.n == 0 and math.isnan(empty.mean)
    assert empty.to_dict() == {"mean": None, "low": None, "high": None, "n": 0, "confidence": 0.95}
    one = bootstrap_mean_ci([0.7])
    assert one.mean == 0.7 and one.to_dict()["low"] is None and one.to_dict()["high"] is None
    same = bootstrap_mean_ci([0.4] * 10)
    assert (same.low, same.mean, same.high) == pytest.approx((0.4, 0.4, 0.4))
    with pytest.raises(LabsValidationError, match="confidence"):
        bootstrap_mean_ci([1.0, 2.0], confidence=95)


def test_paired_bootstrap_sign_and_power() -> None:
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 1, size=60)  # large between-episode spread
    a = base + 0.05 + rng.normal(0, 0.01, size=60)  # small but consistent gain
    diff = paired_bootstrap_diff(a, base, seed=0)
    assert diff.low > 0 and diff.mean == pytest.approx(float(np.mean(a - base)))
    reverse = paired_bootstrap_diff(base, a, seed=0)
    assert reverse.high < 0
    # Unpaired, the same gain is lost in the spread: the pairing is what gives the power.
    unpaired_a, unpaired_b = bootstrap_mean_ci(a), bootstrap_mean_ci(base)
    assert unpaired_a.low < unpaired_b.high


def test_paired_inputs_drop_missing_pairs_and_need_equal_length() -> None:
    diff = paired_bootstrap_diff([0.5, None, 0.9, 0.7], [0.4, 0.3, math.nan, 0.5])
    assert diff.n == 2 and diff.mean == pytest.approx(0.15)
    with pytest.raises(LabsValidationError, match="equal lengths"):
        paired_bootstrap_diff([0.1, 0.2], [0.1])


def test_win_tie_loss_and_percentiles() -> None:
    wtl = win_tie_loss([0.9, 0.5, 0.1, 0.5004, None], [0.5, 0.5, 0.3, 0.5, 0.2], eps=1e-3)
    assert (wtl.wins, wtl.ties, wtl.losses, wtl.n) == (1, 2, 1, 4)
    assert win_tie_loss([0.51], [0.5], eps=0.05).ties == 1
    assert percentiles(range(1, 101)) == pytest.approx({"p50": 50.5, "p90": 90.1, "p99": 99.01})
    assert percentiles([]) == {"p50": None, "p90": None, "p99": None}


def test_dimension_means_ignore_missing_dimensions() -> None:
    dims = dimension_means([{"a": 0.2, "b": 1.0}, {"a": 0.4}, None, {"a": "n/a", "b": 0.0}])
    assert list(dims) == ["a", "b"]
    assert dims["a"].n == 2 and dims["a"].mean == pytest.approx(0.3)
    assert dims["b"].n == 2 and dims["b"].mean == pytest.approx(0.5)


# --------------------------------------------------------------------------- summaries


def _record(
    episode_id: str, scenario: str, rewards: list[float], *, seed: int | None = None, **fields: Any
) -> TrajectoryRecord:
    turns = [
        TurnRecord(
            turn=i + 1, reward=r, scores={"dim_a": r, "dim_b": 1 - r}, latency_s=0.01 * (i + 1)
        )
        for i, r in enumerate(rewards)
    ]
    return TrajectoryRecord(
        episode_id=episode_id,
        collection="support",
        scenario=scenario,
        seed=seed,
        turns=turns,
        total_reward=sum(rewards),
        final_reward=rewards[-1] if rewards else None,
        terminal_reason="completed" if rewards else None,
        duration_s=0.1,
        **fields,
    )


def test_summary_uses_final_turn_reward_and_keeps_errors_apart() -> None:
    records = [
        _record("e1", "refund", [0.1, 0.6], seed=1),
        _record("e2", "refund", [0.2, 0.8], seed=2),
        _record("e3", "billing", [0.5], seed=1),
        _record("e4", "billing", [0.9, 0.9], seed=2, error="APIConnectionError: reset"),
        _record("e5", "billing", [], seed=3),
    ]
    summary = summarize(records, StatsOptions(n_resamples=500))
    json.dumps(summary, allow_nan=False)  # JSON-ready: no NaN anywhere
    overall = summary["overall"]
    assert overall["episodes"] == 3 and overall["errored"] == 1 and overall["unscored"] == 1
    assert overall["reward"]["mean"] == pytest.approx((0.6 + 0.8 + 0.5) / 3)
    assert overall["total_reward"]["mean"] == pytest.approx((0.7 + 1.0 + 0.5) / 3)
    assert overall["reward_by_turn"] == [
        {"turn": 1, "mean": pytest.approx(0.8 / 3), "n": 3},
        {"turn": 2, "mean": pytest.approx(0.7), "n": 2},
    ]
    assert overall["dimensions"]["dim_b"]["mean"] == pytest.approx(1 - 1.9 / 3)
    assert overall["terminal_reasons"] == {"completed": 3}
    assert overall["turns"]["max"] == 2 and overall["latency_s"]["turn"]["p50"] == pytest.approx(
        0.01
    )
    billing = summary["scenarios"]["support/billing"]
    assert billing["episodes"] == 1 and billing["errored"] == 1
    assert billing["reward"]["mean"] == 0.5  # the errored episode's 0.9 is not a result
    assert summary["errors"] == {
        "count": 1,
        "by_scenario": {"support/billing": 1},
        "messages": {"APIConnectionError: reset": 1},
        "episode_ids": ["e4"],
    }
    markdown = render_markdown(summary)
    assert "| support/refund | 2 | 0 | 0.700 [" in markdown
    assert "## Errors (1 episodes, excluded from results)" in markdown


def test_summary_accepts_plain_dicts_and_rejects_garbage() -> None:
    as_dict = _record("e1", "refund", [0.3, 0.4]).model_dump(mode="json")
    assert summarize([as_dict])["overall"]["reward"]["mean"] == pytest.approx(0.4)
    with pytest.raises(LabsValidationError, match="not a trajectory record"):
        summarize([{"episode_id": "x"}])


def test_compare_pairs_by_scenario_and_seed() -> None:
    a = [
        _record("a1", "refund", [0.8], seed=1),
        _record("a2", "refund", [0.7], seed=2),
        _record("a3", "billing", [0.5], seed=1),
        _record("a4", "billing", [0.5], seed=9),  # no partner
        _record("a5", "billing", [0.5]),  # unseeded
    ]
    b = [
        _record("b2", "refund", [0.4], seed=2),
        _record("b1", "refund", [0.5], seed=1),
        _record("b3", "billing", [0.5], seed=1),
        _record("b4", "billing", [0.9], seed=5, error="boom"),
    ]
    result = compare(a, b, options=StatsOptions(n_resamples=500), labels=("new", "old"))
    json.dumps(result, allow_nan=False)
    assert result["pairing"] == {
        "unseeded": 1,
        "unmatched_a": 1,
        "unmatched_b": 1,
        "errored_pairs": 0,
    }
    overall = result["overall"]
    assert overall["pairs"] == 3
    assert overall["diff"]["mean"] == pytest.approx((0.3 + 0.3 + 0.0) / 3)
    assert overall["win_tie_loss"] == {"wins": 2, "ties": 1, "losses": 0, "n": 3}
    assert overall["dimensions"]["dim_a"]["mean"] == pytest.approx(0.2)
    assert result["scenarios"]["support/refund"]["diff"]["mean"] == pytest.approx(0.3)
    markdown = render_compare_markdown(result)
    assert "new − old = 0.200" in markdown and "new wins 2, ties 1, loses 0" in markdown
