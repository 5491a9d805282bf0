"""Driver-side bookkeeping of a Ray collection: per-actor slots, counts, lost episodes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from labs_env.rollout.collection import CollectProgress
from labs_env.rollout.specs import EpisodeSpec
from labs_env.rollout.trajectory import TrajectoryRecord

__all__ = ["RayCollectStats", "Slot", "Tally", "lost_record"]


@dataclass
class RayCollectStats:
    """What happened to the workers during the collector's life.

    Attributes:
        played: records yielded.
        requeued: episodes put back in the queue because their actor was lost.
        duplicates_dropped: records dropped because their spec key was already yielded.
        workers_lost: times an actor was found dead.
        workers_restarted: times a lost actor came back (Ray's ``max_restarts``).
        workers_alive: actors taking work now.
    """

    played: int = 0
    requeued: int = 0
    duplicates_dropped: int = 0
    workers_lost: int = 0
    workers_restarted: int = 0
    workers_alive: int = 0


@dataclass
class Slot:
    """One actor as the driver sees it."""

    index: int
    handle: Any
    owner: str = ""
    busy: int = 0
    alive: bool = True
    ping: Any = None  # the ready() call of a lost actor that Ray may be restarting
    playing: dict[Any, EpisodeSpec] = field(default_factory=dict)  # ObjectRef -> spec


class Tally:
    """Running counts for the ``progress`` callback."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.perf_counter()
        self.finished = self.failed = self.turns = self.ok = 0
        self.reward_sum = 0.0

    def add(self, record: TrajectoryRecord, in_flight: int) -> CollectProgress:
        self.finished += 1
        self.turns += len(record.turns)
        if record.ok:
            self.ok += 1
            self.reward_sum += record.final_reward or 0.0
        else:
            self.failed += 1
        return CollectProgress(
            total=self.total,
            finished=self.finished,
            failed=self.failed,
            in_flight=in_flight,
            turns=self.turns,
            mean_reward=self.reward_sum / self.ok if self.ok else None,
            elapsed_s=time.perf_counter() - self.started,
            last=record,
        )


def lost_record(spec: EpisodeSpec, exc: BaseException, attempts: int) -> TrajectoryRecord:
    """The record of a spec given up after its actors died ``attempts`` times: an error."""
    message = f"WorkerLost: its Ray actor died {attempts} times ({type(exc).__name__})"
    return spec.failed_record(message, "WorkerLost")
