"""Calling a policy whether it is sync or async.

The :class:`~labs_env.policies.base.Policy` protocol allows both. Collection code should use
:func:`acall_policy` inside an event loop and :func:`call_policy` outside one. The rule: an
object with an ``acall`` coroutine method (like :class:`~labs_env.policies.OpenAIChatPolicy`)
is awaited through it; otherwise the object is called, and a returned awaitable is awaited.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from labs_env.policies.base import Action, EpisodeContext

__all__ = ["acall_policy", "call_policy", "is_async_policy"]


def is_async_policy(policy: Any) -> bool:
    """True when ``policy`` should be awaited (an ``acall`` coroutine or an async callable)."""
    if inspect.iscoroutinefunction(getattr(policy, "acall", None)):
        return True
    if inspect.iscoroutinefunction(policy):
        return True
    return inspect.iscoroutinefunction(getattr(policy, "__call__", None))  # noqa: B004


async def acall_policy(
    policy: Any, history: Sequence[Mapping[str, Any]], context: EpisodeContext
) -> Action:
    """The policy's action, awaiting it when it is async (sync policies run inline)."""
    acall = getattr(policy, "acall", None)
    if inspect.iscoroutinefunction(acall):
        result: Any = await acall(history, context)
        return result  # type: ignore[no-any-return]
    result = policy(history, context)
    if inspect.isawaitable(result):
        result = await result
    return result  # type: ignore[no-any-return]


def call_policy(
    policy: Any, history: Sequence[Mapping[str, Any]], context: EpisodeContext
) -> Action:
    """The policy's action from sync code; an async policy runs on a private event loop.

    Raises:
        RuntimeError: an async-only policy called from inside a running event loop (use
            :func:`acall_policy` there).
    """
    if callable(policy) and not inspect.iscoroutinefunction(policy):
        result: Any = policy(history, context)
    else:
        result = acall_policy(policy, history, context)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result  # type: ignore[no-any-return]


async def _await(awaitable: Any) -> Action:
    return await awaitable  # type: ignore[no-any-return]
