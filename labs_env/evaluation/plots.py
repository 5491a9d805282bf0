"""PNG charts of an evaluation (``labs-env eval --plots DIR``).

Needs matplotlib, the ``plots`` extra (``pip install '.[plots]'`` in a checkout). It is imported
only when a chart is drawn, with the non-interactive Agg backend (no display needed).

Every chart says what its marks are (a legend or a caption), writes scenario names whole, and
gives the number of episodes behind each value. Score dimensions are drawn per scenario: their
names are scenario-specific, so a mean across scenarios would mix different measures.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from labs_env.errors import LabsValidationError
from labs_env.evaluation.outcomes import RecordLike, outcomes
from labs_env.evaluation.summary import StatsOptions, summarize_outcomes

__all__ = ["PLOT_FILES", "draw_charts", "plots_directory", "write_plots"]

#: The files :func:`write_plots` writes, by chart.
PLOT_FILES = {
    "reward_distribution": "reward_distribution.png",
    "dimensions": "dimension_means.png",
    "reward_by_turn": "reward_by_turn.png",
}
_WIDTH = 9.0
_CAPTION = {"fontsize": "small", "color": "0.3"}


def write_plots(
    records: Iterable[RecordLike],
    out_dir: str | os.PathLike[str],
    *,
    options: StatsOptions | None = None,
    dpi: int = 120,
) -> list[Path]:
    """Draw the evaluation charts of ``records`` into ``out_dir``; return the files written.

    Charts: the distribution of episode reward per scenario (box plot with the points), each
    scenario's score dimensions (means with their intervals and n), and the mean reward by
    turn per scenario. Errored episodes are left out, as in the summary.

    Raises:
        LabsValidationError: matplotlib is not installed, or ``out_dir`` is not writable.
    """
    plt = _pyplot()
    directory = plots_directory(out_dir)
    figures = draw_charts(records, options=options)
    written = []
    try:
        for name, figure in figures.items():
            path = directory / PLOT_FILES[name]
            figure.savefig(path, dpi=dpi, format="png")
            written.append(path)
    finally:
        for figure in figures.values():
            plt.close(figure)
    return written


def draw_charts(
    records: Iterable[RecordLike], *, options: StatsOptions | None = None
) -> dict[str, Any]:
    """The charts as matplotlib figures by name (see :data:`PLOT_FILES`); close them after."""
    plt = _pyplot()
    episodes = outcomes(records)
    summary = summarize_outcomes(episodes, options)
    rewards: dict[str, list[float]] = {}
    for episode in episodes:
        if episode.ok and episode.reward is not None:
            rewards.setdefault(episode.key, []).append(episode.reward)
    return {
        "reward_distribution": _reward_distribution(plt, rewards),
        "dimensions": _dimensions(plt, summary),
        "reward_by_turn": _reward_by_turn(plt, summary),
    }


def plots_directory(out_dir: str | os.PathLike[str]) -> Path:
    """``out_dir``, created if missing, checked before a run draws into it at its end.

    Raises:
        LabsValidationError: matplotlib is missing, or the directory cannot be created or
            written (names the path).
    """
    _require_matplotlib()
    directory = Path(out_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".labs-env-write-check"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise LabsValidationError(
            "plots_dir",
            f"cannot write to {directory} ({exc.strerror or exc})",
            "choose a directory you can write to",
        ) from None
    return directory


def _missing_matplotlib() -> LabsValidationError:
    return LabsValidationError(
        "plots",
        "matplotlib is not installed",
        "install the 'plots' extra (pip install '.[plots]' in a checkout) or matplotlib",
    )


def _require_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise _missing_matplotlib()


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise _missing_matplotlib() from None
    matplotlib.use("Agg", force=False)  # before pyplot; no display needed
    import matplotlib.pyplot as plt

    return plt


def _reward_distribution(plt: Any, rewards: Mapping[str, Sequence[float]]) -> Any:
    """Horizontal box plots (long scenario names fit on the left), the episodes as points."""
    keys = sorted(rewards)
    figure, ax = plt.subplots(
        figsize=(_WIDTH, max(3.2, 0.55 * len(keys) + 2.0)), layout="constrained"
    )
    ax.set_title("Episode reward (final turn) per scenario")
    ax.set_xlabel("reward")
    ax.set_xlim(-0.05, 1.05)
    if not keys:
        _empty(ax)
        return figure
    ax.boxplot(
        [rewards[k] for k in keys],
        orientation="horizontal",
        showmeans=True,
        medianprops={"color": "tab:orange"},
        meanprops={"marker": "^", "markerfacecolor": "tab:green", "markeredgecolor": "tab:green"},
        flierprops={"marker": "o", "markerfacecolor": "none", "markeredgecolor": "0.3"},
    )
    for position, key in enumerate(keys, start=1):
        values = rewards[key]
        spread = [position + 0.08 * ((i % 5) - 2) / 2 for i in range(len(values))]
        ax.scatter(values, spread, s=10, alpha=0.45, color="tab:blue", zorder=3)
    ax.set_yticks(range(1, len(keys) + 1), [f"{k}  (n={len(rewards[k])})" for k in keys])
    ax.invert_yaxis()
    figure.legend(
        handles=_box_legend(),
        loc="outside lower center",
        ncols=3,
        fontsize="small",
        frameon=False,
    )
    return figure


def _box_legend() -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [
        Line2D([], [], marker="o", linestyle="", color="tab:blue", alpha=0.45, label="episode"),
        Line2D([], [], marker="^", linestyle="", color="tab:green", label="mean"),
        Line2D([], [], color="tab:orange", label="median"),
        Patch(facecolor="none", edgecolor="black", label="box: middle 50% of episodes"),
        Line2D([], [], color="black", label="whiskers: up to 1.5 box lengths out"),
        Line2D(
            [], [], marker="o", linestyle="", markerfacecolor="none", color="0.3", label="outlier"
        ),
    ]


def _dimensions(plt: Any, summary: Mapping[str, Any]) -> Any:
    """One panel per scenario with its own dimensions: mean, interval and n."""
    panels = {
        key: {n: d for n, d in group["dimensions"].items() if d["mean"] is not None}
        for key, group in summary["scenarios"].items()
    }
    panels = {key: dims for key, dims in panels.items() if dims}
    if not panels:
        figure, ax = plt.subplots(figsize=(_WIDTH, 3.0), layout="constrained")
        ax.set_title("Score dimensions (final turn)")
        _empty(ax)
        return figure
    heights = [0.3 * len(dims) + 0.8 for dims in panels.values()]
    figure, axes = plt.subplots(
        len(panels),
        1,
        figsize=(_WIDTH, sum(heights) + 1.2),
        height_ratios=heights,
        layout="constrained",
        squeeze=False,
    )
    confidence = summary.get("stats", {}).get("confidence", 0.95)
    figure.suptitle("Score dimensions of the final turn, per scenario (names differ)")
    for ax, (key, dims) in zip(axes[:, 0], panels.items(), strict=True):
        _dimension_panel(ax, key, dims)
    figure.supxlabel(
        f"bar: mean over the scenario's episodes; line: {confidence:.0%} bootstrap interval;\n"
        "n: episodes that reported the dimension",
        **_CAPTION,
    )
    return figure


def _dimension_panel(ax: Any, key: str, dims: Mapping[str, Mapping[str, Any]]) -> None:
    names = list(dims)
    means = [dims[n]["mean"] for n in names]
    # A bound is None when unknown (a single value): no error bar on that side.
    low = [m - _or(dims[n]["low"], m) for n, m in zip(names, means, strict=True)]
    high = [_or(dims[n]["high"], m) - m for n, m in zip(names, means, strict=True)]
    ax.barh(range(len(names)), means, xerr=[low, high], capsize=3, color="tab:green", alpha=0.8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    right = max(1.0, *(m + h for m, h in zip(means, high, strict=True)))
    ax.set_xlim(0.0, right * 1.18)  # room for the notes
    for row, name in enumerate(names):
        note = f"{means[row]:.2f}  n={dims[name]['n']}"
        ax.text(means[row] + high[row] + 0.02 * right, row, note, va="center", **_CAPTION)
    ax.set_title(key, fontsize="medium")


def _reward_by_turn(plt: Any, summary: Mapping[str, Any]) -> Any:
    figure, ax = plt.subplots(figsize=(_WIDTH, 5.0), layout="constrained")
    ax.set_title("Mean reward by turn per scenario")
    ax.set_xlabel("turn")
    ax.set_ylabel("mean reward")
    drawn = False
    for key, group in summary["scenarios"].items():
        rows = [r for r in group["reward_by_turn"] if r["mean"] is not None]
        if rows:
            ax.plot(
                [r["turn"] for r in rows],
                [r["mean"] for r in rows],
                marker="o",
                label=f"{key}  (n={rows[0]['n']})",
            )
            drawn = True
    if not drawn:
        _empty(ax)
        return figure
    ax.set_ylim(-0.05, 1.05)
    figure.legend(loc="outside right upper", fontsize="small", frameon=False)
    figure.supxlabel(
        "point: mean reward at that turn over the episodes that reached it (fewer at later\n"
        "turns as episodes end); n: episodes of the scenario",
        **_CAPTION,
    )
    return figure


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _empty(ax: Any) -> None:
    ax.text(0.5, 0.5, "no episodes", ha="center", va="center", transform=ax.transAxes)
