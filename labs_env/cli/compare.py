"""``labs-env compare``: two policies on the same scenarios and seeds, compared pair by pair.

Both policies play episode i of every scenario with seed --seed + i; episodes are paired by
scenario and seed. Reported: the mean of A - B with a 95 % paired-bootstrap interval,
win/tie/loss counts, per-scenario and per-dimension paired differences. With
--service-compare the service's /compare also judges each pair of final transcripts (one
request per pair; every other pair is sent in swapped order to cancel position bias) and its
winner counts are shown next to ours.

Writes into --out: a/ and b/ (each a resumable `labs-env eval` directory), compare.json,
compare.md and, with --service-compare, service_compare.jsonl.

Examples:
  labs-env compare --policy-a scripted --policy-b random --collection insurance-claims \\
      --episodes 20 --out runs/scripted-vs-random
  labs-env compare --policy-a openai --model-a Qwen/Qwen3-8B --policy-b openai \\
      --model-b Qwen/Qwen3-4B --base-url http://localhost:8000/v1 --episodes 10 \\
      --service-compare --out runs/8b-vs-4b
"""

from __future__ import annotations

import argparse
from typing import Any

from labs_env.cli._common import (
    add_service_command,
    fmt,
    format_table,
    service_label,
)
from labs_env.cli._policy import add_policy_arguments, policy_choice
from labs_env.cli._runs import (
    LiveProgress,
    add_run_arguments,
    most_common_error,
    prepare_run,
    run_with_client,
)
from labs_env.client import AsyncLabsClient
from labs_env.evaluation.comparison import CompareOutcome, acompare_policies
from labs_env.evaluation.progress import EvalProgress
from labs_env.rollout.policy import aclose_policy

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``compare`` subcommand."""
    parser = add_service_command(
        subparsers,
        "compare",
        "compare two policies on the same episodes (paired statistics)",
        __doc__,
    )
    add_policy_arguments(parser, "-a", side="A's ")
    add_policy_arguments(parser, "-b", side="B's ")
    parser.add_argument(
        "--base-url", default=None, metavar="URL", help="OpenAI-compatible server for both sides"
    )
    parser.add_argument("--label-a", default=None, help="A's name in the report")
    parser.add_argument("--label-b", default=None, help="B's name in the report")
    parser.add_argument(
        "--service-compare",
        action="store_true",
        help="also judge each pair of final transcripts with the service's /compare",
    )
    add_run_arguments(parser, default_out="runs/compare")
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    scenarios, options = prepare_run(args)
    choices = [
        policy_choice(
            getattr(args, f"policy_{side}"),
            base_url=getattr(args, f"base_url_{side}") or _shared_url(args, side),
            model=getattr(args, f"model_{side}"),
            options=getattr(args, f"option_{side}"),
            seed=args.seed,
            flag=f"--option-{side}",
        )
        for side in ("a", "b")
    ]
    labels = _labels(args.label_a or choices[0].label, args.label_b or choices[1].label)
    policies = [choice.build() for choice in choices]
    lives = {label: LiveProgress(f"{label}: ") for label in labels}

    def progress(label: str, state: EvalProgress) -> None:
        lives[label](state)
        if state.done == state.total:
            lives[label].close()

    async def body(client: AsyncLabsClient) -> CompareOutcome:
        try:
            return await acompare_policies(
                policies[0],
                policies[1],
                scenarios,
                **options,
                client=client,
                progress=progress,
                labels=labels,
                policy_names=(choices[0].settings(), choices[1].settings()),
                use_service_compare=args.service_compare,
            )
        finally:
            for live in lives.values():
                live.close()
            for policy in policies:
                await aclose_policy(policy)

    outcome = run_with_client(args, body)
    print(
        f"compared {labels[0]} (A) with {labels[1]} (B) on {len(scenarios)} scenario(s) x "
        f"{args.episodes} episodes ({service_label(args)})"
    )
    print(f"  A: {outcome.run_a.out_dir}   B: {outcome.run_b.out_dir}")
    print(f"  comparison: {outcome.json_path}, {outcome.report_path}")
    print()
    print(comparison_table(outcome.comparison), end="")
    for side, run in zip("AB", (outcome.run_a, outcome.run_b), strict=True):
        print(failures_line(side, run.summary), end="")
    return 0 if outcome.comparison["overall"]["pairs"] else 1


def failures_line(side: str, summary: dict[str, Any]) -> str:
    """Why a side's episodes failed (its most common error), or nothing when none did."""
    error = most_common_error(summary)
    count = summary["errors"]["count"]
    return f"{side}: {count} episodes failed; {error}\n" if error else ""


def _shared_url(args: argparse.Namespace, side: str) -> str | None:
    """``--base-url`` applies to the sides that take one (openai or your own policy)."""
    spec = getattr(args, f"policy_{side}")
    return args.base_url if spec == "openai" or ":" in spec else None


def _labels(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a != b else (f"{a} (A)", f"{b} (B)")


def comparison_table(comparison: dict[str, Any]) -> str:
    """Per-scenario and overall paired differences, and the service's verdicts if present."""
    a, b = comparison["labels"]["a"], comparison["labels"]["b"]
    header = ["scenario", "pairs", f"mean {a}", f"mean {b}", "A - B [95% CI]", "W/T/L"]
    groups = [*comparison["scenarios"].items(), ("all", comparison["overall"])]
    rows = [
        [
            key,
            str(group["pairs"]),
            fmt(group["mean_a"]),
            fmt(group["mean_b"]),
            _interval(group["diff"]),
            "{wins}/{ties}/{losses}".format(**group["win_tie_loss"]),
        ]
        for key, group in groups
    ]
    text = format_table(header, rows)
    unpaired = {k: v for k, v in comparison["pairing"].items() if v}
    if unpaired:
        text += "not compared: " + ", ".join(f"{k} {v}" for k, v in unpaired.items()) + "\n"
    judged = comparison.get("service_compare")
    if judged:
        text += "\n" + format_table(
            ["winner by", f"{a} better", f"{b} better", "tie"],
            [
                ["episode reward", *(str(judged["ours"][k]) for k in ("a", "b", "tie"))],
                ["service /compare", *(str(judged["service"][k]) for k in ("a", "b", "tie"))],
            ],
        )
        agreement = judged["agreement"]
        text += f"{judged['judged']}/{judged['pairs']} pairs judged" + (
            f", agreement {agreement:.0%}\n" if agreement is not None else "\n"
        )
    return text


def _interval(interval: dict[str, Any]) -> str:
    if interval["mean"] is None:
        return "–"
    return f"{interval['mean']:+.3f} [{fmt(interval['low'])}, {fmt(interval['high'])}]"
