"""Running totals of an evaluation, handed to the ``progress`` callback after each episode."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from labs_env.evaluation.outcomes import outcome
from labs_env.rollout.trajectory import TrajectoryRecord

__all__ = ["EvalProgress"]


@dataclass
class EvalProgress:
    """Where a run stands.

    Attributes:
        total: episodes this run plays (skipped ones excluded).
        skipped: episodes already finished in the output directory (resumed).
        done: episodes finished in this run, errored ones included.
        errors: episodes cut short by an error (the service or the network, the policy, a
            time limit): never a result, played again on a rerun.
        reward_sum / rewarded: sum and count of the episode rewards (final turn) so far.
        terminal_reasons: why the episodes ended (``error`` for those cut short by an error).
        last: the record that just finished.
    """

    total: int
    skipped: int = 0
    done: int = 0
    errors: int = 0
    reward_sum: float = 0.0
    rewarded: int = 0
    terminal_reasons: Counter[str] = field(default_factory=Counter)
    last: TrajectoryRecord | None = None

    @property
    def mean_reward(self) -> float | None:
        """The running mean episode reward over the finished, scored episodes."""
        return self.reward_sum / self.rewarded if self.rewarded else None

    def add(self, record: TrajectoryRecord) -> None:
        """Count one finished episode."""
        self.done += 1
        self.last = record
        episode = outcome(record)
        if record.error is not None:
            self.errors += 1
            self.terminal_reasons["error"] += 1
            return
        self.terminal_reasons[record.terminal_reason or "not_ended"] += 1
        if episode.reward is not None:
            self.reward_sum += episode.reward
            self.rewarded += 1

    def label(self) -> str:
        """A short status line: mean reward, errors, terminal reasons."""
        mean = "–" if self.mean_reward is None else f"{self.mean_reward:.3f}"
        reasons = " ".join(f"{k}:{v}" for k, v in sorted(self.terminal_reasons.items()))
        return f"mean {mean}  errors {self.errors}  {reasons}".rstrip()
