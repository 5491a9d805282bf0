"""``labs-env eval``: evaluate a policy over scenarios and seeds; trajectories, summary, report.

Writes into --out: trajectories.jsonl (one record per finished episode, the recorder's
format), errors.jsonl (episodes cut short by an error of the service, the network or the
policy, or a time limit: kept apart, never averaged, retried on a rerun), summary.json (mean
reward with a 95 % bootstrap interval per scenario and overall, per-dimension means, terminal
reasons, turns, latency percentiles) and report.md. Rerunning with the same --out skips the
episodes already finished; a higher --episodes extends the run. Episode i of every scenario is
played with seed --seed + i, so two policies evaluated with the same --seed are paired episode
by episode.

Examples:
  labs-env eval --policy scripted --collection insurance-claims --episodes 20 --out runs/scripted
  labs-env eval --policy random --collection it-helpdesk --scenario account-lockout \\
      --episodes 50 --concurrency 16 --reward-config phase1 --out runs/random-p1
  labs-env eval --policy openai --base-url http://localhost:8000/v1 --model Qwen/Qwen3-8B \\
      --collection insurance-claims --episodes 10 --out runs/qwen --plots runs/qwen/plots
  labs-env eval --policy mypkg.agents:make_agent --option temperature=0.2 --out runs/mine
  labs-env eval --policy scripted --reward-config '{"quality_weights": {"discovery": 1}}'
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import TYPE_CHECKING, Any, TypeVar

from labs_env.cli._common import (
    add_service_command,
    fmt,
    format_table,
    service_label,
)
from labs_env.cli._policy import PolicyChoice, add_policy_arguments, policy_choice
from labs_env.cli._runs import (
    LiveProgress,
    add_run_arguments,
    most_common_error,
    prepare_run,
    run_with_client,
)
from labs_env.client import AsyncLabsClient
from labs_env.errors import LabsValidationError
from labs_env.evaluation.harness import EvalResult, aevaluate_policy
from labs_env.rollout.policy import Policy, aclose_policy

if TYPE_CHECKING:
    from labs_env.distributed.placement import WorkerPolicy

__all__ = ["register"]

T = TypeVar("T")


def register(subparsers: Any) -> None:
    """Add the ``eval`` subcommand."""
    parser = add_service_command(
        subparsers,
        "eval",
        "evaluate a policy: trajectories, summary with confidence intervals, report",
        __doc__,
    )
    add_policy_arguments(parser)
    add_run_arguments(parser, default_out="runs/eval")
    parser.add_argument(
        "--plots", default=None, metavar="DIR", help="also write PNG charts there (matplotlib)"
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="play on Ray actors (the 'ray' extra): alone, $RAY_ADDRESS or a new "
        "local instance; or 'auto', 'ray://host:10001'. --concurrency is split over them",
    )
    parser.add_argument(
        "--workers", type=int, default=2, metavar="K", help="Ray actors with --ray (2)"
    )
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    scenarios, options = prepare_run(args)
    choice = policy_choice(
        args.policy, base_url=args.base_url, model=args.model, options=args.option, seed=args.seed
    )
    policy = choice.build()
    live = LiveProgress()

    run_policy, ray_options = _on_ray(args, choice, policy)

    async def body(client: AsyncLabsClient) -> EvalResult:
        try:
            return await aevaluate_policy(
                run_policy,
                scenarios,
                **options,
                client=client,
                progress=live,
                policy_name=choice.settings(),
                plots_dir=args.plots,
                **ray_options,
            )
        finally:
            live.close()
            await aclose_policy(policy)

    result = run_with_client(args, body)
    print(
        f"evaluated {choice.label} on {len(scenarios)} scenario(s) x {args.episodes} episodes "
        f"({service_label(args)}): {result.ran} played, {result.skipped} already done, "
        f"{result.errored} errors"
    )
    print(describe_files(result))
    print()
    print(summary_table(result.summary), end="")
    return exit_code(result.summary)


def _on_ray(
    args: argparse.Namespace, choice: PolicyChoice, policy: Policy
) -> tuple[Policy | WorkerPolicy, dict[str, Any]]:
    """With ``--ray``: the policy to run (built on each worker from its spec: an OpenAI
    policy's key comes from the workers' ``OPENAI_API_KEY``) and the backend options."""
    if args.ray is None:
        return policy, {}
    if args.workers < 1:
        raise LabsValidationError("--workers", f"must be >= 1, got {args.workers}")
    if args.policy_timeout is not None or args.episode_timeout is not None:
        raise LabsValidationError(
            "--ray",
            "time limits (--policy-timeout, --episode-timeout) are not supported on Ray",
            "drop --ray, or the time limits",
        )
    try:
        from labs_env.distributed import on_workers
    except ImportError:
        raise LabsValidationError(
            "--ray",
            "Ray is not installed",
            "install the 'ray' extra (pip install '.[ray]' in a checkout)",
        ) from None
    from labs_env.policies import load_policy

    options = {
        "backend": "ray",
        "workers": args.workers,
        "ray_address": args.ray or None,
        "sync_policy": "inline" if choice.spec in ("scripted", "random") else None,
    }
    return on_workers(load_policy, choice.spec, **choice.options), options


def describe_files(result: EvalResult) -> str:
    """Where the run's files are."""
    errors = result.summary["errors"]["count"]
    lines = [
        f"  trajectories: {result.trajectories}",
        f"  summary:      {result.summary_path}",
        f"  report:       {result.report_path}",
    ]
    if errors:
        lines.append(f"  errors:       {result.errors} ({errors} episodes, not in the results)")
    if result.plots:
        lines.append(f"  plots:        {', '.join(str(p) for p in result.plots)}")
    return "\n".join(lines)


def summary_table(summary: dict[str, Any]) -> str:
    """Per-scenario rows and the overall row of a summary."""
    header = ["scenario", "episodes", "errored", "reward [95% CI]", "turns", "ended"]
    groups = [*summary["scenarios"].items(), ("all", summary["overall"])]
    rows = []
    for key, group in groups:
        reward = group["reward"]
        interval = (
            f"{fmt(reward['mean'])} [{fmt(reward['low'])}, {fmt(reward['high'])}]"
            if reward["mean"] is not None
            else "–"
        )
        reasons = Counter(group["terminal_reasons"])
        rows.append(
            [
                key,
                str(group["episodes"]),
                str(group["errored"]),
                interval,
                fmt(group["turns"]["mean"], 1),
                ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "–",
            ]
        )
    text = format_table(header, rows)
    error = most_common_error(summary)
    return text + (f"\n{error}\n" if error else "")


def exit_code(summary: dict[str, Any]) -> int:
    """0 when there is a result; 1 when every episode failed."""
    return 1 if summary["overall"]["episodes"] == 0 and summary["errors"]["count"] else 0
