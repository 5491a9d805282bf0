"""Custom Gymnasium spaces for conversations.

Gymnasium's ``Text`` rejects ordinary prose (its default charset has no punctuation) and
``Dict`` demands exact keys, so a chat env needs its own small spaces:

- :class:`Unicode` — any ``str`` (optionally bounded in length);
- :class:`MessageHistory` — a tuple of chat message dicts (the observation);
- :class:`AgentAction` — the agent's action: a string, or a mapping with ``content`` and
  ``tool_calls`` (the action space).

All three have working ``contains``, ``sample`` and ``__eq__``. Batching for vector envs follows
Gymnasium's rules for custom spaces: ``batch_space`` gives a ``Tuple`` of copies,
``concatenate`` a tuple of items, ``iterate`` iterates that tuple, and ``create_empty_array``
gives ``None``; ``batch_differing_spaces`` is registered here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from copy import deepcopy
from typing import Any

import numpy as np
from gymnasium.spaces import Space, Tuple
from gymnasium.vector.utils import batch_differing_spaces

from labs_env.models import MAX_MESSAGE_CHARS

__all__ = ["AgentAction", "MessageHistory", "Unicode"]

_VOCABULARY = (
    "the claim policy customer order account refund delivery invoice team report issue "
    "details update date number payment status request review question answer problem "
    "could you please share tell me about when what which how why thanks understood "
    "I we can will need check confirm explain help look into follow up"
)
_WORDS = tuple(_VOCABULARY.split())
_ROLES = ("user", "assistant", "system")
_CALL_TYPES = ("artifact", "decision")


def _prose(rng: np.random.Generator, max_length: int | None, min_length: int = 0) -> str:
    """A few short sentences of plain English (random words, punctuation, capitals)."""
    sentences = []
    for _ in range(int(rng.integers(1, 4))):
        words = [str(w) for w in rng.choice(_WORDS, size=int(rng.integers(3, 10)))]
        sentences.append(" ".join(words).capitalize() + str(rng.choice([".", "?", "!", ","])))
    text = " ".join(sentences)
    while len(text) < min_length:
        text += " " + str(rng.choice(_WORDS))
    return text if max_length is None else text[:max_length]


class Unicode(Space[str]):
    """Any Python ``str`` whose length is within ``[min_length, max_length]``.

    Example:
        >>> space = Unicode(max_length=10_000)
        >>> "Hello, world! Ça va?" in space, b"bytes" in space
        (True, False)
    """

    def __init__(
        self, max_length: int | None = None, *, min_length: int = 0, seed: int | None = None
    ) -> None:
        if min_length < 0 or (max_length is not None and max_length < min_length):
            raise ValueError(f"bad length bounds: min {min_length}, max {max_length}")
        self.max_length = max_length
        self.min_length = min_length
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        """Text is not flattenable to a fixed-size array."""
        return False

    def contains(self, x: Any) -> bool:
        """``isinstance(x, str)`` within the length bounds."""
        if not isinstance(x, str) or len(x) < self.min_length:
            return False
        return self.max_length is None or len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A few sentences of prose, within the length bounds."""
        return _prose(self.np_random, self.max_length, self.min_length)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Unicode)
            and self.max_length == other.max_length
            and self.min_length == other.min_length
        )

    def __hash__(self) -> int:
        return hash((Unicode, self.max_length, self.min_length))

    def __repr__(self) -> str:
        return f"Unicode(max_length={self.max_length}, min_length={self.min_length})"


def _is_tool_call(call: Any) -> bool:
    return (
        isinstance(call, Mapping)
        and isinstance(call.get("name"), str)
        and isinstance(call.get("input"), Mapping)
        and call.get("type", "artifact") in _CALL_TYPES
    )


def _is_message(message: Any, max_chars: int, roles: Sequence[str]) -> bool:
    if not isinstance(message, Mapping) or message.get("role") not in roles:
        return False
    content = message.get("content")
    if not isinstance(content, str) or len(content) > max_chars:
        return False
    calls = message.get("tool_calls")
    if calls is None:
        return True
    return isinstance(calls, (list, tuple)) and all(_is_tool_call(c) for c in calls)


class MessageHistory(Space[tuple[dict[str, Any], ...]]):
    """A conversation: a tuple of message dicts ``{"role", "content", "tool_calls"?}``.

    Args:
        max_messages: longest allowed history (``None``: unbounded).
        max_content_length: per-message character limit (the service's is 10,000).
        roles: allowed roles.

    Example:
        >>> space = MessageHistory()
        >>> ({"role": "user", "content": "Hi! Who's calling?"},) in space
        True
    """

    def __init__(
        self,
        max_messages: int | None = None,
        *,
        max_content_length: int = MAX_MESSAGE_CHARS,
        roles: Sequence[str] = _ROLES,
        seed: int | None = None,
    ) -> None:
        self.max_messages = max_messages
        self.max_content_length = max_content_length
        self.roles = tuple(roles)
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        """A conversation is not flattenable to a fixed-size array."""
        return False

    def contains(self, x: Any) -> bool:
        """A tuple (or list) of well-formed messages, within the length bound."""
        if not isinstance(x, (tuple, list)):
            return False
        if self.max_messages is not None and len(x) > self.max_messages:
            return False
        return all(_is_message(m, self.max_content_length, self.roles) for m in x)

    def sample(self, mask: Any = None, probability: Any = None) -> tuple[dict[str, Any], ...]:
        """A short alternating persona/agent conversation of prose, starting with the persona."""
        rng = self.np_random
        upper = 6 if self.max_messages is None else min(6, self.max_messages)
        count = int(rng.integers(1, upper + 1)) if upper >= 1 else 0
        talking: list[str] = [r for r in ("user", "assistant") if r in self.roles]
        talking = talking or list(self.roles)
        return tuple(
            {
                "role": talking[i % len(talking)],
                "content": _prose(rng, self.max_content_length),
            }
            for i in range(count)
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MessageHistory)
            and self.max_messages == other.max_messages
            and self.max_content_length == other.max_content_length
            and self.roles == other.roles
        )

    def __hash__(self) -> int:
        return hash((MessageHistory, self.max_messages, self.max_content_length, self.roles))

    def __repr__(self) -> str:
        return (
            f"MessageHistory(max_messages={self.max_messages}, "
            f"max_content_length={self.max_content_length})"
        )


class AgentAction(Space[Any]):
    """The agent's action: a message string, or ``{"content": str, "tool_calls": [...]}``.

    ``contains`` checks the shape only (a call has a ``name`` string and an ``input``
    mapping); which tool ids exist depends on the episode and is checked by the env.
    ``sample`` returns a string of prose.
    """

    def __init__(self, max_length: int = MAX_MESSAGE_CHARS, *, seed: int | None = None) -> None:
        self.max_length = max_length
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        """An action is not flattenable to a fixed-size array."""
        return False

    def contains(self, x: Any) -> bool:
        """A string, or a mapping with string ``content`` and well-formed ``tool_calls``."""
        if isinstance(x, str):
            return len(x) <= self.max_length
        if not isinstance(x, Mapping) or set(x) - {"content", "tool_calls", "role"}:
            return False
        if x.get("role", "assistant") != "assistant":
            return False
        return _is_message({**x, "role": "assistant"}, self.max_length, ("assistant",))

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A message of prose."""
        return _prose(self.np_random, self.max_length)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AgentAction) and self.max_length == other.max_length

    def __hash__(self) -> int:
        return hash((AgentAction, self.max_length))

    def __repr__(self) -> str:
        return f"AgentAction(max_length={self.max_length})"


def _batch_differing(spaces: Sequence[Space[Any]]) -> Tuple:  # type: ignore[type-arg]
    return Tuple([deepcopy(space) for space in spaces], seed=deepcopy(spaces[0].np_random))


# ``batch_differing_spaces`` dispatches on the type of the first space in the list.
for _space_type in (Unicode, MessageHistory, AgentAction):
    batch_differing_spaces.register(_space_type, _batch_differing)
