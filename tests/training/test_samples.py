"""Trainer-ready samples from collected episodes (numpy core, a fake tokenizer, no torch):
sequences from the policy's own ids, loss masks, old logprobs, rewards, GRPO advantages, the
re-tokenisation drift check, and the errors raised before any work."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from labs_env import LabsValidationError, TrajectoryRecord
from labs_env.policies.chat_tokens import ChatTokens
from labs_env.rollout.collection import collect_groups, collect_sync, episode_specs
from labs_env.rollout.event_loop import run_sync
from labs_env.training import (
    SequenceMismatchError,
    TokenTextMismatchError,
    episode_samples,
    find_drift,
    group_advantages,
    grpo_samples,
)
from tests.kit.scenarios import COLLECTION, TALK
from tests.kit.transports import async_client
from tests.training.fake_tokens import FakeTokenizer, FakeTokenPolicy

REPLIES = [
    "Could you tell me the claim number?",
    "Thank you.\n\nWhen did the damage happen?",
    "I will follow up within two days, hello again.",
]


def canonical(tok: FakeTokenizer, text: str) -> list[str]:
    """``text`` as the pieces the tokenizer itself would make."""
    return [tok.pieces[i] for i in tok.encode(text)]


def play(policy: Any, *, episodes: int = 1, turns: int = 3) -> list[TrajectoryRecord]:
    specs = episode_specs(COLLECTION, TALK, episodes=episodes)
    return collect_sync(policy, specs, client=async_client(), max_turns=turns, sync_policy="inline")


def split_policy(reply: str, text: str, pieces: list[str]) -> FakeTokenPolicy:
    """A policy that samples ``text`` inside ``reply`` as ``pieces`` (canonical elsewhere)."""
    tok = FakeTokenizer()
    before, after = reply.split(text)
    sampled = [*canonical(tok, before), *pieces, *canonical(tok, after)]
    return FakeTokenPolicy(REPLIES, splits={reply: sampled}, tokenizer=tok)


def play_groups(policy: Any, group_size: int, groups: int = 1) -> list[list[TrajectoryRecord]]:
    async def main() -> list[list[TrajectoryRecord]]:
        specs = episode_specs(COLLECTION, TALK, episodes=groups)
        out = []
        async for group in collect_groups(
            policy,
            specs,
            client=async_client(),
            group_size=group_size,
            max_turns=2,
            sync_policy="inline",
        ):
            out.append(group)
        return out

    return run_sync(main())


def test_one_sequence_per_episode_from_the_policys_own_ids() -> None:
    policy = FakeTokenPolicy(REPLIES)
    (record,) = play(policy)
    (sample,) = episode_samples(record)
    tok = policy.tokenizer
    ids = sample.input_ids.tolist()
    assert len(sample.spans) == 3 and sample.span_turns == (1, 2, 3)
    for (start, end), turn in zip(sample.spans, record.turns, strict=False):
        gen = turn.generation
        assert gen is not None and gen.completion_ids is not None
        assert ids[start:end] == gen.completion_ids  # the generated ids, at their place
        assert ids[:start] == gen.prompt_ids  # each prompt is a prefix of the sequence
        assert tok.decode(ids[start:end], skip_special_tokens=True) == turn.messages[0]["content"]
        assert np.allclose(sample.old_logprobs[start:end], gen.logprobs)
    # mask 1 exactly on the generated tokens: the system prompt, persona messages and template
    # markup are 0
    mask = np.zeros(len(ids), dtype=np.int8)
    for start, end in sample.spans:
        mask[start:end] = 1
    assert (sample.loss_mask == mask).all()
    assert (sample.old_logprobs[mask == 0] == 0).all()
    assert sample.reward == record.final_reward
    # incremental ids == the template rendering of the whole conversation (canonical tokens)
    messages = [{"role": "system", "content": "Be kind."}, *record.conversation()]
    whole = ChatTokens(tok).encode_chat(messages)
    assert whole[: len(ids)] == ids
    assert tok.decode(whole[len(ids) :]).startswith("\n")  # only the template's tail remains


def test_per_turn_layout_and_turn_rewards() -> None:
    (record,) = play(FakeTokenPolicy(REPLIES))
    samples = episode_samples(record, layout="turn", reward="turn")
    assert [s.turn for s in samples] == [1, 2, 3]
    for sample, turn in zip(samples, record.turns, strict=False):
        gen = turn.generation
        assert gen is not None and gen.prompt_ids is not None and gen.completion_ids is not None
        assert sample.input_ids.tolist() == gen.prompt_ids + gen.completion_ids
        assert sample.loss_mask.sum() == len(gen.completion_ids)
        assert sample.reward == turn.reward
    finals = episode_samples(record, layout="turn", reward="final")
    assert {s.reward for s in finals} == {record.final_reward}
    (whole,) = episode_samples(record, reward="turn")
    assert whole.reward == pytest.approx(sum(t.reward for t in record.turns))
    assert whole.span_rewards == tuple(t.reward for t in record.turns)


def test_no_drift_for_canonical_tokens_and_exact_location_otherwise() -> None:
    plain = FakeTokenPolicy(REPLIES)
    (record,) = play(plain)
    (sample,) = episode_samples(record, tokenizer=plain.tokenizer)
    tok = plain.tokenizer
    assert find_drift(sample, tok) is None
    again = tok.encode(tok.decode(sample.input_ids.tolist()), add_special_tokens=False)
    for start, end in sample.spans:
        assert again[start:end] == sample.input_ids[start:end].tolist()

    # turn 3's "hello" sampled as "hel" + "lo" (a split the tokenizer never makes)
    reply = REPLIES[2]
    split = split_policy(reply, "hello", ["hel", "lo"])
    (record,) = play(split)
    (sample,) = episode_samples(record, tokenizer=split.tokenizer)  # builds fine: ids are used
    drift = find_drift(sample, split.tokenizer)
    assert drift is not None and drift.turn == 3
    start = sample.spans[2][0]
    assert drift.position == start + len(split.tokenizer.encode(reply[: reply.index("hello")]))
    hel, lo, hello = (split.tokenizer.vocab[p] for p in ("hel", "lo", "hello"))
    assert drift.generated[:2] == [hel, lo] and drift.reencoded[0] == hello
    assert "turn 3" in str(drift)


def test_two_newlines_as_two_tokens_drift_at_turn_two() -> None:
    reply = REPLIES[1]
    policy = split_policy(reply, "\n\n", ["\n", "\n"])
    (record,) = play(policy)
    (sample,) = episode_samples(record)
    drift = find_drift(sample, policy.tokenizer)
    assert drift is not None and drift.turn == 2
    before = policy.tokenizer.encode(reply[: reply.index("\n\n")])
    assert drift.position == sample.spans[1][0] + len(before)


def test_a_cut_reply_is_closed_with_a_mask_zero_end_of_turn() -> None:
    policy = FakeTokenPolicy(REPLIES, cut_at=5)
    (record,) = play(policy, turns=2)
    first = record.turns[0].generation
    assert first is not None and first.finish_reason == "length" and first.completion_ids
    assert 2 not in first.completion_ids  # no end-of-turn sampled
    (sample,) = episode_samples(record)
    _, end = sample.spans[0]
    assert sample.input_ids[end] == 2 and sample.loss_mask[end] == 0  # added by the template
    assert sample.cut_by_length


def test_group_advantages_normalisation() -> None:
    rewards = [0.9, 0.1, 0.5, 0.5]
    values = np.asarray(rewards)
    expected = (values - values.mean()) / (values.std() + 1e-6)
    assert np.allclose(group_advantages(rewards), expected)
    assert np.allclose(group_advantages(rewards, normalize="mean"), values - values.mean())
    assert (group_advantages([0.4, 0.4, 0.4]) == 0).all()  # no signal, no NaN
    with pytest.raises(LabsValidationError, match="at least 2"):
        group_advantages([0.5])
    with pytest.raises(LabsValidationError, match="normalize"):
        group_advantages([0.5, 0.1], normalize="z")  # type: ignore[arg-type]


def test_grpo_samples_carry_the_group_relative_advantage() -> None:
    replies = iter(["Could you tell me the claim number?", "hello"] * 10)

    class Alternating(FakeTokenPolicy):
        def __call__(self, history: Any, context: Any) -> Any:
            if context.turn == 0:
                self.replies = [next(replies)] * 3
            return super().__call__(history, context)

    groups = play_groups(Alternating(REPLIES), group_size=4, groups=2)
    assert [len(g) for g in groups] == [4, 4]
    samples = grpo_samples(groups)
    assert len(samples) == 8
    for group in groups:
        finals = np.array([r.final_reward for r in group])
        expected = (finals - finals.mean()) / (finals.std() + 1e-6)
        ours = [s for s in samples if s.group == group[0].extra["group"]]
        assert [s.member for s in ours] == [0, 1, 2, 3]
        for sample, value in zip(ours, expected, strict=False):
            assert np.allclose(sample.advantages[sample.loss_mask == 1], value)
            assert (sample.advantages[sample.loss_mask == 0] == 0).all()
    per_turn = grpo_samples(groups, layout="turn", reward="turn", normalize="mean")
    assert len(per_turn) == 16 and all(s.turn in (1, 2) for s in per_turn)


def test_a_group_of_one_is_refused_before_any_work() -> None:
    (lone,) = play(FakeTokenPolicy(REPLIES), turns=1)
    no_tokens = lone.model_copy(deep=True)
    for turn in no_tokens.turns:
        turn.generation = None  # building a sample from it would fail differently
    with pytest.raises(LabsValidationError, match=r"groups\[1\].*1 member") as caught:
        grpo_samples([[no_tokens, no_tokens], [lone]])
    assert "group_size" in str(caught.value)


def test_failed_episodes_are_never_a_training_signal() -> None:
    records = play(FakeTokenPolicy(REPLIES), episodes=3, turns=1)
    failed = records[2].model_copy(update={"error": "APIConnectionError: lost"})
    with pytest.raises(LabsValidationError, match="never a training signal"):
        episode_samples(failed)
    assert len(grpo_samples([[records[0], records[1], failed]])) == 2
    assert grpo_samples([[records[0], failed]]) == []  # one member left: nothing to compare
    with pytest.raises(LabsValidationError, match="never a training signal"):
        grpo_samples([[records[0], failed]], drop_failed=False)


def test_prompts_that_do_not_extend_the_previous_turn_are_located() -> None:
    (record,) = play(FakeTokenPolicy(REPLIES))
    broken = record.model_copy(deep=True)
    gen = broken.turns[1].generation
    assert gen is not None and gen.prompt_ids is not None
    prompt = list(gen.prompt_ids)
    prompt[7] += 1000  # a re-rendered (re-tokenised) prompt differs inside turn 1's context
    broken.turns[1].generation = gen.model_copy(update={"prompt_ids": prompt})
    with pytest.raises(SequenceMismatchError) as caught:
        episode_samples(broken)
    error = caught.value
    assert (error.turn, error.position) == (2, 7) and error.got[0] == prompt[7]
    assert "layout=" in str(error)
    assert len(episode_samples(broken, layout="turn")) == 3  # per turn needs no prefix


def test_ids_that_do_not_decode_to_the_text_are_refused() -> None:
    policy = FakeTokenPolicy(REPLIES)
    (record,) = play(policy, turns=2)
    broken = record.model_copy(deep=True)
    gen = broken.turns[1].generation
    assert gen is not None and gen.completion_ids is not None
    ids = list(gen.completion_ids)
    ids[3] = policy.tokenizer.token("Z")
    broken.turns[1].generation = gen.model_copy(update={"completion_ids": ids})
    with pytest.raises(TokenTextMismatchError, match=r"turns\[2\]") as caught:
        episode_samples(broken, tokenizer=policy.tokenizer)
    assert caught.value.turn == 2 and "character 3" in str(caught.value)
    episode_samples(record, tokenizer=policy.tokenizer)  # the intact record passes


def test_turns_without_token_ids_and_bad_options_are_refused() -> None:
    (record,) = play(lambda history, context: "Hello there", turns=1)
    with pytest.raises(LabsValidationError, match="no prompt_ids/completion_ids"):
        episode_samples(record)
    with pytest.raises(LabsValidationError, match="layout"):
        episode_samples(record, layout="token")  # type: ignore[arg-type]
    with pytest.raises(LabsValidationError, match="reward"):
        episode_samples(record, reward="sum")  # type: ignore[arg-type]


def test_chat_tokens_refuses_unusable_tokenizers() -> None:
    no_template = FakeTokenizer(template="")
    with pytest.raises(LabsValidationError, match="no chat template"):
        ChatTokens(no_template)
    shifting = FakeTokenizer(template="shifting")
    with pytest.raises(LabsValidationError, match="not prefix-preserving"):
        ChatTokens(shifting)
    ChatTokens(shifting, incremental=False)  # accepted: it re-renders every turn


def test_importing_labs_env_never_imports_torch() -> None:
    code = (
        "import sys, labs_env, labs_env.training, labs_env.policies, "
        "labs_env.policies.transformers_policy, labs_env.integrations.trl; "
        "print(sorted(m for m in ('torch', 'transformers', 'trl', 'datasets') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
