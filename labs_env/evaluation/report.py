"""Markdown reports of an evaluation summary and of a paired comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_compare_markdown", "render_markdown"]


def render_markdown(summary: Mapping[str, Any], *, title: str = "Evaluation report") -> str:
    """A Markdown report of :func:`~labs_env.evaluation.summarize`'s output."""
    overall = summary["overall"]
    confidence = _pct(summary.get("stats", {}).get("confidence", 0.95))
    lines = [
        f"# {title}",
        "",
        f"_{summary.get('reward_definition', '')}. Intervals: {confidence} "
        f"{summary.get('stats', {}).get('interval', 'bootstrap')}._",
        "",
        f"**Overall**: mean reward {_ci(overall['reward'])} over {overall['episodes']} "
        f"episodes; {overall['errored']} errored (not counted).",
        "",
        "## Per scenario",
        "",
    ]
    header = [
        "scenario",
        "episodes",
        "errored",
        f"reward ({confidence} CI)",
        "total reward",
        "turns (mean)",
        "terminal reasons",
    ]
    rows = [_scenario_row(key, g) for key, g in summary["scenarios"].items()]
    rows.append(_scenario_row("**all**", overall))
    lines += _table(header, rows)
    if overall["dimensions"]:
        lines += ["", "## Score dimensions (final turn, all scenarios)", ""]
        lines += _table(
            ["dimension", f"mean ({confidence} CI)", "n"],
            [[name, _ci(d), str(d["n"])] for name, d in overall["dimensions"].items()],
        )
    if overall["reward_by_turn"]:
        lines += ["", "## Mean reward by turn", ""]
        lines += _table(
            ["turn", "mean reward", "episodes"],
            [[str(r["turn"]), _num(r["mean"]), str(r["n"])] for r in overall["reward_by_turn"]],
        )
    latency = overall["latency_s"]
    lines += ["", "## Latency (seconds)", ""]
    lines += _table(
        ["", "p50", "p90", "p99"],
        [
            [name, *(_num(latency[name].get(p)) for p in ("p50", "p90", "p99"))]
            for name in ("turn", "episode")
        ],
    )
    errors = summary.get("errors", {})
    if errors.get("count"):
        lines += ["", f"## Errors ({errors['count']} episodes, excluded from results)", ""]
        lines += _table(
            ["message", "episodes"], [[_cell(m), str(c)] for m, c in errors["messages"].items()]
        )
    return "\n".join(lines) + "\n"


def _scenario_row(key: str, group: Mapping[str, Any]) -> list[str]:
    return [
        key,
        str(group["episodes"]),
        str(group["errored"]),
        _ci(group["reward"]),
        _num(group["total_reward"]["mean"]),
        _num(group["turns"]["mean"], 1),
        _counts(group["terminal_reasons"]),
    ]


def render_compare_markdown(comparison: Mapping[str, Any], *, title: str = "Comparison") -> str:
    """A Markdown report of :func:`~labs_env.evaluation.compare`'s output."""
    a, b = comparison["labels"]["a"], comparison["labels"]["b"]
    overall = comparison["overall"]
    confidence = _pct(comparison.get("stats", {}).get("confidence", 0.95))
    wtl = overall["win_tie_loss"]
    pairing = comparison["pairing"]
    lines = [
        f"# {title}: {a} vs {b}",
        "",
        f"_{comparison.get('reward_definition', '')}. Difference = {a} − {b} on episodes paired "
        f"by scenario and seed; {confidence} paired-bootstrap interval; tie when "
        f"|diff| ≤ {comparison['tie_eps']:g}._",
        "",
        f"**Overall**: {a} − {b} = {_ci(overall['diff'])} over {overall['pairs']} pairs; "
        f"{a} wins {wtl['wins']}, ties {wtl['ties']}, loses {wtl['losses']}.",
        "",
        "Not compared: " + ", ".join(f"{k} {v}" for k, v in pairing.items()) + ".",
        "",
        "## Per scenario",
        "",
    ]
    rows = [
        [
            key,
            str(g["pairs"]),
            _num(g["mean_a"]),
            _num(g["mean_b"]),
            _ci(g["diff"]),
            "{wins}/{ties}/{losses}".format(**g["win_tie_loss"]),
        ]
        for key, g in comparison["scenarios"].items()
    ]
    lines += _table(
        ["scenario", "pairs", f"mean {a}", f"mean {b}", f"diff ({confidence} CI)", "W/T/L"], rows
    )
    if overall["dimensions"]:
        lines += ["", "## Score dimensions (paired difference)", ""]
        lines += _table(
            ["dimension", f"{a} − {b} ({confidence} CI)", "n"],
            [[name, _ci(d), str(d["n"])] for name, d in overall["dimensions"].items()],
        )
    return "\n".join(lines) + "\n"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def _ci(interval: Mapping[str, Any]) -> str:
    if interval.get("mean") is None:
        return "–"
    return f"{_num(interval['mean'])} [{_num(interval['low'])}, {_num(interval['high'])}]"


def _num(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(confidence: float) -> str:
    return f"{confidence * 100:g} %"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "–"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
