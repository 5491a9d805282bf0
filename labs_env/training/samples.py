"""Trainer-ready token samples from collected episodes, built from the policy's own token ids.

A policy that returns a :class:`~labs_env.rollout.generation.Generation` with ``prompt_ids``,
``completion_ids`` and ``logprobs`` (e.g. :class:`~labs_env.policies.TransformersPolicy`, or
``OpenAIChatPolicy`` on vLLM with ``token_ids=True``) leaves in every
:class:`~labs_env.rollout.trajectory.TurnRecord` exactly what was sampled.
:func:`episode_samples` turns a record into token samples (:class:`TokenSample`):

- ``layout="episode"``: one sequence per episode, the last turn's ``prompt_ids +
  completion_ids``. Each turn's prompt must extend the previous turn's prompt and completion
  (a policy that builds prompts incrementally guarantees it); the tokens between two
  completions — the persona's message, the template's markup, an end-of-turn token the policy
  did not sample because its reply was cut — are context with loss mask 0.
- ``layout="turn"``: one sequence per turn, ``prompt_ids + completion_ids`` of that turn.

In both, ``loss_mask`` is 1 exactly on the tokens the policy generated, ``old_logprobs`` holds
their sampling log-probabilities (0 elsewhere), and ``advantages`` (per token, 0 where the mask
is 0) are filled by :func:`~labs_env.training.advantages.grpo_samples`.

Nothing is ever re-tokenised. :func:`find_drift` shows what re-tokenising *would* have done
(decode the sequence, encode it again, compare every assistant span) and
:func:`check_decodes` catches a policy whose ids do not decode to the text it sent.

Numpy only: :mod:`labs_env.training.torch_batch` pads samples into torch tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from labs_env.errors import LabsValidationError
from labs_env.rollout.generation import Generation
from labs_env.rollout.trajectory import TrajectoryRecord

__all__ = [
    "LAYOUTS",
    "REWARD_MODES",
    "Drift",
    "Layout",
    "RewardMode",
    "SequenceMismatchError",
    "TokenSample",
    "TokenTextMismatchError",
    "Tokenizer",
    "check_decodes",
    "episode_samples",
    "find_drift",
]

#: One sequence per episode, or one per turn.
Layout = Literal["episode", "turn"]
LAYOUTS: tuple[Layout, ...] = ("episode", "turn")
#: Which reward a sample carries: the episode's final reward (the score of the whole
#: conversation) on every turn, or each turn's own reward (the score of the conversation up to
#: that turn, as the service returned it).
RewardMode = Literal["final", "turn"]
REWARD_MODES: tuple[RewardMode, ...] = ("final", "turn")


class Tokenizer(Protocol):
    """What the checks need of a tokenizer (a Hugging Face tokenizer fits)."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = ...) -> str: ...


class SequenceMismatchError(LabsValidationError):
    """A turn's prompt does not extend the previous turn's tokens (``layout="episode"``).

    Attributes:
        turn: the 1-indexed turn whose prompt differs.
        position: the first token index where it differs.
        expected / got: a few ids from that position on (the previous turns' ids, this
            turn's prompt).
    """

    def __init__(
        self, episode_id: str, turn: int, position: int, expected: list[int], got: list[int]
    ) -> None:
        self.turn, self.position, self.expected, self.got = turn, position, expected, got
        super().__init__(
            f"{episode_id}.turns[{turn}].generation.prompt_ids",
            f"position {position}: expected {expected} (the earlier turns' tokens), got {got}",
            "build each turn's prompt from the previous ids (TransformersPolicy does), or use "
            'layout="turn"',
        )


class TokenTextMismatchError(LabsValidationError):
    """A turn's completion ids do not decode to the text the policy sent.

    Attributes:
        turn: the 1-indexed turn.
        text: what the policy said it generated.
        decoded: what its ids decode to.
    """

    def __init__(self, episode_id: str, turn: int, text: str, decoded: str) -> None:
        self.turn, self.text, self.decoded = turn, text, decoded
        at = next(
            (i for i, (a, b) in enumerate(zip(text, decoded, strict=False)) if a != b),
            min(len(text), len(decoded)),
        )
        super().__init__(
            f"{episode_id}.turns[{turn}].generation.completion_ids",
            f"decode to {decoded[max(0, at - 20) : at + 20]!r} but the text has "
            f"{text[max(0, at - 20) : at + 20]!r} (first difference at character {at})",
            "return the ids the model generated for this very text",
        )


@dataclass(frozen=True)
class TokenSample:
    """One training sequence.

    Attributes:
        input_ids: the token ids (int64).
        loss_mask: 1 on the tokens the policy generated, 0 on context (int8).
        old_logprobs: the sampling log-probability of each generated token; 0 where the mask
            is 0 and ``NaN`` where the policy did not report one (float32).
        advantages: per token, 0 where the mask is 0 (float32; zeros until
            :func:`~labs_env.training.advantages.grpo_samples` fills them).
        reward: the sample's reward (see :data:`RewardMode`).
        spans: ``(start, end)`` of each generated span in ``input_ids``, one per turn.
        span_turns: the 1-indexed turn of each span.
        span_rewards: each span's turn reward, as the service returned it.
        episode_id / group / member: where it came from (``group``/``member`` from
            :func:`~labs_env.collect_groups`, ``None`` otherwise).
        turn: the turn (``layout="turn"``), ``None`` for a whole episode.
        cut_by_length: a reply in the sample was cut by the token limit.
    """

    input_ids: NDArray[np.int64]
    loss_mask: NDArray[np.int8]
    old_logprobs: NDArray[np.float32]
    advantages: NDArray[np.float32]
    reward: float
    spans: tuple[tuple[int, int], ...]
    span_turns: tuple[int, ...]
    span_rewards: tuple[float, ...]
    episode_id: str
    group: str | None = None
    member: int | None = None
    turn: int | None = None
    cut_by_length: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_policy_tokens(self) -> int:
        """Tokens in the loss."""
        return int(self.loss_mask.sum())

    def with_advantages(self, per_span: Sequence[float]) -> TokenSample:
        """A copy whose advantage is ``per_span[i]`` on span ``i``'s tokens."""
        advantages = np.zeros(len(self.input_ids), dtype=np.float32)
        for (start, end), value in zip(self.spans, per_span, strict=True):
            advantages[start:end] = value
        return replace(self, advantages=advantages)


@dataclass(frozen=True)
class Drift:
    """Where re-tokenising a sample changes a generated span (see :func:`find_drift`).

    Attributes:
        turn: the 1-indexed turn of the span.
        position: the token index in ``input_ids`` of the first difference.
        generated: a few generated ids from there.
        reencoded: the re-encoded ids at the same place.
    """

    turn: int
    position: int
    generated: list[int]
    reencoded: list[int]

    def __str__(self) -> str:
        return (
            f"turn {self.turn}, token {self.position}: generated {self.generated}, "
            f"re-encoded {self.reencoded}"
        )


def episode_samples(
    record: TrajectoryRecord,
    *,
    layout: Layout = "episode",
    reward: RewardMode = "final",
    tokenizer: Tokenizer | None = None,
) -> list[TokenSample]:
    """The samples of one episode (see the module docstring).

    Args:
        record: a finished episode whose turns carry generations with token ids.
        layout: ``"episode"`` or ``"turn"``.
        reward: ``"final"`` or ``"turn"``.
        tokenizer: when given, first check that every turn's ids decode to its text
            (:func:`check_decodes`).

    Raises:
        LabsValidationError: a bad option, a failed episode (``record.error``: never a
            reward), a turn without token ids; :class:`TokenTextMismatchError`;
            :class:`SequenceMismatchError` (``layout="episode"``).
    """
    if layout not in LAYOUTS:
        raise LabsValidationError("layout", f"must be one of {LAYOUTS}, not {layout!r}")
    if reward not in REWARD_MODES:
        raise LabsValidationError("reward", f"must be one of {REWARD_MODES}, not {reward!r}")
    if not record.ok:
        raise LabsValidationError(
            f"{record.episode_id}.error",
            f"the episode failed ({record.error}); a failed episode is never a training signal",
            "keep records with record.ok",
        )
    turns = _token_turns(record)
    if tokenizer is not None:
        check_decodes(record, tokenizer)
    final = float(record.final_reward or 0.0)
    meta = _meta(record)
    if layout == "turn":
        return [
            _sample(
                [*gen.prompt_ids],  # type: ignore[misc]
                [(number, gen, turn_reward)],
                final if reward == "final" else turn_reward,
                meta,
                turn=number,
            )
            for number, gen, turn_reward in turns
        ]
    ids: list[int] = []
    for number, gen, _ in turns:
        prompt = gen.prompt_ids or []
        position = next(
            (i for i, (a, b) in enumerate(zip(ids, prompt, strict=False)) if a != b),
            len(prompt) if len(prompt) < len(ids) else None,
        )
        if position is not None:
            raise SequenceMismatchError(
                record.episode_id,
                number,
                position,
                ids[position : position + 5],
                list(prompt[position : position + 5]),
            )
        ids = [*prompt, *(gen.completion_ids or [])]
    last_prompt = turns[-1][1].prompt_ids or []
    total = final if reward == "final" else float(sum(r for _, _, r in turns))
    return [_sample(list(last_prompt), turns, total, meta)]


def check_decodes(record: TrajectoryRecord, tokenizer: Tokenizer) -> None:
    """Check that each turn's ``completion_ids`` decode to the text the policy generated
    (``generation.text``, else the message it sent), special tokens skipped.

    Raises:
        TokenTextMismatchError: they do not (the turn and the first difference named).
    """
    for turn in record.turns:
        gen = turn.generation
        if gen is None or gen.completion_ids is None:
            continue
        text = gen.text
        if text is None:
            sent = turn.messages[0] if turn.messages else {}
            if sent.get("tool_calls"):
                continue  # the ids also spell the tool calls, which the content does not hold
            text = str(sent.get("content", ""))
        decoded = tokenizer.decode(gen.completion_ids, skip_special_tokens=True)
        if decoded != text and not (gen.truncations and text.startswith(decoded[: len(text)])):
            raise TokenTextMismatchError(record.episode_id, turn.turn, text, decoded)


def find_drift(sample: TokenSample, tokenizer: Tokenizer) -> Drift | None:
    """What re-tokenising ``sample`` would change: decode ``input_ids`` (special tokens kept),
    encode the text again, and return the first generated span whose ids differ (``None``:
    every span comes back identical).

    This is a diagnostic: the builders never re-tokenise. A model that samples a
    non-canonical split (``"hel"`` + ``"lo"`` for ``"hello"``) makes spans drift, which is why
    trainers must use the generated ids.
    """
    ids = [int(t) for t in sample.input_ids]
    text = tokenizer.decode(ids, skip_special_tokens=False)
    again = [int(t) for t in tokenizer.encode(text, add_special_tokens=False)]
    for (start, end), turn in zip(sample.spans, sample.span_turns, strict=False):
        prefix_ok = again[:start] == ids[:start]
        if prefix_ok and again[start:end] == ids[start:end]:
            continue
        if not prefix_ok:  # an earlier token changed: find it, report it in this span's terms
            first = next(
                i
                for i, (a, b) in enumerate(zip(ids, again + [-1] * len(ids), strict=False))
                if a != b
            )
            position = max(first, start)
        else:
            position = next(
                (i for i in range(start, end) if i >= len(again) or again[i] != ids[i]), end
            )
        return Drift(turn, position, ids[position : position + 5], again[position : position + 5])
    return None


# ---------------------------------------------------------------------- internals


def _token_turns(record: TrajectoryRecord) -> list[tuple[int, Generation, float]]:
    turns: list[tuple[int, Generation, float]] = []
    for turn in record.turns:
        gen = turn.generation
        if gen is None or gen.prompt_ids is None or gen.completion_ids is None:
            raise LabsValidationError(
                f"{record.episode_id}.turns[{turn.turn}].generation",
                "has no prompt_ids/completion_ids",
                "collect with a policy that returns token ids (TransformersPolicy, or "
                "OpenAIChatPolicy(token_ids=True) on vLLM)",
            )
        turns.append((turn.turn, gen, float(turn.reward)))
    if not turns:
        raise LabsValidationError(f"{record.episode_id}.turns", "the episode has no turns")
    return turns


def _meta(record: TrajectoryRecord) -> dict[str, Any]:
    group = record.extra.get("group")
    member = record.extra.get("member")
    return {
        "episode_id": record.episode_id,
        "group": None if group is None else str(group),
        "member": member if isinstance(member, int) else None,
    }


def _sample(
    prefix: list[int],
    turns: Sequence[tuple[int, Generation, float]],
    reward: float,
    meta: dict[str, Any],
    *,
    turn: int | None = None,
) -> TokenSample:
    """The sample whose sequence is ``prefix`` (the last turn's prompt, which holds every
    earlier completion at its place) + the last completion."""
    last = turns[-1][1]
    ids = prefix + list(last.completion_ids or [])
    mask = np.zeros(len(ids), dtype=np.int8)
    old = np.zeros(len(ids), dtype=np.float32)
    spans = []
    cursor = 0
    for _, gen, _ in turns:
        start = len(gen.prompt_ids or [])
        end = start + len(gen.completion_ids or [])
        cursor = end
        mask[start:end] = 1
        old[start:end] = np.nan if gen.logprobs is None else gen.logprobs
        spans.append((start, end))
    assert cursor == len(ids)
    return TokenSample(
        input_ids=np.asarray(ids, dtype=np.int64),
        loss_mask=mask,
        old_logprobs=old,
        advantages=np.zeros(len(ids), dtype=np.float32),
        reward=float(reward),
        spans=tuple(spans),
        span_turns=tuple(number for number, _, _ in turns),
        span_rewards=tuple(r for _, _, r in turns),
        cut_by_length=any(gen.cut_by_length for _, gen, _ in turns),
        turn=turn,
        **meta,
    )
