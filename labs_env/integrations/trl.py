"""Labs episodes as TRL ``GRPOTrainer`` rollouts (``rollout_func``), with exact token ids.

Usage (see ``examples/train_trl.py``):

```python
from trl import GRPOConfig, GRPOTrainer
from labs_env.integrations.trl import LabsRollout, labs_dataset, labs_reward

trainer = GRPOTrainer(
    model=model,
    processing_class=tokenizer,
    reward_funcs=[labs_reward],
    train_dataset=labs_dataset("insurance-claims", "delayed-claim-call", episodes=64),
    rollout_func=LabsRollout(max_turns=2, max_new_tokens=48),
    args=GRPOConfig(num_generations=4, ...),
)
```

Each dataset row names one episode (collection, scenario, seed) in its ``prompt``; TRL repeats
every row ``num_generations`` times, so a GRPO group is that many episodes of the same
scenario and seed. For each prompt the rollout plays the whole multi-turn episode on the Labs
service (the embedded local server by default) with a
:class:`~labs_env.policies.TransformersPolicy` sampling from the trainer's model, and returns
what TRL needs:

- ``prompt_ids``: the tokens before the agent's first reply (system prompt, the persona's
  opening message, the generation prompt);
- ``completion_ids``: everything after: every agent reply *and* the persona's replies and the
  template markup between them, all from the policy's own ids (never re-tokenised);
- ``logprobs``: the sampling log-probability of each generated token (0 elsewhere);
- ``env_mask``: 1 on the agent's tokens, 0 on the persona's and the template's — TRL multiplies
  it into the loss mask, so only the policy's tokens are trained;
- ``labs_reward`` (the episode's final reward; ``None`` for an episode that failed, which TRL
  then leaves out of the group baseline), ``labs_episode_id`` and ``labs_turns``: extra keys
  that reach the reward functions as keyword arguments. :func:`labs_reward` returns the first.

Why ``rollout_func`` and not ``environment_factory``: TRL's ``environment_factory`` exposes an
environment's methods as *tools* the model calls, so the persona's answer would have to come
back as a tool result inside one assistant completion. A Labs episode is a conversation: the
persona speaks as the user between the agent's turns, and the Labs tools are the agent's
outputs (decisions, documents), not functions that return data. ``environment_factory`` also
needs a chat template that renders tool calls, which SmolLM2's does not (TRL refuses it).
``rollout_func`` lets the adapter play the real conversation, return the exact ids and
log-probabilities the policy sampled, and mask the persona's tokens with ``env_mask``.

TRL and torch are imported only when a rollout runs (``[train]`` extra).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from labs_env.errors import LabsValidationError
from labs_env.rollout.collection import collect_sync
from labs_env.rollout.specs import EpisodeSpec, episode_specs
from labs_env.training.samples import episode_samples

__all__ = ["LabsRollout", "episode_prompt", "labs_dataset", "labs_reward", "parse_episode_prompt"]

_PROMPT = re.compile(
    r"^labs://(?P<collection>[^/\s]+)/(?P<scenario>[^?\s]+)\?seed=(?P<seed>-?\d+)$"
)


def episode_prompt(collection: str, scenario: str, seed: int) -> list[dict[str, str]]:
    """The dataset ``prompt`` that names one episode (a conversational prompt, as TRL expects).

    Example:
        >>> episode_prompt("insurance-claims", "delayed-claim-call", 3)
        [{'role': 'user', 'content': 'labs://insurance-claims/delayed-claim-call?seed=3'}]
    """
    return [{"role": "user", "content": f"labs://{collection}/{scenario}?seed={seed}"}]


def parse_episode_prompt(prompt: Any) -> tuple[str, str, int]:
    """``(collection, scenario, seed)`` from a prompt made by :func:`episode_prompt`.

    Raises:
        LabsValidationError: the prompt does not name an episode.
    """
    text = prompt
    if isinstance(prompt, Sequence) and not isinstance(prompt, str) and prompt:
        last = prompt[-1]
        text = last.get("content") if isinstance(last, Mapping) else None
    match = _PROMPT.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise LabsValidationError(
            "prompt",
            f"{str(prompt)[:120]!r} does not name a Labs episode",
            "build the dataset with labs_dataset() / episode_prompt()",
        )
    return match["collection"], match["scenario"], int(match["seed"])


def labs_dataset(
    collection: str, scenarios: str | Sequence[str], *, episodes: int, seed: int = 0
) -> Any:
    """A ``datasets.Dataset`` with one row per episode: ``prompt`` (see
    :func:`episode_prompt`), ``collection``, ``scenario`` and ``seed``.

    ``episodes`` per scenario, seeds ``seed, seed + 1, ...``.
    """
    from datasets import Dataset

    rows = [
        {
            "prompt": episode_prompt(spec.collection, spec.scenario, int(spec.seed or 0)),
            "collection": spec.collection,
            "scenario": spec.scenario,
            "seed": int(spec.seed or 0),
        }
        for spec in episode_specs(collection, scenarios, episodes=episodes, seed=seed)
    ]
    return Dataset.from_list(rows)


def labs_reward(
    prompts: Any, completions: Any, labs_reward: Sequence[float | None], **kwargs: Any
) -> list[float | None]:
    """TRL reward function: the episode's final Labs reward (``None``: the episode failed)."""
    return list(labs_reward)


class LabsRollout:
    """A TRL ``rollout_func`` that plays Labs episodes (see the module docstring).

    Args:
        max_turns: agent turns per episode (the client then ends it); ``None``: the scenario's.
        max_new_tokens: tokens per agent reply; ``None``: ``trainer.args.max_completion_length``.
        policy_factory: ``policy_factory(model, tokenizer, trainer) -> policy``; the default
            makes a :class:`~labs_env.policies.TransformersPolicy` on the trainer's model with
            the trainer's temperature, top_p and top_k (so the returned log-probabilities are
            the quantity the trainer recomputes). Any policy whose actions carry token ids
            (e.g. ``OpenAIChatPolicy(token_ids=True)`` on a vLLM server) fits.
        api_key, base_url: the Labs service (default: the embedded local server).
        concurrency: episodes in flight (default: all prompts of the call).
        system_prompt: passed to the default policy (``None`` keeps its default).
    """

    def __init__(
        self,
        *,
        max_turns: int | None = 3,
        max_new_tokens: int | None = None,
        policy_factory: Callable[[Any, Any, Any], Any] | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        concurrency: int | None = None,
        system_prompt: str | None = None,
    ) -> None:
        self.max_turns = max_turns
        self.max_new_tokens = max_new_tokens
        self.policy_factory = policy_factory
        self.api_key = api_key
        self.base_url = base_url
        self.concurrency = concurrency
        self.system_prompt = system_prompt
        #: The trajectory records of the last call (for logging).
        self.last_records: list[Any] = []

    def __call__(self, prompts: Sequence[Any], trainer: Any) -> dict[str, list[Any]]:
        """Play one episode per prompt; return TRL's rollout dict (module docstring)."""
        specs = [self._spec(prompt, index) for index, prompt in enumerate(prompts)]
        from trl.models import unwrap_model_for_generation

        tokenizer = trainer.processing_class
        with unwrap_model_for_generation(
            trainer.model_wrapped,
            trainer.accelerator,
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
        ) as model:
            policy = self._policy(model, tokenizer, trainer)
            try:
                records = collect_sync(
                    policy,
                    specs,
                    api_key=self.api_key,
                    base_url=self.base_url,
                    concurrency=self.concurrency or len(specs),
                    max_turns=self.max_turns,
                )
            finally:
                close = getattr(policy, "close", None)
                if callable(close):
                    close()
        self.last_records = records
        return self._rollout(records, tokenizer)

    # ------------------------------------------------------------------ internals

    def _spec(self, prompt: Any, index: int) -> EpisodeSpec:
        collection, scenario, seed = parse_episode_prompt(prompt)
        # one record per prompt, also for the repeated prompts of a group
        return EpisodeSpec(
            collection,
            scenario,
            seed=seed,
            extra={"rollout_index": index},
            key=f"{collection}/{scenario}/seed={seed}/rollout={index}",
        )

    def _policy(self, model: Any, tokenizer: Any, trainer: Any) -> Any:
        if self.policy_factory is not None:
            return self.policy_factory(model, tokenizer, trainer)
        from labs_env.policies.transformers_policy import (
            DEFAULT_LOCAL_SYSTEM_PROMPT,
            TransformersPolicy,
        )

        args = trainer.args
        return TransformersPolicy(
            model,
            tokenizer,
            temperature=float(args.temperature),
            top_p=float(args.top_p),
            top_k=int(args.top_k or 0),
            max_new_tokens=int(self.max_new_tokens or args.max_completion_length or 64),
            system_prompt=self.system_prompt or DEFAULT_LOCAL_SYSTEM_PROMPT,
        )

    def _rollout(self, records: Sequence[Any], tokenizer: Any) -> dict[str, list[Any]]:
        records = sorted(records, key=lambda r: int(r.extra.get("rollout_index", 0)))
        out: dict[str, list[Any]] = {
            key: []
            for key in (
                "prompt_ids",
                "completion_ids",
                "logprobs",
                "env_mask",
                "labs_reward",
                "labs_episode_id",
                "labs_turns",
            )
        }
        eos = int(tokenizer.eos_token_id)
        for record in records:
            out["labs_episode_id"].append(record.episode_id)
            out["labs_turns"].append(record.num_turns)
            if not record.ok or not record.turns:
                # TRL needs a completion per prompt: one masked end-of-turn token, no reward
                # (a failed episode is never a training signal).
                out["prompt_ids"].append([eos])
                out["completion_ids"].append([eos])
                out["logprobs"].append([0.0])
                out["env_mask"].append([0])
                out["labs_reward"].append(None)
                continue
            (sample,) = episode_samples(record, layout="episode", reward="final")
            start = sample.spans[0][0]
            ids = sample.input_ids.tolist()
            mask = sample.loss_mask[start:]
            logprobs = [
                float(v) if m else 0.0
                for v, m in zip(sample.old_logprobs[start:].tolist(), mask, strict=False)
            ]
            out["prompt_ids"].append(ids[:start])
            out["completion_ids"].append(ids[start:])
            out["logprobs"].append(logprobs)
            out["env_mask"].append([int(m) for m in mask])
            out["labs_reward"].append(float(record.final_reward or 0.0))
        return out
