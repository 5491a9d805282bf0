"""The output directory of an evaluation run: files, resume state, settings check.

Layout (all written by :func:`~labs_env.evaluation.harness.evaluate_policy`):

- ``trajectories.jsonl``: one :class:`~labs_env.TrajectoryRecord` per finished
  episode (the recorder's format); ``extra["spec_key"]`` names the episode spec it ran.
- ``errors.jsonl``: episodes cut short by an error — the service or the network, the
  policy, a time limit (same format, ``error`` set). They are retried on the next run and
  never averaged into a result.
- ``run.json``: the run's settings; a rerun must use the same policy and reward config.
- ``summary.json`` and ``report.md``: rewritten at the end of every run over everything the
  directory holds, each episode spec once (:meth:`RunDir.results`).
- ``run.lock``: held by the run writing to the directory (see
  :mod:`labs_env.evaluation.run_lock`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labs_env.errors import LabsValidationError
from labs_env.rollout.collection import completed_keys
from labs_env.rollout.strict_json import dumps
from labs_env.rollout.trajectory import TrajectoryRecord, read_trajectories

__all__ = ["SPEC_KEY_FIELD", "RunDir"]

#: The ``extra`` field of a record that holds its episode spec's key.
SPEC_KEY_FIELD = "spec_key"
#: Settings that must match for a rerun to append to the same directory.
_FIXED_SETTINGS = ("policy", "reward_config")


class RunDir:
    """One evaluation run's directory.

    Args:
        path: the directory (created if missing).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise LabsValidationError("out_dir", f"{self.path} is not a directory", "")
        self.trajectories = self.path / "trajectories.jsonl"
        self.errors = self.path / "errors.jsonl"
        self.settings_file = self.path / "run.json"
        self.summary = self.path / "summary.json"
        self.report = self.path / "report.md"
        #: Records ignored by the last :meth:`results` as repeats of an episode spec.
        self.duplicates = 0

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        """Refuse to append to a run made with another policy or reward config; record them.

        Raises:
            LabsValidationError: the directory holds a run with different settings.
        """
        if self.settings_file.exists():
            try:
                previous = json.loads(self.settings_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise LabsValidationError(
                    "out_dir", f"{self.settings_file} is unreadable ({exc})", "use a new --out"
                ) from None
            for name in _FIXED_SETTINGS:
                if name in previous and previous[name] != settings.get(name):
                    raise LabsValidationError(
                        "out_dir",
                        f"{self.path} holds a run with {name}={previous[name]!r}, not "
                        f"{settings.get(name)!r}; its episodes would be mixed into one result",
                        "use a new output directory for a different policy or reward config",
                    )
        text = dumps(dict(settings), "settings", indent=2, sort_keys=True)
        self.path.mkdir(parents=True, exist_ok=True)
        self.settings_file.write_text(text + "\n", encoding="utf-8")

    def finished_keys(self) -> set[str]:
        """Spec keys of the episodes already finished (errored ones are not finished)."""
        return completed_keys(self.trajectories)

    def results(self) -> list[TrajectoryRecord]:
        """The finished episodes, one per episode spec: when a spec was played twice (two
        runs on one directory before it was locked, a file appended by hand), the first
        record in the file (the first to finish) wins and the others are ignored (counted in
        :attr:`duplicates`). Records without a spec key are all kept."""
        if not self.trajectories.exists():
            return []
        kept: list[TrajectoryRecord] = []
        seen: set[str] = set()
        self.duplicates = 0
        for record in read_trajectories(self.trajectories):
            key = spec_key(record)
            if key is not None and key in seen:
                self.duplicates += 1
                continue
            if key is not None:
                seen.add(key)
            kept.append(record)
        return kept

    def open_errors(self) -> list[TrajectoryRecord]:
        """The latest failed attempt of each spec that has not finished since."""
        if not self.errors.exists():
            return []
        finished = self.finished_keys()
        latest: dict[str, TrajectoryRecord] = {}
        unkeyed: list[TrajectoryRecord] = []
        for record in read_trajectories(self.errors):
            key = spec_key(record)
            if key is None:
                unkeyed.append(record)
            elif key not in finished:
                latest[key] = record
        return unkeyed + list(latest.values())

    def records(self) -> list[TrajectoryRecord]:
        """What the summary covers: the finished episodes, then the open errors."""
        return self.results() + self.open_errors()


def spec_key(record: TrajectoryRecord) -> str | None:
    """The spec key stored in a record's ``extra`` (``None`` if absent)."""
    key = record.extra.get(SPEC_KEY_FIELD)
    return key if isinstance(key, str) else None
