"""Wait for a condition instead of sleeping: poll it until it holds or a deadline passes.

A test that sleeps "long enough" is slow when the machine is fast and flaky when it is slow;
these return as soon as the condition holds and fail loudly (``AssertionError``) if it never
does within ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

DEADLINE = 10.0


def wait_until(condition: Callable[[], object], timeout: float = DEADLINE) -> None:
    """Block this thread until ``condition()`` is true (polled every few milliseconds)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        pause.wait(0.005)


async def until(condition: Callable[[], object], timeout: float = DEADLINE) -> None:
    """Yield to the running event loop until ``condition()`` is true.

    Each pass lets the loop run its ready callbacks and poll its sockets once
    (``asyncio.sleep(0)``), so what the condition waits for — a reply, a closed connection —
    is processed between two checks.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0)
