"""Event-loop plumbing: a private loop on a background thread, and running a coroutine to
completion from sync code.

Both use uvloop when it is installed (its lower per-callback cost matters when hundreds of
requests are in flight) and fall back to the standard loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from labs_env.rollout.policy import aclose_policy

__all__ = ["LoopThread", "blocking", "new_event_loop", "run_inline", "run_sync"]

T = TypeVar("T")
P = ParamSpec("P")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when available, else asyncio's default."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on ``loop`` and let closed transports release their sockets."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks(loop) if t is not current]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_asyncgens()
    for _ in range(3):  # transport.close() releases the socket on a later loop iteration
        await asyncio.sleep(0)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop in this thread and close the loop afterwards.

    Like :func:`asyncio.run` (Python 3.10 compatible), with uvloop when available.

    Raises:
        RuntimeError: called from inside a running event loop (await the coroutine instead).
    """
    if _in_running_loop():
        coro.close()
        raise RuntimeError(
            "called from inside a running event loop: use the async API (await it) instead"
        )
    loop = new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(_finish(loop))
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def run_inline(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (its awaits all complete at once) without a loop.

    The sync env drives the async episode driver this way over a blocking client
    (:class:`~labs_env.rollout.driver.InlineService`).

    Raises:
        RuntimeError: the coroutine suspended (it awaited real asynchronous work).
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("run_inline: the coroutine suspended; it needs an event loop")


def blocking(
    run: Callable[P, Coroutine[Any, Any, T]],
    *,
    name: str,
    doc: str,
    release: tuple[str, ...] = (),
) -> Callable[P, T]:
    """The blocking twin of the async function ``run``: the same parameters (by construction,
    not re-listed), run to completion on a private event loop (:func:`run_sync`).

    Args:
        name: the twin's name; ``doc``: its docstring.
        release: parameters whose values (policies) are released on the private loop before it
            closes, whatever the outcome (see :func:`~labs_env.rollout.policy.aclose_policy`):
            what a policy opened on that loop, e.g. an async HTTP client, dies with it.
    """
    signature = inspect.signature(run)

    def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        bound = signature.bind(*args, **kwargs)
        held = [bound.arguments[key] for key in release if key in bound.arguments]

        async def main() -> T:
            try:
                return await run(*args, **kwargs)
            finally:
                for value in held:
                    await aclose_policy(value)

        return run_sync(main())

    functools.update_wrapper(twin, run)
    twin.__name__ = twin.__qualname__ = name
    twin.__doc__ = doc
    return twin


class LoopThread:
    """One event loop running forever on a daemon thread; submit coroutines from any thread.

    Args:
        name: the thread's name (shown in ``threading.enumerate()``).
    """

    def __init__(self, name: str = "labs-env-loop") -> None:
        self.loop = new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._started.wait()
        self._stopped = False

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        self.loop.run_forever()

    @property
    def thread(self) -> threading.Thread:
        """The loop's thread."""
        return self._thread

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result in the calling thread.

        If the wait is interrupted (``KeyboardInterrupt``), the coroutine is cancelled and
        allowed to unwind before the interruption propagates.
        """
        if self._stopped:
            coro.close()
            raise RuntimeError("the event loop thread is stopped")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("LoopThread.run() called from its own loop thread")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()
                with contextlib.suppress(BaseException):
                    concurrent.futures.wait([future], timeout=10.0)
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel leftover tasks, stop the loop, join the thread, close the loop (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(_finish(self.loop), self.loop)
            with contextlib.suppress(BaseException):
                done.result(timeout)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()
