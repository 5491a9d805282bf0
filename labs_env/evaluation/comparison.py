"""``compare_policies``: two policies on the same scenarios and seeds, compared pair by pair.

Each policy is evaluated by :func:`~labs_env.evaluation.harness.aevaluate_policy` into its
own subdirectory (``a/`` and ``b/``, each resumable), then episodes are paired by scenario and
seed (:func:`~labs_env.evaluation.compare`): the mean paired difference with a
paired-bootstrap interval, win/tie/loss counts, per-dimension differences. Optionally the
service's ``/compare`` judges each pair of final transcripts, and its winner counts are
reported next to ours.

Files in ``out_dir``: ``a/`` and ``b/`` (see :mod:`labs_env.evaluation.run_dir`),
``compare.json``, ``compare.md`` and, with ``service_compare``, ``service_compare.jsonl``
(one line per judged pair; failed calls are counted, never judged).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labs_env.checks import check_number
from labs_env.client import AsyncLabsClient
from labs_env.connect import make_async_client
from labs_env.errors import APIError
from labs_env.evaluation.harness import EvalResult, ScenarioRef, aevaluate_policy
from labs_env.evaluation.outcomes import EpisodeOutcome, outcomes
from labs_env.evaluation.pairwise import compare, pair_outcomes
from labs_env.evaluation.progress import EvalProgress
from labs_env.evaluation.report import render_compare_markdown
from labs_env.evaluation.run_dir import RunDir
from labs_env.evaluation.scoring import wire_messages
from labs_env.evaluation.summary import StatsOptions
from labs_env.models import RewardConfig
from labs_env.rollout.event_loop import blocking
from labs_env.rollout.policy import Policy
from labs_env.rollout.strict_json import dumps
from labs_env.rollout.time_limits import TimeLimits
from labs_env.rollout.trajectory import TrajectoryRecord

#: What a run records as its policy (see ``aevaluate_policy``'s ``policy_name``).
PolicyName = str | Mapping[str, Any] | None

__all__ = ["CompareOutcome", "acompare_policies", "compare_policies", "service_compare"]


@dataclass(frozen=True)
class CompareOutcome:
    """What :func:`compare_policies` produced.

    Attributes:
        comparison: the paired statistics (``compare.json``), with a ``service_compare``
            section when the service judged the pairs.
        run_a / run_b: each policy's evaluation.
    """

    out_dir: Path
    comparison: dict[str, Any]
    run_a: EvalResult
    run_b: EvalResult
    json_path: Path
    report_path: Path


async def acompare_policies(
    policy_a: Policy | str,
    policy_b: Policy | str,
    scenarios: Sequence[ScenarioRef],
    *,
    episodes: int = 10,
    seed: int = 0,
    reward_config: RewardConfig | Mapping[str, Any] | None = None,
    concurrency: int = 8,
    out_dir: str | os.PathLike[str] = "runs/compare",
    client: AsyncLabsClient | None = None,
    progress: Callable[[str, EvalProgress], None] | None = None,
    labels: tuple[str, str] = ("A", "B"),
    policy_names: tuple[PolicyName, PolicyName] = (None, None),
    use_service_compare: bool = False,
    tie_eps: float = 1e-3,
    stats: StatsOptions | None = None,
    fsync: bool = True,
    time_limits: TimeLimits | None = None,
) -> CompareOutcome:
    """Evaluate both policies on the same episodes and compare them pair by pair.

    Args:
        policy_a, policy_b: policies or specs (as for :func:`evaluate_policy`).
        scenarios, episodes, seed, reward_config, concurrency, client: as for
            :func:`~labs_env.evaluation.harness.evaluate_policy`; both runs use the same, so
            episode ``i`` of a scenario has the same seed for both.
        progress: called with the label (``labels[0]`` or ``labels[1]``) and the run's progress.
        labels: the policies' names in the report.
        policy_names: what each run records as its policy (see ``evaluate_policy``).
        use_service_compare: also ask the service's ``/compare`` to judge each pair of final
            transcripts (one request per pair, ``concurrency`` at a time).
        tie_eps: a pair is a tie when the rewards differ by at most this.
        stats: interval options for the summaries and the paired statistics.
        fsync: make each record durable before going on (off only for throwaway runs).
        time_limits: per policy call and per episode, for both runs (see ``evaluate_policy``).
    """
    check_number(tie_eps, "tie_eps")
    root = Path(out_dir)
    own_client = client is None
    active = client if client is not None else make_async_client()
    try:
        runs: list[EvalResult] = []
        for side, policy, label, name in zip(
            ("a", "b"), (policy_a, policy_b), labels, policy_names, strict=True
        ):

            def report(state: EvalProgress, label: str = label) -> None:
                if progress is not None:
                    progress(label, state)

            runs.append(
                await aevaluate_policy(
                    policy,
                    scenarios,
                    episodes=episodes,
                    seed=seed,
                    reward_config=reward_config,
                    concurrency=concurrency,
                    out_dir=root / side,
                    client=active,
                    progress=report,
                    policy_name=name,
                    stats=stats,
                    fsync=fsync,
                    time_limits=time_limits,
                )
            )
        records_a, records_b = RunDir(root / "a").records(), RunDir(root / "b").records()
        comparison = compare(records_a, records_b, tie_eps=tie_eps, options=stats, labels=labels)
        if use_service_compare:
            comparison["service_compare"] = await service_compare(
                active,
                records_a,
                records_b,
                out_path=root / "service_compare.jsonl",
                concurrency=concurrency,
                tie_eps=tie_eps,
            )
    finally:
        if own_client:
            await active.aclose()
    json_path, report_path = root / "compare.json", root / "compare.md"
    json_path.write_text(dumps(comparison, "comparison", indent=2) + "\n", encoding="utf-8")
    report_path.write_text(render_comparison(comparison), encoding="utf-8")
    return CompareOutcome(root, comparison, runs[0], runs[1], json_path, report_path)


compare_policies = blocking(
    acompare_policies,
    name="compare_policies",
    release=("policy_a", "policy_b"),
    doc="""Evaluate both policies on the same episodes and compare them pair by pair (blocking).

    The arguments are :func:`acompare_policies`'s; it runs on a private event loop and releases
    what the policies opened on it.
    """,
)


async def service_compare(
    client: AsyncLabsClient,
    records_a: Sequence[TrajectoryRecord],
    records_b: Sequence[TrajectoryRecord],
    *,
    out_path: str | os.PathLike[str] | None = None,
    concurrency: int = 8,
    tie_eps: float = 1e-3,
) -> dict[str, Any]:
    """Ask ``/compare`` to judge each pair of final transcripts; count its winners and ours.

    Pairs are formed as in :func:`~labs_env.evaluation.compare` (same scenario and seed,
    both without error). To cancel a judge's position bias, every other pair is sent with
    B's transcript as ``response_a`` (``swapped`` in the rows; winners are mapped back).
    Pairs already judged in ``out_path`` (by a previous run) are not sent again; failed ones
    are.

    Args:
        client: the async client that sends the ``/compare`` requests.
        records_a, records_b: the two runs' trajectory records.
        out_path: where the judged rows are written (and read back on a rerun).
        concurrency: ``/compare`` requests in flight at once.
        tie_eps: our own tie margin (a pair whose rewards differ by at most this is a tie).

    Returns:
        ``{"pairs", "judged", "failed", "service": {"a", "b", "tie"}, "ours": {"a", "b",
        "tie"}, "agreement", "errors"}``; ``agreement`` is the fraction of judged pairs where
        the service's winner equals ours (``None`` when none was judged).
    """
    by_id_a = {r.episode_id: r for r in records_a}
    by_id_b = {r.episode_id: r for r in records_b}
    pairs, _ = pair_outcomes(outcomes(records_a), outcomes(records_b))
    limit = asyncio.Semaphore(max(1, concurrency))
    cached = _judged_before(out_path)

    async def judge(index: int, pair_a: EpisodeOutcome, pair_b: EpisodeOutcome) -> dict[str, Any]:
        rec_a, rec_b = by_id_a[pair_a.episode_id], by_id_b[pair_b.episode_id]
        previous = cached.get((rec_a.episode_id, rec_b.episode_id))
        if previous is not None:
            return previous
        swapped = index % 2 == 1
        first, second = (rec_b, rec_a) if swapped else (rec_a, rec_b)
        row: dict[str, Any] = {
            "collection": rec_a.collection,
            "scenario": rec_a.scenario,
            "seed": rec_a.seed,
            "episode_a": rec_a.episode_id,
            "episode_b": rec_b.episode_id,
            "reward_a": pair_a.reward,
            "reward_b": pair_b.reward,
            "ours": _winner((pair_a.reward or 0.0) - (pair_b.reward or 0.0), tie_eps),
            "swapped": swapped,
        }
        async with limit:
            try:
                result = await client.compare(
                    rec_a.collection,
                    rec_a.scenario,
                    wire_messages(first.conversation()),
                    wire_messages(second.conversation()),
                )
            except APIError as exc:
                return {**row, "error": f"{type(exc).__name__}: {exc}"}
        winner = result.winner
        if swapped and winner != "tie":
            winner = "a" if winner == "b" else "b"
        judged_a, judged_b = (
            (result.reward_b, result.reward_a) if swapped else (result.reward_a, result.reward_b)
        )
        return {
            **row,
            "service": winner,
            "service_reward_a": judged_a,
            "service_reward_b": judged_b,
            "margin": result.margin,
        }

    rows = await asyncio.gather(*(judge(i, a, b) for i, (a, b) in enumerate(pairs)))
    if out_path is not None:
        path = Path(out_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [dumps(row, f"service_compare[{i}]") + "\n" for i, row in enumerate(rows)]
        path.write_text("".join(lines), encoding="utf-8")
    judged = [row for row in rows if "error" not in row]
    service = Counter(row["service"] for row in judged)
    ours = Counter(row["ours"] for row in judged)
    agree = sum(1 for row in judged if row["service"] == row["ours"])
    errors = Counter(_first_line(row["error"]) for row in rows if "error" in row)
    return {
        "pairs": len(rows),
        "judged": len(judged),
        "failed": len(rows) - len(judged),
        "service": {k: service.get(k, 0) for k in ("a", "b", "tie")},
        "ours": {k: ours.get(k, 0) for k in ("a", "b", "tie")},
        "agreement": agree / len(judged) if judged else None,
        "errors": dict(errors.most_common()),
    }


def render_comparison(comparison: Mapping[str, Any]) -> str:
    """The comparison report, with the service's verdicts when present."""
    text = render_compare_markdown(comparison)
    judged = comparison.get("service_compare")
    if not judged:
        return text
    a, b = comparison["labels"]["a"], comparison["labels"]["b"]
    agreement = judged["agreement"]
    lines = [
        "",
        "## The service's /compare on the same pairs",
        "",
        "| judge | " + f"{a} better | {b} better | tie |",
        "|---|---|---|---|",
        "| ours (episode reward) | {a} | {b} | {tie} |".format(**judged["ours"]),
        "| service /compare | {a} | {b} | {tie} |".format(**judged["service"]),
        "",
        f"{judged['judged']} of {judged['pairs']} pairs judged"
        + (f"; {judged['failed']} failed (not counted)" if judged["failed"] else "")
        + (f"; the judges agree on {agreement:.0%} of them." if agreement is not None else "."),
    ]
    return text + "\n".join(lines) + "\n"


def _judged_before(
    path: str | os.PathLike[str] | None,
) -> dict[tuple[str, str], dict[str, Any]]:
    if path is None or not Path(path).is_file():
        return {}
    judged: dict[tuple[str, str], dict[str, Any]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "service" in row and "error" not in row:
            judged[(str(row.get("episode_a")), str(row.get("episode_b")))] = row
    return judged


def _winner(diff: float, eps: float) -> str:
    return "tie" if abs(diff) <= eps else ("a" if diff > 0 else "b")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "(empty error)"
