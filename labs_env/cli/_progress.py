"""A small stdlib progress bar for the command line (drawn on stderr)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``[#####.....]  5/10  label  3.2s`` redrawn in place on a terminal.

    On a non-terminal stream it stays silent until :meth:`close`, which prints one summary
    line, so logs are not flooded with carriage returns.
    """

    def __init__(
        self, total: int, *, width: int = 30, stream: TextIO | None = None, label: str = ""
    ) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.width = width
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self._started = time.perf_counter()
        self._interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._closed = False

    def line(self) -> str:
        """The bar as text."""
        filled = int(self.width * min(self.done, self.total) / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self._started
        count = f"{self.done:>{len(str(self.total))}}/{self.total}"
        return f"[{bar}] {count}  {self.label}  {elapsed:.1f}s"

    def advance(self, steps: int = 1, *, label: str | None = None) -> None:
        """Count ``steps`` more units of work and redraw."""
        self.done += steps
        if label is not None:
            self.label = label
        if self._interactive:
            self.stream.write("\r\x1b[2K" + self.line())
            self.stream.flush()

    def close(self) -> None:
        """Finish the line (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.stream.write(("\r\x1b[2K" if self._interactive else "") + self.line() + "\n")
        self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
