"""What the charts say: whole scenario labels inside the figure, explained markers, score
dimensions per scenario with their n (never pooled across scenarios whose dimensions differ),
and a labelled "±" in the demo table."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from labs_env.cli.demo import run_demo
from labs_env.rollout.trajectory import TrajectoryRecord, TurnRecord

pytest.importorskip("matplotlib")

from labs_env.evaluation.plots import draw_charts

LONG = "a-scenario-with-a-rather-long-descriptive-name"
SCENARIOS = {
    ("insurance-claims", LONG): {"D5_DecisionAccuracy": 0.5, "rubrics.score": 0.4},
    ("it-helpdesk", "account-lockout"): {"D5_TicketQuality": 0.2, "rubrics.score": 0.6},
}


def _records() -> list[TrajectoryRecord]:
    records = []
    for (collection, scenario), scores in SCENARIOS.items():
        for seed in range(3):
            turns = [
                TurnRecord(turn=t, reward=0.1 * t + 0.05 * seed, scores=scores) for t in (1, 2)
            ]
            records.append(
                TrajectoryRecord(
                    episode_id=f"{scenario}-{seed}",
                    collection=collection,
                    scenario=scenario,
                    seed=seed,
                    turns=turns,
                    final_reward=turns[-1].reward,
                )
            )
    return records


@pytest.fixture
def charts() -> Iterator[dict[str, Any]]:
    import matplotlib.pyplot as plt

    figures = draw_charts(_records())
    for figure in figures.values():
        figure.canvas.draw()
    yield figures
    for figure in figures.values():
        plt.close(figure)


def _inside(figure: Any, text: Any) -> bool:
    box = text.get_window_extent()
    page = figure.bbox
    return bool(box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1)


def test_scenario_labels_are_whole_and_inside_the_figure(charts: dict[str, Any]) -> None:
    figure = charts["reward_distribution"]
    (axes,) = [ax for ax in figure.axes if ax.get_yticklabels() or ax.get_xticklabels()]
    labels = [t for t in (*axes.get_yticklabels(), *axes.get_xticklabels()) if LONG in t.get_text()]
    assert labels, "the long scenario name is not written whole"
    assert all("…" not in t.get_text() for t in labels)
    assert all(_inside(figure, t) for t in labels)


def _legend_texts(figure: Any) -> str:
    legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes)]
    return " ".join(t.get_text() for legend in legends if legend for t in legend.get_texts())


def test_markers_are_explained(charts: dict[str, Any]) -> None:
    explained = _legend_texts(charts["reward_distribution"]).lower()
    for what in ("mean", "median", "episode"):
        assert what in explained
    by_turn = charts["reward_by_turn"]
    caption = by_turn.get_supxlabel().lower()
    assert "reached" in caption and "n=" in _legend_texts(by_turn)


def test_dimensions_are_shown_per_scenario_with_n(charts: dict[str, Any]) -> None:
    figure = charts["dimensions"]
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_title()}
    assert len(panels) == len(SCENARIOS)
    for (collection, scenario), scores in SCENARIOS.items():
        (title,) = [t for t in panels if scenario in t and collection in t]
        shown = {t.get_text() for t in panels[title].get_yticklabels()}
        assert shown == set(scores)  # its own dimensions only, never another scenario's
        notes = " ".join(t.get_text() for t in panels[title].texts)
        assert "n=3" in notes


def test_the_demo_table_says_what_the_spread_is() -> None:
    out = io.StringIO()
    run_demo(episodes=2, out=out, progress=io.StringIO())
    header = next(line for line in out.getvalue().splitlines() if line.startswith("scenario"))
    assert "±" in out.getvalue() and "mean ± std" in header
