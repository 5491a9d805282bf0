"""What ``labs-env eval`` and ``labs-env compare`` share: the run arguments, the scenario list,
the run's async client and a live progress bar."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict, TypeVar

from labs_env.cli._common import add_service_arguments, open_client, parse_reward_config
from labs_env.cli._progress import ProgressBar
from labs_env.client import AsyncLabsClient
from labs_env.connect import make_async_client, make_local_async_client
from labs_env.errors import LabsValidationError
from labs_env.evaluation.harness import resolve_scenarios
from labs_env.evaluation.progress import EvalProgress
from labs_env.models import RewardConfig
from labs_env.rollout.event_loop import run_sync
from labs_env.rollout.time_limits import TimeLimits

__all__ = [
    "LiveProgress",
    "RunOptions",
    "add_run_arguments",
    "async_client",
    "check_counts",
    "most_common_error",
    "prepare_run",
    "run_with_client",
    "scenario_list",
]

T = TypeVar("T")


class RunOptions(TypedDict):
    """The run arguments ``eval`` and ``compare`` share, as the keyword arguments of
    :func:`~labs_env.aevaluate_policy` and :func:`~labs_env.acompare_policies`."""

    episodes: int
    seed: int
    reward_config: RewardConfig | None
    concurrency: int
    out_dir: str
    time_limits: TimeLimits | None


def prepare_run(args: argparse.Namespace) -> tuple[list[str], RunOptions]:
    """Check the shared run arguments and resolve the scenarios, before anything is played."""
    check_counts(args)
    options = RunOptions(
        episodes=args.episodes,
        seed=args.seed,
        reward_config=parse_reward_config(args.reward_config),
        concurrency=args.concurrency,
        out_dir=args.out,
        time_limits=_time_limits(args),
    )
    return scenario_list(args), options


def add_run_arguments(parser: argparse.ArgumentParser, *, default_out: str) -> None:
    """The arguments ``eval`` and ``compare`` share: what to play, how, where to write."""
    parser.add_argument(
        "--collection", default=None, help="collection slug (default: every collection)"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=None,
        metavar="S",
        help="scenario slug or collection/scenario (repeatable; default or 'all': every one)",
    )
    parser.add_argument("--episodes", type=int, default=10, help="episodes per scenario (10)")
    parser.add_argument("--concurrency", type=int, default=8, help="episodes in flight (8)")
    parser.add_argument(
        "--reward-config",
        default=None,
        metavar="JSON|phase1|phase2|phase3",
        help="sent with every turn: JSON, a JSON file, or a documented curriculum phase "
        "(phase3 = the default scoring, also when omitted)",
    )
    parser.add_argument("--seed", type=int, default=0, help="episode i gets seed SEED + i (0)")
    parser.add_argument(
        "--policy-timeout",
        type=float,
        default=None,
        metavar="S",
        help="end an episode whose policy takes longer than S seconds on a turn (recorded "
        "as an error; default: no limit)",
    )
    parser.add_argument(
        "--episode-timeout",
        type=float,
        default=None,
        metavar="S",
        help="end an episode that runs longer than S seconds (default: no limit)",
    )
    parser.add_argument("--out", default=default_out, help=f"output directory ({default_out})")
    add_service_arguments(parser)


def check_counts(args: argparse.Namespace) -> None:
    """``--episodes`` and ``--concurrency`` must be positive."""
    for name in ("episodes", "concurrency"):
        if getattr(args, name) < 1:
            raise LabsValidationError(f"--{name}", f"must be >= 1, got {getattr(args, name)}")


def scenario_list(args: argparse.Namespace) -> list[str]:
    """The ``collection/scenario`` names to play, checked against the catalog."""
    with open_client(args) as client:
        catalog = client.catalog()
    pairs = resolve_scenarios(catalog, args.collection, args.scenario)
    return [f"{collection}/{scenario}" for collection, scenario in pairs]


def async_client(args: argparse.Namespace) -> AsyncLabsClient:
    """The async client of the run (local with ``--local`` or without a key)."""
    kwargs = {"max_connections": args.concurrency}
    if getattr(args, "local", False):
        return make_local_async_client(**kwargs)
    return make_async_client(**kwargs)


def most_common_error(summary: dict[str, Any]) -> str | None:
    """``"most common error (3x): <its first line>"`` of a run summary (``None``: no error)."""
    messages = summary["errors"]["messages"]
    if not messages:
        return None
    top, count = next(iter(messages.items()))
    return f"most common error ({count}x): {top}"


class LiveProgress:
    """A stderr progress bar fed by :class:`EvalProgress` (created at the first update)."""

    def __init__(self, title: str = "") -> None:
        self.title = title
        self.bar: ProgressBar | None = None
        self._started = False

    def __call__(self, state: EvalProgress) -> None:
        if not self._started:
            self._started = True
            if state.skipped:
                print(
                    f"{self.title}resuming: {state.skipped} episodes already done, "
                    f"{state.total} to play",
                    file=sys.stderr,
                )
            if state.total:
                self.bar = ProgressBar(state.total, label=self.title + state.label())
                self.bar.done = state.done
        elif self.bar is not None:
            self.bar.advance(state.done - self.bar.done, label=self.title + state.label())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_with_client(args: argparse.Namespace, body: Callable[[AsyncLabsClient], Awaitable[T]]) -> T:
    """Run ``body(client)`` on a fresh event loop with the run's async client, then close it.

    Ctrl-C cancels the run: the episodes in flight are terminated, the finished ones are
    already on disk, and the summary and report cover them.
    """

    async def main() -> T:
        client = async_client(args)
        try:
            return await body(client)
        finally:
            await client.aclose()

    return run_sync(main())


def _time_limits(args: argparse.Namespace) -> TimeLimits | None:
    """``--policy-timeout`` / ``--episode-timeout`` (checked: positive finite seconds)."""
    if args.policy_timeout is None and args.episode_timeout is None:
        return None
    try:
        return TimeLimits(policy_timeout=args.policy_timeout, episode_timeout=args.episode_timeout)
    except LabsValidationError as exc:
        flag = "--" + exc.field.replace("_", "-")
        raise LabsValidationError(flag, exc.problem, f"pass e.g. {flag} 30 (seconds)") from None
