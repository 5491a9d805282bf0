"""Stop a run whose episodes all fail the same way, and say why.

A policy whose model server is down, a policy that crashes on every turn, a service that
refuses every episode: every episode fails at once with the same error, and a run of hundreds
of episodes would play them all only to report hundreds of identical errors.
:class:`UniformFailures` watches a run's finished episodes: when the first ``limit`` (5 by
default) all failed with the same error type and message pattern (numbers and ids aside), it
raises :class:`RunStoppedError` with that error. One success or one different failure and it
stays quiet for the rest of the run.
"""

from __future__ import annotations

import re

from labs_env.errors import LabsError
from labs_env.rollout.trajectory import TrajectoryRecord

__all__ = ["EARLY_STOP_AFTER", "RunStoppedError", "UniformFailures"]

#: How many first episodes must all fail the same way to stop a run.
EARLY_STOP_AFTER = 5

# Ids (ep_..., req_..., hex runs) and numbers vary between episodes failing the same way.
_VARYING = re.compile(r"\b(?:ep|req|call)_\w+|\b[0-9a-f]{8,}\b|\d+(?:\.\d+)?")


class RunStoppedError(LabsError):
    """A run stopped early: its first episodes all failed the same way.

    Attributes:
        cause: the first failure's error text (``"ChatCompletionError: ..."``).
        episodes: how many episodes had failed.
    """

    def __init__(self, cause: str, episodes: int) -> None:
        self.cause = cause
        self.episodes = episodes
        super().__init__(f"stopped: the first {episodes} episodes all failed the same way: {cause}")


class UniformFailures:
    """Raises :class:`RunStoppedError` when the first ``limit`` episodes added all failed the
    same way (``limit=None``: never)."""

    def __init__(self, limit: int | None = EARLY_STOP_AFTER) -> None:
        self.limit = limit
        self.seen = 0
        self._first: str | None = None
        self._pattern: str | None = None

    def add(self, record: TrajectoryRecord) -> None:
        """Count one finished episode.

        Raises:
            RunStoppedError: it completes ``limit`` identical failures.
        """
        if self.limit is None or self.seen < 0:
            return
        pattern = _pattern(record)
        if pattern is None or (self._pattern is not None and pattern != self._pattern):
            self.seen = -1  # not uniform: watch no more
            return
        if self._pattern is None:
            self._pattern, self._first = pattern, _first_line(record.error or "")
        self.seen += 1
        if self.seen >= self.limit:
            raise RunStoppedError(self._first or pattern, self.seen)


def _pattern(record: TrajectoryRecord) -> str | None:
    if record.error is None:
        return None
    kind = str(record.extra.get("error_type", ""))
    return f"{kind}|{_VARYING.sub('#', _first_line(record.error))}"


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else "(no message)"
