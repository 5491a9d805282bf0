"""Which event loop a vector env's requests run on.

The sync API (``reset``/``step``) runs them on a private :class:`LoopThread`; the async API
(``areset``/``astep``) on the caller's running loop. The first call decides; mixing raises a
clear error. A loop that is gone (an earlier ``asyncio.run`` finished) may be replaced by a new
one. Calls are exclusive: a second reset/step while one runs is refused, and a call cancelled
by ``close`` raises ``ClosedEnvironmentError``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any

import gymnasium as gym

from labs_env.rollout.event_loop import LoopThread

__all__ = ["LoopBinding"]

_CLOSED = "the LabsVectorEnv was closed during this call"


class LoopBinding:
    """The loop (or loop thread) an env is bound to.

    Args:
        thread_name: the name of the private loop thread.
        on_rebind: called when the env moves to a new loop (drop loop-bound objects).
        wrap: wraps each call's coroutine (the engine registers it for cancellation).
    """

    def __init__(
        self,
        thread_name: str,
        on_rebind: Callable[[], None],
        wrap: Callable[[Coroutine[Any, Any, Any]], Coroutine[Any, Any, Any]],
    ) -> None:
        self.thread: LoopThread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        self._thread_name = thread_name
        self._on_rebind = on_rebind
        self._wrap = wrap
        self._busy = False

    def running_elsewhere(self) -> bool:
        """Whether the bound loop is alive and running (the async API's loop)."""
        loop = self.loop
        return loop is not None and not loop.is_closed() and loop.is_running()

    def run_sync(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the private loop thread (started on first use); wait for it."""
        if self.thread is None:
            if self.loop is not None and not self.loop.is_closed():
                coro.close()
                raise RuntimeError(
                    "this LabsVectorEnv is used with the async API (areset/astep); "
                    "keep using it, or make another env for the sync API"
                )
            self._on_rebind()
            self.thread = LoopThread(self._thread_name)
            self.loop = self.thread.loop
        try:
            return self.thread.run(self.guarded(coro))
        except (asyncio.CancelledError, concurrent.futures.CancelledError):
            if self.closing:
                raise gym.error.ClosedEnvironmentError(_CLOSED) from None
            raise

    def bind_async(self) -> None:
        """Bind to the running loop (the async API); refuse if the sync API is in use."""
        loop = asyncio.get_running_loop()
        if self.thread is not None:
            raise RuntimeError(
                "this LabsVectorEnv is used with the sync API (reset/step); its requests run on "
                "its own loop thread — make another env for the async API"
            )
        if self.loop is not loop:
            if self.running_elsewhere():
                raise RuntimeError("this LabsVectorEnv is bound to another running event loop")
            self._on_rebind()  # a previous loop (e.g. an earlier asyncio.run) is gone
            self.loop = loop

    async def guarded(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run one exclusive call."""
        if self._busy:
            coro.close()
            raise RuntimeError("another reset/step of this LabsVectorEnv is still running")
        self._busy = True
        try:
            return await self._wrap(coro)
        except asyncio.CancelledError:
            if self.closing:  # cancelled by close(): say so
                raise gym.error.ClosedEnvironmentError(_CLOSED) from None
            raise
        finally:
            self._busy = False
