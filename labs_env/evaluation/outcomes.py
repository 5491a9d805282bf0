"""What evaluation reads from a trajectory record: one :class:`EpisodeOutcome` per episode.

The reward of an episode is the reward of its **final turn**: the Labs service scores the
whole conversation so far at every turn, so the last turn's reward is the score of the complete
episode. The sum of the turn rewards (``total_reward``) is reported too, but it grows with the
episode length and is not the quality of the conversation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from labs_env.errors import LabsValidationError
from labs_env.rollout.trajectory import TrajectoryRecord

__all__ = ["EpisodeOutcome", "RecordLike", "as_record", "outcome", "outcomes"]

#: A trajectory record, or a dict with its fields (as read from JSONL).
RecordLike = TrajectoryRecord | Mapping[str, Any]


@dataclass(frozen=True)
class EpisodeOutcome:
    """The evaluation-relevant facts of one episode.

    Attributes:
        key: ``"collection/scenario"``.
        reward: the final turn's reward (``None``: no turn was played or the episode errored).
        total_reward: the sum of the turn rewards.
        scores: the final turn's score dimensions.
        turn_rewards: the reward of each turn, in order.
        turn_latencies: each turn's wall time in seconds (missing ones left out).
        error: the infrastructure failure, if any (such an episode is not a result).
    """

    episode_id: str
    collection: str
    scenario: str
    seed: int | None
    reward: float | None
    total_reward: float
    scores: Mapping[str, float]
    turn_rewards: tuple[float, ...]
    turn_latencies: tuple[float, ...]
    terminal_reason: str | None
    duration_s: float | None
    error: str | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.collection}/{self.scenario}"

    @property
    def ok(self) -> bool:
        """A usable result: no infrastructure error and at least one scored turn."""
        return self.error is None and self.reward is not None

    @property
    def num_turns(self) -> int:
        return len(self.turn_rewards)


def as_record(record: RecordLike) -> TrajectoryRecord:
    """A :class:`TrajectoryRecord` from a record or a dict of its fields.

    Raises:
        LabsValidationError: the dict is not a trajectory record.
    """
    if isinstance(record, TrajectoryRecord):
        return record
    try:
        return TrajectoryRecord.model_validate(dict(record))
    except (ValidationError, TypeError, ValueError) as exc:
        raise LabsValidationError(
            "records", f"not a trajectory record: {exc}", "pass records read by read_trajectories"
        ) from None


def outcome(record: RecordLike) -> EpisodeOutcome:
    """The :class:`EpisodeOutcome` of one record."""
    rec = as_record(record)
    turn_rewards = tuple(float(t.reward) for t in rec.turns)
    reward = (
        rec.final_reward
        if rec.final_reward is not None
        else (turn_rewards[-1] if turn_rewards else None)
    )
    if reward is not None and not math.isfinite(reward):
        reward = None
    return EpisodeOutcome(
        episode_id=rec.episode_id,
        collection=rec.collection,
        scenario=rec.scenario,
        seed=rec.seed,
        reward=None if rec.error is not None else reward,
        total_reward=float(rec.total_reward),
        scores=dict(rec.turns[-1].scores) if rec.turns else {},
        turn_rewards=turn_rewards,
        turn_latencies=tuple(t.latency_s for t in rec.turns if t.latency_s is not None),
        terminal_reason=rec.terminal_reason,
        duration_s=rec.duration_s,
        error=rec.error,
        extra=dict(rec.extra),
    )


def outcomes(records: Iterable[RecordLike]) -> list[EpisodeOutcome]:
    """:func:`outcome` of each record, in order."""
    return [outcome(record) for record in records]
