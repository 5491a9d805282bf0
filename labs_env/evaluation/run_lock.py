"""One run at a time per run directory: ``run.lock`` names the holder and is locked by it.

Two processes evaluating into the same directory would both play every episode and append to
the same files. :class:`RunLock` takes an exclusive lock of the operating system on
``<dir>/run.lock`` and writes the holder into it (pid, host, start time); a second run finds the
lock taken and refuses with :class:`RunLockedError` naming the holder. The operating system
releases the lock when its process ends, however it ends: the lock of a dead run (``kill -9``,
a crash) is taken over by the next run, which only overwrites the stale holder.

Example:
    >>> import tempfile
    >>> with RunLock(tempfile.mkdtemp()) as lock:
    ...     lock.holder["pid"] == os.getpid()
    True
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from labs_env.errors import LabsValidationError

__all__ = ["LOCK_FILE", "RunLock", "RunLockedError"]

#: The lock file in a run directory.
LOCK_FILE = "run.lock"

_log = logging.getLogger("labs_env")


class RunLockedError(LabsValidationError):
    """Another run holds the directory. ``holder``: its pid, host and start time (as written)."""

    def __init__(self, directory: Path, holder: dict[str, Any]) -> None:
        self.holder = holder
        who = (
            f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
            f"started {holder.get('started_at', '?')}"
        )
        super().__init__(
            "out_dir",
            f"{directory} is in use by another run ({who})",
            "wait for that run to end, or write this one to another directory",
        )


class RunLock:
    """The exclusive lock of a run directory (a context manager; :meth:`acquire` /
    :meth:`release` otherwise).

    Args:
        directory: the run directory (created if missing).

    Raises:
        RunLockedError: another run holds it (from :meth:`acquire`).
        LabsValidationError: the directory cannot be created or written.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self.holder: dict[str, Any] = {}
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock (refusing when another run holds it)."""
        if self._fd is not None:
            return self
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LabsValidationError(
                "out_dir",
                f"cannot write to {self.directory} ({exc.strerror or exc})",
                "choose a directory you can write to",
            ) from None
        if not _try_lock(fd):
            holder = _read(fd)
            os.close(fd)
            raise RunLockedError(self.directory, holder)
        stale = _read(fd)
        if stale:
            _log.warning("taking over the lock of an ended run in %s: %s", self.directory, stale)
        self.holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        _write(fd, json.dumps(self.holder).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (idempotent); the file stays, emptied, for the next run."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _write(fd, b"")
        finally:
            os.close(fd)  # closing the file releases the lock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    """An exclusive, non-blocking lock of the operating system (released with the process)."""
    if sys.platform == "win32":  # pragma: no cover - locks one byte far past the holder text
        import msvcrt

        os.lseek(fd, 1 << 20, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _read(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 65536)
    try:
        holder = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"unreadable": raw[:80].decode("utf-8", "replace")}
    return holder if isinstance(holder, dict) else {}


def _write(fd: int, data: bytes) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)
    os.fsync(fd)
