"""The policy protocol and how it is called: a (sync or async) callable from the conversation
and an :class:`EpisodeContext` to an action.

Collection code should use :func:`acall_policy` inside an event loop and :func:`call_policy`
outside one. The rule: an object with an ``acall`` coroutine method (like
:class:`~labs_env.policies.OpenAIChatPolicy`) is awaited through it; otherwise the object is
called, and a returned awaitable is awaited.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeGuard

from labs_env.models import ToolDefinition

__all__ = [
    "Action",
    "EpisodeContext",
    "Policy",
    "acall_policy",
    "aclose_policy",
    "call_policy",
    "is_async_policy",
    "is_policy",
]

#: What a policy returns: the agent's message text, or a mapping
#: ``{"content": str, "tool_calls": [{"name": tool_id, "input": {...}}]}``.
Action = str | Mapping[str, Any]


@dataclass(frozen=True)
class EpisodeContext:
    """What a client legitimately knows about the running episode (nothing the service hides).

    Attributes:
        collection: collection slug.
        scenario: scenario slug.
        tools: the tools the episode offers (from create-episode).
        description: the scenario's catalog description ("" if unknown).
        turn: number of turns already submitted in this episode.
        max_turns: the scenario's turn limit, if the catalog states one.
        episode_id: the service's episode id.
        seed: the seed the episode was reset with, if any.
    """

    collection: str
    scenario: str
    tools: tuple[ToolDefinition, ...] = ()
    description: str = ""
    turn: int = 0
    max_turns: int | None = None
    episode_id: str = ""
    seed: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Policy(Protocol):
    """``policy(history, context) -> action`` (or an awaitable of an action).

    ``history`` is the conversation so far as chat messages (persona = ``user``, agent =
    ``assistant``), exactly the env's observation.
    """

    def __call__(
        self, history: Sequence[Mapping[str, Any]], context: EpisodeContext
    ) -> Action | Awaitable[Action]: ...


def is_policy(value: object) -> TypeGuard[Policy]:
    """Whether ``value`` can be called as a policy (an ``on_workers``/``on_driver`` placement
    of :mod:`labs_env.distributed`, or a spec string, cannot)."""
    return callable(value) or inspect.iscoroutinefunction(getattr(value, "acall", None))


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


async def aclose_policy(policy: Any) -> None:
    """Release what a policy opened on the running loop (its ``aclose``), if it has any."""
    aclose = getattr(policy, "aclose", None)
    if inspect.iscoroutinefunction(aclose):
        await aclose()
