"""Building :class:`~labs_env.TrajectoryRecord`\\ s from an episode as it runs.

The vector env's recorder and the independent-episode collection produce the same records as
:class:`~labs_env.wrappers.TrajectoryRecorder`: one per episode, every turn with the messages it
added, the reward and scores, and ``error`` set (never a reward) when an infrastructure failure
cut the episode short.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from labs_env.rollout.episode import Episode, Transition
from labs_env.rollout.generation import Generation
from labs_env.rollout.trajectory import TrajectoryRecord, TurnRecord

__all__ = ["RecordBuilder", "error_text"]


def error_text(exc: BaseException) -> str:
    """How an error is written in ``info["error"]`` and ``record.error``."""
    return f"{type(exc).__name__}: {exc}"


class RecordBuilder:
    """Accumulates one episode's record.

    Args:
        observation: the episode's observation at its reset (the opening message first).
        info: the reset's ``info`` (episode id, collection, scenario, seed, reward config).
        extra: fields stored in the record's ``extra``.
    """

    def __init__(
        self,
        observation: Sequence[Mapping[str, Any]],
        info: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self._started = time.perf_counter()
        self.record = TrajectoryRecord(
            episode_id=str(info.get("episode_id", "")),
            collection=str(info.get("collection", "")),
            scenario=str(info.get("scenario", "")),
            seed=info.get("seed"),
            reward_config=info.get("reward_config"),
            initial_observation=dict(observation[0]) if observation else None,
            tools=info.get("tools"),
            started_at=time.time(),
            extra=dict(extra or {}),
        )
        self.finished = False

    @classmethod
    def for_episode(cls, episode: Episode, extra: Mapping[str, Any] | None = None) -> RecordBuilder:
        """The builder of ``episode``'s record, right after it was created."""
        opening = episode.observation()[:1] if episode.turn == 0 else ()
        return cls(opening, episode.reset_info(), extra)

    def add_turn(self, transition: Transition, latency_s: float | None = None) -> None:
        """Append one turn (the last two messages of the observation)."""
        info = transition.info
        record = self.record
        reward = float(transition.reward)
        record.turns.append(
            TurnRecord.model_construct(  # built from checked values: skip re-validation
                turn=int(info.get("turn", len(record.turns) + 1)),
                messages=[dict(m) for m in transition.observation[-2:]],
                reward=reward,
                scores=dict(info.get("scores") or {}),
                score_breakdown=info.get("score_breakdown"),
                terminated=transition.terminated,
                truncated=transition.truncated,
                terminal_reason=info.get("terminal_reason"),
                request_id=info.get("request_id"),
                latency_s=latency_s,
                generation=transition.generation or _generation(info.get("generation")),
            )
        )
        record.total_reward += reward
        record.final_reward = reward
        if transition.terminated or transition.truncated:
            record.terminated = transition.terminated
            record.truncated = transition.truncated
            record.terminal_reason = info.get("terminal_reason")

    def finish(
        self, *, error: BaseException | str | None = None, truncated: bool = False
    ) -> TrajectoryRecord:
        """Close the record: ``error`` (an infrastructure failure), or cut short by the client."""
        record = self.record
        if error is not None:
            record.error = error if isinstance(error, str) else error_text(error)
            record.truncated = True
        elif truncated and not (record.terminated or record.truncated):
            record.truncated = True
            record.terminal_reason = record.terminal_reason or "client_terminated"
        record.duration_s = time.perf_counter() - self._started
        self.finished = True
        return record


def _generation(value: Any) -> Generation | None:
    """A generation from an ``info["generation"]`` summary (what a wrapper sees of it)."""
    if value is None or isinstance(value, Generation):
        return value
    return Generation.model_validate(value)
