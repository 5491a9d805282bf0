"""The policy protocol: a (sync or async) callable from conversation + context to an action."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from labs_env.models import ToolDefinition

__all__ = ["Action", "EpisodeContext", "Policy"]

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
