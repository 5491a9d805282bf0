"""Evaluation: statistics, summaries, paired comparisons, reports and plots.

The reward of an episode is the reward of its final turn (the service scores the whole
conversation at every turn); see :mod:`labs_env.evaluation.outcomes`.
"""

from labs_env.evaluation.comparison import (
    CompareOutcome,
    acompare_policies,
    compare_policies,
    service_compare,
)
from labs_env.evaluation.early_stop import RunStoppedError
from labs_env.evaluation.harness import (
    EvalResult,
    aevaluate_policy,
    evaluate_policy,
    resolve_scenarios,
)
from labs_env.evaluation.outcomes import EpisodeOutcome, as_record, outcome, outcomes
from labs_env.evaluation.pairwise import compare, pair_outcomes
from labs_env.evaluation.progress import EvalProgress
from labs_env.evaluation.report import render_compare_markdown, render_markdown
from labs_env.evaluation.run_lock import RunLockedError
from labs_env.evaluation.stats import (
    Interval,
    WinTieLoss,
    bootstrap_mean_ci,
    dimension_means,
    paired_bootstrap_diff,
    percentiles,
    win_tie_loss,
)
from labs_env.evaluation.summary import REWARD_DEFINITION, StatsOptions, summarize

__all__ = [
    "REWARD_DEFINITION",
    "CompareOutcome",
    "EpisodeOutcome",
    "EvalProgress",
    "EvalResult",
    "Interval",
    "RunLockedError",
    "RunStoppedError",
    "StatsOptions",
    "WinTieLoss",
    "acompare_policies",
    "aevaluate_policy",
    "as_record",
    "bootstrap_mean_ci",
    "compare",
    "compare_policies",
    "dimension_means",
    "evaluate_policy",
    "outcome",
    "outcomes",
    "pair_outcomes",
    "paired_bootstrap_diff",
    "percentiles",
    "render_compare_markdown",
    "render_markdown",
    "resolve_scenarios",
    "service_compare",
    "summarize",
    "win_tie_loss",
]
