"""PNG charts of an evaluation (``labs-env eval --plots DIR``).

Needs matplotlib, the ``plots`` extra: ``pip install 'labs-env[plots]'``. It is imported only
when a chart is drawn, with the non-interactive Agg backend (no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from labs_env.errors import LabsValidationError
from labs_env.evaluation.outcomes import RecordLike, outcomes
from labs_env.evaluation.summary import StatsOptions, summarize_outcomes

__all__ = ["PLOT_FILES", "write_plots"]

#: The files :func:`write_plots` writes, by chart.
PLOT_FILES = {
    "reward_distribution": "reward_distribution.png",
    "dimensions": "dimension_means.png",
    "reward_by_turn": "reward_by_turn.png",
}


def write_plots(
    records: Iterable[RecordLike],
    out_dir: str | os.PathLike[str],
    *,
    options: StatsOptions | None = None,
    dpi: int = 120,
) -> list[Path]:
    """Draw the evaluation charts of ``records`` into ``out_dir``; return the files written.

    Charts: the distribution of episode reward per scenario (box plot with the points),
    per-dimension means with their intervals, and the mean reward by turn per scenario.
    Errored episodes are left out, as in the summary.

    Raises:
        LabsValidationError: matplotlib is not installed.
    """
    plt = _pyplot()
    episodes = outcomes(records)
    summary = summarize_outcomes(episodes, options)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    rewards: dict[str, list[float]] = {}
    for episode in episodes:
        if episode.ok and episode.reward is not None:
            rewards.setdefault(episode.key, []).append(episode.reward)
    charts: tuple[tuple[str, Callable[[Any], None]], ...] = (
        ("reward_distribution", lambda ax: _reward_distribution(ax, rewards)),
        ("dimensions", lambda ax: _dimensions(ax, summary)),
        ("reward_by_turn", lambda ax: _reward_by_turn(ax, summary)),
    )
    dims = len(summary["overall"]["dimensions"])
    heights = {"dimensions": max(3.0, 0.35 * dims + 1.5)}
    written = []
    for name, draw in charts:
        figure, axes = plt.subplots(figsize=(8, heights.get(name, 4.5)))
        try:
            draw(axes)
            figure.tight_layout()
            path = directory / PLOT_FILES[name]
            figure.savefig(path, dpi=dpi, format="png")
            written.append(path)
        finally:
            plt.close(figure)
    return written


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise LabsValidationError(
            "plots",
            "matplotlib is not installed",
            "pip install 'labs-env[plots]' (or pip install matplotlib)",
        ) from None
    matplotlib.use("Agg", force=False)  # before pyplot; no display needed
    import matplotlib.pyplot as plt

    return plt


def _reward_distribution(ax: Any, rewards: Mapping[str, Sequence[float]]) -> None:
    keys = sorted(rewards)
    ax.set_title("Episode reward (final turn) per scenario")
    ax.set_ylabel("reward")
    ax.set_ylim(-0.05, 1.05)
    if not keys:
        _empty(ax)
        return
    ax.boxplot([rewards[k] for k in keys], showmeans=True)
    for position, key in enumerate(keys, start=1):
        values = rewards[key]
        spread = [position + 0.08 * ((i % 5) - 2) / 2 for i in range(len(values))]
        ax.scatter(spread, values, s=8, alpha=0.4, color="tab:blue")
    one_collection = len({k.split("/", 1)[0] for k in keys}) == 1
    labels = [_short(k.split("/", 1)[1] if one_collection else k) for k in keys]
    ax.set_xticks(range(1, len(keys) + 1), labels, rotation=20, ha="right")


def _dimensions(ax: Any, summary: Mapping[str, Any]) -> None:
    dims = {k: v for k, v in summary["overall"]["dimensions"].items() if v["mean"] is not None}
    ax.set_title("Score dimensions: mean with interval (final turn)")
    if not dims:
        _empty(ax)
        return
    names = list(dims)
    means = [dims[n]["mean"] for n in names]
    # A bound is None when unknown (a single value): no error bar on that side.
    low = [m - _or(dims[n]["low"], m) for n, m in zip(names, means, strict=True)]
    high = [_or(dims[n]["high"], m) - m for n, m in zip(names, means, strict=True)]
    ax.barh(range(len(names)), means, xerr=[low, high], capsize=3, color="tab:green", alpha=0.8)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlim(0.0, max(1.0, *(m + h for m, h in zip(means, high, strict=True))))
    ax.invert_yaxis()
    ax.set_xlabel("mean score")


def _reward_by_turn(ax: Any, summary: Mapping[str, Any]) -> None:
    ax.set_title("Mean reward by turn (episodes that reached the turn)")
    ax.set_xlabel("turn")
    ax.set_ylabel("mean reward")
    drawn = False
    groups = summary["scenarios"]
    one_collection = len({g["collection"] for g in groups.values()}) == 1
    for key, group in groups.items():
        rows = group["reward_by_turn"]
        if rows:
            label = group["scenario"] if one_collection else key
            ax.plot(
                [r["turn"] for r in rows],
                [r["mean"] for r in rows],
                marker="o",
                label=_short(label),
            )
            drawn = True
    if not drawn:
        _empty(ax)
        return
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize="small", loc="best")


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _empty(ax: Any) -> None:
    ax.text(0.5, 0.5, "no episodes", ha="center", va="center", transform=ax.transAxes)


def _short(key: str, limit: int = 28) -> str:
    return key if len(key) <= limit else "…" + key[-(limit - 1) :]
