"""A random baseline: short random messages and random tool calls at random turns.

It is the floor every real policy should beat, and a cheap source of varied trajectories for
exercising a pipeline.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

from labs_env.errors import LabsValidationError
from labs_env.models import ToolDefinition
from labs_env.policies._schema_sample import sample_from_schema
from labs_env.rollout.actions import tool_call_type
from labs_env.rollout.policy import Action, EpisodeContext

__all__ = ["RandomPolicy"]

_OPENERS = ("Hello.", "Thanks.", "I see.", "Okay.", "Understood.", "Right.", "Sure.")
_ASKS = (
    "Can you tell me more?",
    "What happened next?",
    "Could you share the details?",
    "When did this start?",
    "What would you like me to do?",
    "Is there anything else?",
    "Let me check that for you.",
    "I will look into it.",
)


class RandomPolicy:
    """A random baseline policy, deterministic per seed.

    Each turn it writes one or two short stock sentences and, with probability
    ``tool_probability``, calls one of the episode's tools chosen at random: a decision tool
    with a random option, an artifact tool with a random object shaped by its ``json_schema``.

    The randomness of a turn is derived from ``seed``, the episode (collection, scenario,
    episode seed) and the conversation so far, never from call order: concurrent or
    reordered episodes give the same actions, and the same ``(seed, context, history)`` always
    gives the same action.

    Args:
        seed: the policy's seed.
        tool_probability: chance of a tool call on a given turn, in [0, 1].

    Example:
        >>> from labs_env.policies import EpisodeContext, RandomPolicy
        >>> policy = RandomPolicy(seed=1)
        >>> history = [{"role": "user", "content": "Hi, I need help."}]
        >>> ctx = EpisodeContext(collection="c", scenario="s")
        >>> policy(history, ctx) == RandomPolicy(seed=1)(history, ctx)
        True
    """

    def __init__(self, seed: int = 0, *, tool_probability: float = 0.3) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise LabsValidationError("seed", f"must be an int, got {seed!r}", "pass e.g. seed=0")
        if not 0.0 <= tool_probability <= 1.0:
            raise LabsValidationError(
                "tool_probability", f"must be in [0, 1], got {tool_probability!r}"
            )
        self.seed = seed
        self.tool_probability = float(tool_probability)

    def __repr__(self) -> str:
        return f"RandomPolicy(seed={self.seed}, tool_probability={self.tool_probability})"

    def __call__(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> Action:
        """The action for this turn: ``{"content": str, "tool_calls": [...]}``."""
        rng = random.Random(self._turn_seed(history, context))
        sentences = [rng.choice(_OPENERS), rng.choice(_ASKS)][: rng.randint(1, 2)]
        tool_calls: list[dict[str, Any]] = []
        usable = [tool for tool in context.tools if _is_callable(tool)]
        if usable and rng.random() < self.tool_probability:
            tool_calls.append(_random_call(rng.choice(usable), rng))
        return {"content": " ".join(sentences), "tool_calls": tool_calls}

    def _turn_seed(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> int:
        digest = hashlib.blake2b(digest_size=8)
        parts = [str(self.seed), context.collection, context.scenario, str(context.seed)]
        parts += [f"{m.get('role', '')}:{m.get('content', '')}" for m in history]
        for part in parts:
            digest.update(part.encode("utf-8", "replace"))
            digest.update(b"\x00")
        return int.from_bytes(digest.digest(), "big")


def _is_callable(tool: ToolDefinition) -> bool:
    return bool(tool.options) or isinstance(tool.json_schema, dict)


def _random_call(tool: ToolDefinition, rng: random.Random) -> dict[str, Any]:
    if tool.options:
        payload: dict[str, Any] = {"value": rng.choice(tool.options)}
        return {"type": tool_call_type(tool), "name": tool.id, "input": payload}
    value = sample_from_schema(tool.json_schema or {}, rng)
    payload = value if isinstance(value, dict) else {"value": value}
    return {"type": tool_call_type(tool), "name": tool.id, "input": payload}
