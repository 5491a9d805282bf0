"""``labs-env demo``: the scripted baseline plays every bundled scenario on the embedded server.

Offline, in a few seconds: a few episodes per scenario, one transcript with per-turn rewards
and scores, then a table of rewards per scenario. A progress bar runs on stderr meanwhile.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from labs_env.cli._common import format_table
from labs_env.cli._progress import ProgressBar
from labs_env.connect import make_local_client
from labs_env.envs.env import LabsEnv
from labs_env.models import MAX_TURNS
from labs_env.rollout.policy import Policy, call_policy

__all__ = ["ScenarioResult", "register", "run_demo"]


@dataclass
class ScenarioResult:
    """What the baseline did in one scenario."""

    collection: str
    scenario: str
    final_rewards: list[float] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    turns: list[int] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    def row(self) -> list[str]:
        """The table row."""
        finals = self.final_rewards
        spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items()))
        return [
            f"{self.collection}/{self.scenario}",
            str(len(finals)),
            f"{statistics.fmean(finals):.3f} ± {spread:.3f}",
            f"{statistics.fmean(self.returns):.3f}",
            f"{statistics.fmean(self.turns):.1f}",
            reasons,
        ]


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="watch the scripted baseline play every bundled scenario (offline, seconds)",
        description=__doc__,
    )
    parser.add_argument("--episodes", type=int, default=3, help="episodes per scenario (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        print("labs-env demo: --episodes must be >= 1", file=sys.stderr)
        return 2
    run_demo(episodes=args.episodes, seed=args.seed)
    return 0


def run_demo(
    *,
    episodes: int = 3,
    seed: int = 0,
    out: TextIO | None = None,
    progress: TextIO | None = None,
) -> list[ScenarioResult]:
    """Play ``episodes`` episodes of each bundled scenario and print the report.

    Returns:
        One :class:`ScenarioResult` per scenario, in catalog order.
    """
    from labs_env.policies.scripted import ScriptedPolicy

    out = out if out is not None else sys.stdout
    results: list[ScenarioResult] = []
    transcript = ""
    with make_local_client() as client:
        pairs = [(c.slug, s.slug) for c in client.catalog().collections for s in c.scenarios]
        with ProgressBar(len(pairs) * episodes, stream=progress, label="episodes") as bar:
            for index, (collection, scenario) in enumerate(pairs):
                result = ScenarioResult(collection, scenario)
                with LabsEnv(collection, scenario, client=client, render_mode="ansi") as env:
                    env.reset(seed=seed + index)  # seeds the run; later resets continue it
                    for episode in range(episodes):
                        if episode:
                            env.reset()
                        _play(env, ScriptedPolicy(seed=seed + episode), result)
                        if not transcript:
                            transcript = env.render() or ""
                        bar.advance(label=scenario)
                results.append(result)
    out.write("One episode of the scripted baseline (embedded local Labs server):\n\n")
    out.write(transcript + "\n")
    out.write(
        f"Mean reward per scenario over {episodes} episode(s) each "
        "(final = the last turn's reward, the score of the whole conversation; ± is the "
        "standard deviation over the episodes, return = the sum of the turn rewards):\n\n"
    )
    header = [
        "scenario",
        "episodes",
        "final reward (mean ± std)",
        "return (mean)",
        "turns (mean)",
        "ended",
    ]
    out.write(format_table(header, [r.row() for r in results]))
    out.write(
        "\nNext: `python examples/quickstart.py`, or set LABS_API_KEY to play the real service.\n"
    )
    return results


def _play(env: LabsEnv, policy: Policy, result: ScenarioResult) -> None:
    obs = env.episode.observation() if env.episode else ()
    total, reward, turns = 0.0, 0.0, 0
    terminated = truncated = False
    info: dict[str, Any] = {}
    for _ in range(MAX_TURNS):
        if terminated or truncated:
            break
        action = call_policy(policy, obs, env.context)
        obs, step_reward, terminated, truncated, info = env.step(action)
        reward = float(step_reward)
        total += reward
        turns += 1
    result.final_rewards.append(reward)
    result.returns.append(total)
    result.turns.append(turns)
    result.reasons[str(info.get("terminal_reason"))] += 1
