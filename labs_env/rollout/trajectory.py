"""Typed trajectory records and a crash-safe JSONL store.

One line per finished episode: a :class:`TrajectoryRecord` with every :class:`TurnRecord`.
:class:`JsonlWriter` appends, flushes and ``fsync``\\ s each record, so a crash loses at most
the episode in flight; on opening it cuts a torn last line left by an earlier crash.
:func:`read_trajectories` loads the file back into typed records, tolerating a truncated last
line.

An infrastructure failure (connection lost, duplicate turn, ...) is recorded in ``error`` and
is never a reward: filter such records out before training (``record.ok``).

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "runs.jsonl"
    >>> with JsonlWriter(path) as writer:
    ...     writer.write(TrajectoryRecord(episode_id="ep_1", collection="c", scenario="s"))
    >>> [r.episode_id for r in read_trajectories(path)]
    ['ep_1']
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_jsonable_python

from labs_env._version import __version__
from labs_env.errors import LabsValidationError
from labs_env.rollout.generation import Generation
from labs_env.rollout.strict_json import encode_line

__all__ = [
    "SCHEMA_VERSION",
    "JsonlWriter",
    "TrajectoryRecord",
    "TurnRecord",
    "iter_trajectories",
    "read_trajectories",
]

#: Version of the record layout written in each line's ``schema_version``. 2 added
#: :attr:`TurnRecord.generation`; files of version 1 load unchanged (no generation).
SCHEMA_VERSION = 2


class _Record(BaseModel):
    # Lenient on read: files written by newer versions keep loading.
    model_config = ConfigDict(extra="allow")


class TurnRecord(_Record):
    """One turn: the messages it added, what the service answered, how long it took.

    Attributes:
        turn: 1-indexed turn number.
        messages: the agent's message (with tool calls) and the persona's reply.
        reward: the turn's reward (on the whole conversation so far).
        scores: flattened score dimensions (``{}`` when not returned).
        score_breakdown: per-dimension reasoning, when the access level returns it.
        terminated / truncated: Gymnasium's end flags for this turn.
        terminal_reason: set on the last turn of an ended episode.
        request_id: the service's request id for this turn.
        latency_s: wall time of the step (request round trip included).
        generation: what produced the agent's message (token ids, log-probabilities, finish
            reason, truncations), when the policy returned it.
    """

    turn: int
    messages: list[dict[str, Any]] = Field(default_factory=list)
    reward: float = 0.0
    scores: dict[str, float] = Field(default_factory=dict)
    score_breakdown: dict[str, Any] | None = None
    terminated: bool = False
    truncated: bool = False
    terminal_reason: str | None = None
    request_id: str | None = None
    latency_s: float | None = None
    generation: Generation | None = None


class TrajectoryRecord(_Record):
    """One episode, as written to a JSONL line.

    Attributes:
        episode_id / collection / scenario: what was played.
        seed: the episode seed sent to the service (``config.seed``), if any.
        reward_config: the reward config applied (``None``: the service's default scoring).
        initial_observation: the persona's opening message.
        tools: the episode's tool definitions as the service sent them (``None`` in records
            written before they were kept).
        turns: every turn in order.
        total_reward: the sum of the turn rewards (as returned by the env).
        final_reward: the last turn's reward (the score of the whole conversation).
        terminal_reason: why the episode ended (``None`` if it did not end).
        error: an infrastructure failure that cut the episode short; never a reward.
        started_at / duration_s: Unix time of the reset and wall time of the episode.
        library_version / schema_version: what wrote the record.
        extra: free-form fields (e.g. curriculum phase, policy name).
    """

    episode_id: str
    collection: str
    scenario: str
    seed: int | None = None
    reward_config: dict[str, Any] | None = None
    initial_observation: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    turns: list[TurnRecord] = Field(default_factory=list)
    total_reward: float = 0.0
    final_reward: float | None = None
    terminated: bool = False
    truncated: bool = False
    terminal_reason: str | None = None
    error: str | None = None
    started_at: float | None = None
    duration_s: float | None = None
    library_version: str = __version__
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the episode ran without an infrastructure failure."""
        return self.error is None

    @property
    def num_turns(self) -> int:
        """Number of turns played."""
        return len(self.turns)

    def conversation(self) -> list[dict[str, Any]]:
        """The full conversation: opening message, then each turn's messages."""
        messages = [dict(self.initial_observation)] if self.initial_observation else []
        for turn in self.turns:
            messages.extend(dict(m) for m in turn.messages)
        return messages


class JsonlWriter:
    """Appends records to a JSONL file: one line each, flushed and fsynced per record.

    On opening an existing file whose last line is torn (a crash mid-write), the torn tail is
    cut so new records start on a fresh line.

    Args:
        path: the file (created with its parent directories if missing).
        fsync: call ``os.fsync`` after each record (turn off only for throwaway files).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_tail(self.path)
        self._file = self.path.open("ab")
        self._fsync = fsync
        self.records_written = 0

    def write(self, record: BaseModel | dict[str, Any]) -> None:
        """Append one record as a single line and make it durable.

        Raises:
            LabsValidationError: the record holds a ``NaN`` or an infinity (JSON has neither),
                named by its path; nothing is written and the writer stays usable.
        """
        if self._file.closed:
            raise ValueError(f"JsonlWriter for {self.path} is closed")
        # Python mode keeps a NaN where the JSON mode would silently write null.
        data = record.model_dump() if isinstance(record, BaseModel) else record
        self._file.write(encode_line(data, "record", default=to_jsonable_python))
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        self.records_written += 1

    def close(self) -> None:
        """Close the file (idempotent)."""
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _cut_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        # Walk back to the last newline; everything after it is a torn record.
        block = 4096
        position = size
        while position > 0:
            start = max(0, position - block)
            handle.seek(start)
            chunk = handle.read(position - start)
            index = chunk.rfind(b"\n")
            if index >= 0:
                handle.truncate(start + index + 1)
                return
            position = start
        handle.truncate(0)


def iter_trajectories(path: str | os.PathLike[str]) -> Iterator[TrajectoryRecord]:
    """Yield the records of a JSONL file in order.

    A last line without its newline that does not parse (a write cut by a crash) is skipped.

    Raises:
        LabsValidationError: a complete line in the middle of the file is not a valid record
            (its ``field`` is ``"<path>:<line>"``).
    """
    with Path(path).open("rb") as handle:
        lines = handle.read().split(b"\n")
    torn_tail = lines[-1]
    for number, raw in enumerate(lines[:-1], start=1):
        if raw.strip():
            yield _parse(raw, path, number)
    if torn_tail.strip():
        try:
            yield _parse(torn_tail, path, len(lines))
        except ValueError:
            return


def read_trajectories(path: str | os.PathLike[str]) -> list[TrajectoryRecord]:
    """All records of a JSONL file (see :func:`iter_trajectories`)."""
    return list(iter_trajectories(path))


def _parse(raw: bytes, path: str | os.PathLike[str], number: int) -> TrajectoryRecord:
    try:
        return TrajectoryRecord.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise LabsValidationError(
            f"{path}:{number}",
            f"not a trajectory record ({where + ': ' if where else ''}{first['msg']})",
            "repair or delete that line; the other lines are intact",
        ) from None
