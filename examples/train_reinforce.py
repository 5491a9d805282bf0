"""REINFORCE, numpy only: a softmax policy over a fixed phrasebook learns a Labs scenario.

The policy has one logit per (turn, phrase): at turn ``t`` it samples a phrase from
``softmax(theta[t])``. Each iteration plays a batch of episodes on the embedded Labs server
with :func:`labs_env.collect_sync`; the policy returns every phrase with a
:class:`~labs_env.rollout.generation.Generation` whose one "token" is the phrase index and
whose log-probability is the sampling one, so the update reads its actions back from the
trajectory records exactly as an LLM trainer reads token ids. The update is REINFORCE with a
batch baseline and normalised advantages, ``A = (R - mean(R)) / (std(R) + 1e-6)`` on the
episode's final reward ``R``::

    theta[t] += lr * mean over episodes and turns of A * (onehot(phrase) - softmax(theta[t]))

It starts at the uniform policy (the random level) and stops when the batch's mean final
reward reaches ``--target`` times the scripted baseline's (measured first, on the same
scenario) or after ``--seconds``.

    python examples/train_reinforce.py                # ~10 s on 2 cores
    python examples/train_reinforce.py --seconds 5 --target 2   # a fixed time budget
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

from labs_env import ScriptedPolicy, collect_sync, episode_specs
from labs_env.evaluation.stats import bootstrap_mean_ci, paired_bootstrap_diff
from labs_env.rollout.generation import Generation


@dataclass
class Args:
    collection: str = "insurance-claims"
    scenario: str = "delayed-claim-call"
    turns: int = 6  # the policy's turn slots; episodes are ended by the client after this
    batch: int = 32  # episodes per iteration
    lr: float = 2.0
    seconds: float = 60.0  # time budget
    iterations: int = 1000
    target: float = 0.9  # stop when the batch mean >= target * scripted mean
    eval_episodes: int = 32  # for the baselines and the before/after comparison
    seed: int = 0
    json: bool = False  # print the result as JSON on the last line


PHRASES = (
    "Good morning, and thank you for getting in touch. I'm sorry you're dealing with this; I can "
    "imagine how stressful it is. Could you tell me the claim number? Could you tell me when the "
    "damage happened? How is this situation affecting you?",
    "Could you tell me what repairs are needed? Could you tell me what documents you have sent?",
    "Is there anything else I should know?",
    "As a next step, I will follow up on this and we will get back to you within two business "
    "days. Thank you for your patience, and have a good day.",
    "Hello.",
    "Please hold the line.",
    "Our policy does not cover that. Goodbye.",
    "I cannot help you with that.",
    "Could you tell me the claim number?",
    "I'm sorry to hear about this.",
    "Let me summarise what you've told me so far.",
    "That is not my problem.",
)


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(Args):
        kind = type(f.default)
        if kind is bool:
            parser.add_argument(f"--{f.name.replace('_', '-')}", action="store_true")
        else:
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default)
    return Args(**vars(parser.parse_args(argv)))


class PhrasebookPolicy:
    """``softmax(theta[turn])`` over :data:`PHRASES`; ``greedy`` picks the most likely."""

    def __init__(self, turns: int, seed: int) -> None:
        self.theta = np.zeros((turns, len(PHRASES)))
        self.rng = np.random.default_rng(seed)
        self.greedy = False

    def probs(self, turn: int) -> np.ndarray:
        z = self.theta[min(turn, len(self.theta) - 1)]
        e = np.exp(z - z.max())
        return e / e.sum()

    def __call__(self, history, context):
        p = self.probs(context.turn)
        k = int(p.argmax()) if self.greedy else int(self.rng.choice(len(p), p=p))
        return {
            "content": PHRASES[k],
            "generation": Generation(
                completion_ids=[k], logprobs=[float(np.log(p[k]))], finish_reason="stop"
            ),
        }


def play(policy, args: Args, episodes: int, seed: int):
    specs = episode_specs(args.collection, args.scenario, episodes=episodes, seed=seed)
    records = collect_sync(policy, specs, sync_policy="inline", max_turns=args.turns)
    return [r for r in records if r.ok]


def reinforce_step(policy: PhrasebookPolicy, records, lr: float) -> None:
    rewards = np.array([r.final_reward or 0.0 for r in records])
    advantages = (rewards - rewards.mean()) / (rewards.std() + 1e-6)
    grad = np.zeros_like(policy.theta)
    for record, advantage in zip(records, advantages, strict=False):
        for index, turn in enumerate(record.turns):
            k = turn.generation.completion_ids[0]  # the action, read back from the record
            slot = min(index, len(policy.theta) - 1)
            onehot = np.eye(len(PHRASES))[k]
            grad[slot] += advantage * (onehot - policy.probs(slot))
    policy.theta += lr * grad / len(records)


def train(args: Args) -> dict:
    started = time.perf_counter()
    scripted = play(ScriptedPolicy(seed=args.seed), args, args.eval_episodes, 10_000)
    scripted_mean = float(np.mean([r.final_reward for r in scripted]))
    policy = PhrasebookPolicy(args.turns, args.seed)
    eval_seed = 20_000
    before = [r.final_reward for r in play(policy, args, args.eval_episodes, eval_seed)]
    goal = args.target * scripted_mean
    print(
        f"scripted baseline {scripted_mean:.3f}; goal {goal:.3f}; uniform policy "
        f"{np.mean(before):.3f}",
        flush=True,
    )
    curve, reached_at = [], None
    train_start = time.perf_counter()
    for iteration in range(args.iterations):
        records = play(policy, args, args.batch, seed=iteration * args.batch)
        mean = float(np.mean([r.final_reward for r in records]))
        elapsed = time.perf_counter() - train_start
        curve.append({"iteration": iteration, "seconds": round(elapsed, 2), "reward": mean})
        print(f"iter {iteration:3d}  {elapsed:5.1f}s  mean final reward {mean:.3f}", flush=True)
        if mean >= goal:
            reached_at = elapsed
            break
        if elapsed > args.seconds:
            break
        reinforce_step(policy, records, args.lr)
    after = [r.final_reward for r in play(policy, args, args.eval_episodes, eval_seed)]
    policy.greedy = True
    greedy = float(np.mean([r.final_reward for r in play(policy, args, 8, eval_seed)]))
    diff = paired_bootstrap_diff(after, before, seed=args.seed)
    result = {
        "scripted": scripted_mean,
        "goal": goal,
        "before": bootstrap_mean_ci(before, seed=1).__dict__,
        "after": bootstrap_mean_ci(after, seed=2).__dict__,
        "improvement": diff.__dict__,
        "greedy": greedy,
        "reached_goal_s": reached_at,
        "iterations": len(curve),
        "episodes": len(curve) * args.batch,
        "seconds": round(time.perf_counter() - started, 2),
        "curve": curve,
        "args": asdict(args),
    }
    learnt = [PHRASES[int(policy.probs(t).argmax())][:40] for t in range(args.turns)]
    print(
        f"after: {np.mean(after):.3f} (improvement {diff.mean:+.3f}, 95 % interval "
        f"[{diff.low:+.3f}, {diff.high:+.3f}]); greedy {greedy:.3f}"
    )
    print(
        "goal reached after "
        + (f"{reached_at:.1f}s" if reached_at is not None else "-- (not reached)")
    )
    print("learnt phrases per turn:", learnt)
    return result


if __name__ == "__main__":
    arguments = parse_args()
    outcome = train(arguments)
    if arguments.json:
        print(json.dumps(outcome))
