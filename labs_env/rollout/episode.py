"""The sans-IO episode core shared by :class:`~labs_env.LabsEnv` and the vector env.

An :class:`Episode` holds one Labs episode's state — the conversation (persona as ``user``,
agent as ``assistant``, tool calls on the assistant message), the tools, the turns submitted —
and does everything except I/O:

1. :meth:`Episode.build_turn` turns an action into the full message list to submit,
   raising :class:`~labs_env.errors.LabsValidationError` for mistakes before anything is sent;
2. the caller sends it (sync or async client, its choice);
3. :meth:`Episode.apply` turns the service's :class:`~labs_env.models.TurnResult` into a
   :class:`Transition` ``(observation, reward, terminated, truncated, info)``, raising
   :class:`~labs_env.errors.TurnMismatchError` when the service's turn counter shows that an
   earlier, seemingly lost submission was committed (a duplicate would fork the trajectory).

Terminal reasons map to Gymnasium's flags: ``completed`` and ``error`` → ``terminated``;
``max_turns_reached`` and ``client_terminated`` → ``truncated``; an unknown reason (the service
may add some) → ``terminated``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from labs_env.errors import APIResponseValidationError, LabsValidationError, TurnMismatchError
from labs_env.models import (
    EncodedMessages,
    EpisodeCreated,
    Message,
    RewardConfig,
    ToolDefinition,
    TurnResult,
    is_plain_json,
    json_problem,
)
from labs_env.rollout.actions import action_generation, action_to_message
from labs_env.rollout.generation import Generation
from labs_env.rollout.planning import EpisodePlan
from labs_env.rollout.policy import EpisodeContext

__all__ = [
    "TERMINATED_REASONS",
    "TRUNCATED_REASONS",
    "Episode",
    "History",
    "Transition",
    "TurnSummary",
    "end_flags",
    "flatten_scores",
]

#: The env observation: the conversation so far as chat-message dicts (fresh objects each call).
History = tuple[dict[str, Any], ...]

#: Terminal reasons reported as ``terminated`` (the task itself ended).
TERMINATED_REASONS = frozenset({"completed", "error"})
#: Terminal reasons reported as ``truncated`` (cut short from outside the task).
TRUNCATED_REASONS = frozenset({"max_turns_reached", "client_terminated"})


@dataclass(frozen=True)
class Transition:
    """What one step returns, in Gymnasium's order (see :meth:`as_tuple`)."""

    observation: tuple[dict[str, Any], ...]
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    #: What produced the agent's message, when the policy said (see ``Generation``).
    generation: Generation | None = None

    def as_tuple(self) -> tuple[tuple[dict[str, Any], ...], float, bool, bool, dict[str, Any]]:
        """``(observation, reward, terminated, truncated, info)``."""
        return self.observation, self.reward, self.terminated, self.truncated, self.info


def end_flags(episode_complete: bool, terminal_reason: str | None) -> tuple[bool, bool]:
    """``(terminated, truncated)`` for a turn result.

    Example:
        >>> end_flags(True, "max_turns_reached"), end_flags(True, "completed")
        ((False, True), (True, False))
    """
    if not episode_complete:
        return False, False
    if terminal_reason in TRUNCATED_REASONS:
        return False, True
    return True, False


def flatten_scores(scores: Mapping[str, Any] | None) -> dict[str, float]:
    """Numeric score leaves as floats, nested dimensions joined with dots.

    Non-numeric leaves (text, lists, booleans, ``None``) are dropped: the result is always a
    ``dict[str, float]`` so vector envs can batch it.

    Example:
        >>> flatten_scores({"D1": 1, "rubrics": {"score": 0.7, "criteria": {"tone": 0.5}}})
        {'D1': 1.0, 'rubrics.score': 0.7, 'rubrics.criteria.tone': 0.5}
    """
    flat: dict[str, float] = {}
    _flatten_into(flat, "", scores or {})
    return flat


def _flatten_into(flat: dict[str, float], prefix: str, value: Any) -> None:
    # A module-level function, not a recursive closure: a closure that calls itself is a
    # reference cycle, left for the garbage collector on every turn.
    if type(value) is dict or isinstance(value, Mapping):  # dict first: ABC checks are slow
        for key, item in value.items():
            _flatten_into(flat, f"{prefix}.{key}" if prefix else str(key), item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        flat[prefix] = float(value)


@dataclass(frozen=True)
class TurnSummary:
    """Per-turn bookkeeping kept for rendering and recording."""

    turn: int
    reward: float
    scores: dict[str, float]
    terminal_reason: str | None


class Episode:
    """State and logic of one episode, without I/O (see the module docstring).

    Args:
        collection: collection slug.
        scenario: scenario slug.
        created: the service's answer to create-episode.
        seed: the episode seed sent as ``config.seed`` (``None`` if none was sent).
        reward_config: the config sent with each turn (assignable between turns).
        validate_tool_calls: also reject semantically wrong tool calls (an option the tool does
            not offer, input against the tool's JSON schema) instead of letting the service
            penalise them.
    """

    def __init__(
        self,
        *,
        collection: str,
        scenario: str,
        created: EpisodeCreated,
        seed: int | None = None,
        reward_config: RewardConfig | None = None,
        validate_tool_calls: bool = False,
    ) -> None:
        self.collection = collection
        self.scenario = scenario
        self.episode_id = created.episode_id
        self.tools: tuple[ToolDefinition, ...] = tuple(created.tools)
        self.seed = seed
        self.reward_config = reward_config
        self.validate_tool_calls = validate_tool_calls
        self.reset_request_id = created.request_id
        self.turns: list[TurnSummary] = []
        self.terminal_reason: str | None = None
        self.done = False
        self.total_reward = 0.0
        first = {"role": "user", "content": created.initial_observation.content}
        self._history: list[dict[str, Any]] = [first]
        # The history as the request sends it, with its JSON: a turn body costs the new
        # message's encoding, not the whole history's.
        self._wire = EncodedMessages([Message(role="user", content=first["content"])])
        self._pending: tuple[dict[str, Any], EncodedMessages, Generation | None] | None = None

    @classmethod
    def begin(
        cls, plan: EpisodePlan, created: EpisodeCreated, *, validate_tool_calls: bool = False
    ) -> Episode:
        """The episode the service created for ``plan``."""
        return cls(
            collection=plan.collection,
            scenario=plan.scenario,
            created=created,
            seed=plan.seed,
            reward_config=plan.reward_config,
            validate_tool_calls=validate_tool_calls,
        )

    # ------------------------------------------------------------------ views

    @property
    def turn(self) -> int:
        """Turns submitted and answered so far."""
        return len(self.turns)

    def observation(self) -> tuple[dict[str, Any], ...]:
        """The conversation as a tuple of fresh message dicts (never shared with the caller)."""
        # Only tool-call inputs nest; copying just them is ~15x cheaper than a deepcopy of the
        # whole history, which dominated the vector env's CPU per step.
        return tuple(
            [m.copy() if "tool_calls" not in m else _copy_message(m) for m in self._history]
        )

    def tool_dicts(self) -> list[dict[str, Any]]:
        """The episode's tools as fresh plain dicts."""
        return [tool.model_dump(exclude_none=True) for tool in self.tools]

    def reward_config_dict(self) -> dict[str, Any] | None:
        """The active reward config as a fresh dict (``None``: the service's default scoring)."""
        return None if self.reward_config is None else self.reward_config.model_dump()

    def reset_info(self) -> dict[str, Any]:
        """The ``info`` returned by ``reset``."""
        return {
            "episode_id": self.episode_id,
            "turn": 0,
            "collection": self.collection,
            "scenario": self.scenario,
            "seed": self.seed,
            "tools": self.tool_dicts(),
            "reward_config": self.reward_config_dict(),
            "request_id": self.reset_request_id,
        }

    def context(self, *, description: str = "", max_turns: int | None = None) -> EpisodeContext:
        """What a policy may know about this episode (see :class:`EpisodeContext`)."""
        return EpisodeContext(
            collection=self.collection,
            scenario=self.scenario,
            tools=self.tools,
            description=description,
            turn=self.turn,
            max_turns=max_turns,
            episode_id=self.episode_id,
            seed=self.seed,
        )

    # ------------------------------------------------------------------ the turn cycle

    def build_turn(self, action: Any) -> EncodedMessages:
        """Validate ``action`` and return the full message list to submit (with its request
        encoding, see :class:`~labs_env.models.EncodedMessages`).

        The new assistant message is held as pending until :meth:`apply` accepts the service's
        answer; if sending fails, the history is unchanged and the step may be retried.

        Raises:
            LabsValidationError: the action is malformed (or, with ``validate_tool_calls``,
                a tool call is semantically wrong). Nothing was sent.
        """
        message = action_to_message(action, self.tools, validate=self.validate_tool_calls)
        generation = action_generation(action)
        try:
            wire = Message.model_validate(message)
        except ValidationError as exc:  # pragma: no cover - action_to_message checks first
            raise LabsValidationError("action", str(exc)) from None
        turn = self._wire.extended(wire)
        self._pending = (message, turn, generation)
        return turn

    def apply(self, result: TurnResult) -> Transition:
        """Accept the service's answer to the pending turn.

        Raises:
            TurnMismatchError: the service's ``turn`` is not ``turns submitted + 1``; the
                episode is marked done and must be reset.
            RuntimeError: no turn is pending (``build_turn`` was not called).
        """
        if self._pending is None:
            raise RuntimeError("apply() called without a pending turn; call build_turn() first")
        message, turn, generation = self._pending
        self._pending = None
        expected = self.turn + 1
        if result.turn != expected:
            self.done = True
            raise TurnMismatchError(
                f"episode {self.episode_id}: the service reports turn {result.turn} but this "
                f"client has submitted {expected} turn(s); an earlier submission whose response "
                "was lost was committed, so this one is a duplicate and the trajectory would "
                "fork. Abandon the episode and reset.",
                request_id=result.request_id,
            )
        scores, breakdown = self._checked_scores(result)
        reply = {"role": "user", "content": result.observation.content}
        self._history += [message, reply]
        self._wire = turn.extended(Message(role="user", content=reply["content"]))
        terminated, truncated = end_flags(result.episode_complete, result.terminal_reason)
        reward = float(result.reward)
        self.total_reward += reward
        self.turns.append(TurnSummary(result.turn, reward, scores, result.terminal_reason))
        info: dict[str, Any] = {
            "episode_id": self.episode_id,
            "turn": result.turn,
            "collection": self.collection,
            "scenario": self.scenario,
            "scores": scores,
            "reward_config": self.reward_config_dict(),
            "request_id": result.request_id,
        }
        if breakdown is not None:
            info["score_breakdown"] = breakdown
        if generation is not None:
            info["generation"] = generation.summary()
            if generation.cut_by_length:
                info["reply_cut_by_length"] = True
        if terminated or truncated:
            self.done = True
            self.terminal_reason = result.terminal_reason or "completed"
            info["terminal_reason"] = self.terminal_reason
        return Transition(self.observation(), reward, terminated, truncated, info, generation)

    def _checked_scores(self, result: TurnResult) -> tuple[dict[str, float], dict[str, Any] | None]:
        """The turn's flattened scores and a copy of its breakdown, if both are plain JSON.

        A ``NaN`` or ``Infinity`` (or a lone surrogate) would reach rewards, records and files:
        it breaks the documented shape like a reward outside [0, 1] does, and ends this
        episode with an :class:`~labs_env.errors.APIResponseValidationError` naming it. The
        check rides on the walks the turn needs anyway (flattening, copying).
        """
        scores = flatten_scores(result.scores)
        try:
            breakdown = (
                None if result.score_breakdown is None else _copy_json(result.score_breakdown)
            )
            plain = all(map(math.isfinite, scores.values()))
        except _NotPlainJson:
            plain = False
        if plain:
            return scores, breakdown
        self.done = True
        where, problem = (
            json_problem(result.scores, "scores")
            or json_problem(result.score_breakdown, "score_breakdown")
            or ("scores", "not plain JSON")
        )
        raise APIResponseValidationError(
            f"episode {self.episode_id}, turn {result.turn}: the response broke the documented "
            f"shape: {where}: {problem}",
            request_id=result.request_id,
        )

    def mark_terminated(self, reason: str = "client_terminated") -> None:
        """Record that the episode ended outside a turn (e.g. the client terminated it)."""
        self.done = True
        self.terminal_reason = self.terminal_reason or reason
        self._pending = None

    # ------------------------------------------------------------------ rendering

    def transcript(self) -> str:
        """The conversation as plain text, with each turn's reward and scores."""
        lines = [f"episode {self.episode_id}  {self.collection}/{self.scenario}"]
        lines.append(_format_message(self._history[0]))
        for index, summary in enumerate(self.turns):
            lines.append(_format_message(self._history[1 + 2 * index]))
            lines.append(_format_message(self._history[2 + 2 * index]))
            scores = ", ".join(f"{k}={v:.2f}" for k, v in summary.scores.items())
            tail = f"  [turn {summary.turn}] reward={summary.reward:.3f}"
            if scores:
                tail += f"  scores: {scores}"
            if summary.terminal_reason:
                tail += f"  ended: {summary.terminal_reason}"
            lines.append(tail)
        return "\n".join(lines) + "\n"


class _NotPlainJson(Exception):
    """A value :func:`_copy_json` will not copy: a non-finite number, a lone surrogate."""


def _copy_json(value: Any) -> Any:
    """A copy of parsed JSON (dicts, lists, scalars): 5-10x faster than ``copy.deepcopy``,
    which dominated the vector env's CPU per turn with large score breakdowns.

    Raises:
        _NotPlainJson: a number is not finite or a string not valid Unicode.
    """
    kind = type(value)
    if kind is dict:
        return {key: _copy_json(item) for key, item in value.items()}
    if kind is list:
        return [_copy_json(item) for item in value]
    if kind is str:
        if value.isascii() or is_plain_json(value):
            return value
        raise _NotPlainJson
    if kind is float:
        if value - value == 0.0:
            return value
        raise _NotPlainJson
    if isinstance(value, (int, bool)) or value is None:
        return value
    return copy.deepcopy(value)


def _copy_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh copy of one history message (role, content, optional tool calls)."""
    fresh = dict(message)
    if "tool_calls" in fresh:
        fresh["tool_calls"] = copy.deepcopy(fresh["tool_calls"])
    return fresh


def _format_message(message: Mapping[str, Any]) -> str:
    speaker = "agent" if message["role"] == "assistant" else "persona"
    text = f"{speaker:>7}: {message['content']}"
    for call in message.get("tool_calls") or ():
        text += f"\n         -> {call['type']} {call['name']}({call['input']})"
    return text
