"""The [train] stack for real (``pytest -m train``): TransformersPolicy on SmolLM2-135M-Instruct
generating on the embedded server (batched, exact ids and log-probabilities), the sample
builder and the drift check on real token ids, the collate helper, the TRL adapter, and clear
errors before any work. The one-step GRPO and TRL example runs are in tests/test_examples.py."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labs_env import LabsValidationError
from labs_env.policies.transformers_policy import (
    TransformersPolicy,
    load_causal_lm,
    smollm2_gguf_path,
)
from labs_env.rollout.collection import collect_groups, episode_specs
from labs_env.rollout.trajectory import TrajectoryRecord
from labs_env.training import episode_samples, find_drift, grpo_samples

pytestmark = [pytest.mark.train, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def smollm() -> Iterator[tuple[Any, Any]]:
    torch = pytest.importorskip("torch")  # not at import: the light suite collects this file
    pytest.importorskip("transformers")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(2)
    model, tokenizer = load_causal_lm(smollm2_gguf_path())
    yield model, tokenizer


@pytest.fixture(scope="module")
def groups(smollm: tuple[Any, Any]) -> list[list[TrajectoryRecord]]:
    model, tokenizer = smollm
    policy = TransformersPolicy(model, tokenizer, max_new_tokens=24, seed=0)

    async def main() -> list[list[TrajectoryRecord]]:
        specs = episode_specs("insurance-claims", "delayed-claim-call", episodes=1)
        return [group async for group in collect_groups(policy, specs, group_size=4, max_turns=2)]

    out = asyncio.run(main())
    assert policy.batch_sizes == [4, 4]  # the 4 episodes' turns were generated together
    policy.close()
    return out


def test_the_policy_plays_episodes_with_exact_ids_and_logprobs(
    smollm: tuple[Any, Any], groups: list[list[TrajectoryRecord]]
) -> None:
    import torch

    model, tokenizer = smollm
    (group,) = groups
    assert len(group) == 4 and all(r.ok and r.num_turns == 2 for r in group)
    for record in group:
        for turn in record.turns:
            gen = turn.generation
            assert gen is not None and gen.prompt_ids and gen.completion_ids and gen.logprobs
            assert gen.finish_reason in ("stop", "length") and gen.model
            text = tokenizer.decode(gen.completion_ids, skip_special_tokens=True)
            assert text == turn.messages[0]["content"] == gen.text
            assert gen.cut_by_length == (gen.completion_ids[-1] != tokenizer.eos_token_id)
    # the sampling log-probabilities are what a forward pass gives (temperature 1)
    gen = group[0].turns[1].generation
    assert gen is not None and gen.prompt_ids and gen.completion_ids and gen.logprobs
    ids = torch.tensor([gen.prompt_ids + gen.completion_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(gen.prompt_ids) - 1 : -1].float()
    again = torch.log_softmax(logits, -1).gather(-1, torch.tensor(gen.completion_ids)[:, None])
    assert torch.allclose(again[:, 0], torch.tensor(gen.logprobs), atol=1e-3)


def test_samples_on_real_ids_and_no_drift_or_its_exact_place(
    smollm: tuple[Any, Any], groups: list[list[TrajectoryRecord]]
) -> None:
    _, tokenizer = smollm
    samples = grpo_samples(groups, tokenizer=tokenizer)
    assert len(samples) == 4
    for sample, record in zip(samples, groups[0], strict=False):
        ids = sample.input_ids.tolist()
        text = tokenizer.decode(ids)
        assert record.turns[0].messages[0]["content"] in text
        assert record.turns[0].messages[1]["content"] in text  # the persona's reply, mask 0
        # re-tokenising gives back every generated span, or find_drift says exactly where
        drift = find_drift(sample, tokenizer)
        again = tokenizer.encode(text, add_special_tokens=False)
        if drift is None:
            for start, end in sample.spans:
                assert again[start:end] == ids[start:end]
        else:
            assert drift.turn in sample.span_turns
            assert ids[drift.position : drift.position + 5] == drift.generated
            assert again[: drift.position] == ids[: drift.position] or drift.position in {
                s for s, _ in sample.spans
            }
        turn_samples = episode_samples(record, layout="turn")
        assert [len(s) for s in turn_samples][-1] == len(sample)


def test_collate_pads_for_the_update(
    smollm: tuple[Any, Any], groups: list[list[TrajectoryRecord]]
) -> None:
    import torch

    from labs_env.training import collate

    model, tokenizer = smollm
    samples = grpo_samples(groups)
    batch = collate(samples, pad_id=tokenizer.pad_token_id)
    width = max(len(s) for s in samples)
    assert batch["input_ids"].shape == (4, width) and batch["loss_mask"].dtype == torch.float32
    assert int(batch["loss_mask"].sum()) == sum(s.num_policy_tokens for s in samples)
    with torch.no_grad():
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits.float()
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    mask = batch["loss_mask"][:, 1:].bool()
    gap = (logp - batch["old_logprobs"][:, 1:]).abs()[mask]
    assert gap.max() < 1e-3  # padding on the right changes nothing


def test_the_trl_adapter_returns_what_grpo_trainer_needs(smollm: tuple[Any, Any]) -> None:
    pytest.importorskip("trl")
    from types import SimpleNamespace

    from labs_env.integrations.trl import LabsRollout, episode_prompt, labs_reward

    model, tokenizer = smollm
    accelerate = pytest.importorskip("accelerate")
    trainer = SimpleNamespace(
        model_wrapped=model,
        accelerator=accelerate.Accelerator(cpu=True),
        processing_class=tokenizer,
        args=SimpleNamespace(
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            max_completion_length=16,
            gradient_checkpointing_kwargs=None,
        ),
    )
    prompt = episode_prompt("insurance-claims", "delayed-claim-call", 7)
    rollout = LabsRollout(max_turns=2)
    out = rollout([prompt, prompt], trainer)
    assert len(out["prompt_ids"]) == len(out["completion_ids"]) == 2
    for prompt_ids, completion, logprobs, mask in zip(
        out["prompt_ids"], out["completion_ids"], out["logprobs"], out["env_mask"], strict=False
    ):
        assert len(completion) == len(logprobs) == len(mask)
        assert mask[0] == 1 and 0 in mask  # agent tokens, then the persona's reply (masked)
        assert all(lp == 0.0 for lp, m in zip(logprobs, mask, strict=False) if not m)
        assert all(lp <= 0.0 for lp in logprobs)
        assert tokenizer.decode(prompt_ids).rstrip().endswith("assistant")
    rewards = labs_reward(None, None, **{k: v for k, v in out.items() if k.startswith("labs_")})
    assert rewards == [r.final_reward for r in rollout.last_records]


def test_clear_errors_before_any_work(smollm: tuple[Any, Any], tmp_path: Path) -> None:
    model, tokenizer = smollm
    with pytest.raises(LabsValidationError, match="does not exist"):
        load_causal_lm(tmp_path / "missing.gguf")
    with pytest.raises(LabsValidationError, match="does not exist"):
        load_causal_lm("./no/such/model")
    with pytest.raises(LabsValidationError, match="could not be loaded"):
        load_causal_lm("nobody/no-such-model-xyz")
    template = tokenizer.chat_template
    try:
        tokenizer.chat_template = None
        with pytest.raises(LabsValidationError, match="no chat template"):
            TransformersPolicy(model, tokenizer)
    finally:
        tokenizer.chat_template = template
    with pytest.raises(LabsValidationError, match="top_p"):
        TransformersPolicy(model, tokenizer, top_p=0)
