"""Record every episode to a JSONL file, one durable line per episode.

Each finished episode is appended as a :class:`~labs_env.TrajectoryRecord` and
flushed + fsynced before ``step`` returns, so a crash loses at most the episode in flight. An
episode cut short is written too: by a ``reset``/``close`` mid-episode (``truncated``,
``terminal_reason="client_terminated"``) or by an infrastructure failure in ``step`` (``error``
set; such records are never rewards — filter with ``record.ok``).

Read the file back with :func:`labs_env.read_trajectories`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, SupportsFloat

import gymnasium as gym

from labs_env.errors import LabsError, LabsValidationError
from labs_env.rollout.episode import Transition
from labs_env.rollout.recording import RecordBuilder
from labs_env.rollout.trajectory import JsonlWriter, TrajectoryRecord

__all__ = ["TrajectoryRecorder"]


class TrajectoryRecorder(gym.Wrapper[Any, Any, Any, Any]):
    """Append each episode to ``path`` (JSONL) as it ends.

    Args:
        env: a Labs env (or a wrapper of one; rewards are recorded as this wrapper sees them).
        path: the JSONL file (appended to; created if missing).
        extra: constant fields stored in every record's ``extra`` (e.g. a run id).
        fsync: fsync after each episode (on by default; the durability guarantee needs it).

    Example:
        >>> import tempfile
        >>> from labs_env import LabsEnv, read_trajectories
        >>> runs = tempfile.TemporaryDirectory()
        >>> path = f"{runs.name}/episodes.jsonl"
        >>> env = TrajectoryRecorder(LabsEnv("insurance-claims", "delayed-claim-call"), path)
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step("What happened?")
        >>> env.close()  # the unfinished episode is terminated, and written
        >>> [(r.num_turns, r.terminal_reason) for r in read_trajectories(path)]
        [(1, 'client_terminated')]
        >>> runs.cleanup()
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        path: str | os.PathLike[str],
        *,
        extra: Mapping[str, Any] | None = None,
        fsync: bool = True,
    ) -> None:
        super().__init__(env)
        self.writer = JsonlWriter(path, fsync=fsync)
        self.extra = dict(extra or {})
        self._builder: RecordBuilder | None = None

    @property
    def path(self) -> str:
        """The file records are appended to."""
        return str(self.writer.path)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Write an unfinished episode (as cut short), then start recording a new one."""
        self._finish_abandoned()
        obs, info = self.env.reset(seed=seed, options=options)
        self._builder = RecordBuilder(obs, info, {**self.extra, **_phase_fields(info)})
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step and record the turn; write the episode when it ends."""
        started = time.perf_counter()
        try:
            obs, reward, terminated, truncated, info = self.env.step(action)
        except LabsValidationError:
            raise  # nothing was sent; the episode goes on
        except LabsError as exc:
            if self._builder is not None:
                self._write(self._builder.finish(error=exc))
            raise
        builder = self._builder
        if builder is not None:
            transition = Transition(obs, float(reward), bool(terminated), bool(truncated), info)
            builder.add_turn(transition, time.perf_counter() - started)
            if terminated or truncated:
                self._write(builder.finish())
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        """Write an unfinished episode, close the file, close the env (idempotent)."""
        try:
            self._finish_abandoned()
        finally:
            self.writer.close()
            super().close()

    def _finish_abandoned(self) -> None:
        builder = self._builder
        if builder is not None and builder.record.turns:
            self._write(builder.finish(truncated=True))
        self._builder = None

    def _write(self, record: TrajectoryRecord) -> None:
        self.writer.write(record)
        self._builder = None


def _phase_fields(info: Mapping[str, Any]) -> dict[str, Any]:
    return {k: info[k] for k in ("curriculum_phase", "curriculum_phase_name") if k in info}
