"""How long the evaluation statistics take: bootstrap intervals and whole summaries.

Synthetic data only (no network). Prints a table; compare rows within one run.

    python benchmarks/bench_stats.py [--resamples 5000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from labs_env.evaluation import StatsOptions, bootstrap_mean_ci, summarize


def _time(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _records(n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    records = []
    for i in range(n):
        rewards = rng.beta(2, 5, size=int(rng.integers(1, 8))).tolist()
        records.append(
            {
                "episode_id": f"e{i}",
                "collection": "bench",
                "scenario": f"s{i % 5}",
                "seed": i,
                "turns": [
                    {
                        "turn": t + 1,
                        "reward": r,
                        "scores": {f"D{d}": r for d in range(6)},
                        "latency_s": 0.01,
                    }
                    for t, r in enumerate(rewards)
                ],
                "total_reward": sum(rewards),
                "final_reward": rewards[-1],
                "terminal_reason": "completed",
            }
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=5000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'what':<44} {'n':>7} {'seconds':>9}")
    for n in (100, 1_000, 10_000):
        data = rng.beta(2, 5, size=n)
        for method in ("percentile", "bca"):
            run = partial(bootstrap_mean_ci, data, n_resamples=args.resamples, method=method)
            label = f"bootstrap_mean_ci {method} B={args.resamples}"
            print(f"{label:<44} {n:>7} {_time(run):>9.4f}")
    for n in (100, 1_000):
        run = partial(summarize, _records(n, rng), StatsOptions(n_resamples=args.resamples))
        label = f"summarize (5 scenarios, 6 dims, B={args.resamples})"
        print(f"{label:<44} {n:>7} {_time(run, repeat=1):>9.4f}")


if __name__ == "__main__":
    main()
