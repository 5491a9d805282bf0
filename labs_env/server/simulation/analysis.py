"""One pass over a conversation: what the agent did and what the persona revealed.

The persona and every scorer read the same :class:`Analysis`, from one :class:`Analyzer` per
compiled scenario, which caches the analyses and the keys of growing conversations.
Per-message work (tokenising and phrase look-up) is cached by message content on the compiled
scenario, so re-analysing a growing conversation only costs the new messages plus a cheap walk.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from labs_env.json_schema import schema_problems
from labs_env.models import Message
from labs_env.server.simulation.bounded_cache import BoundedCache
from labs_env.server.simulation.compiled import CompiledScenario, MessageFeatures

__all__ = ["Analysis", "Analyzer", "ArtifactCall", "DecisionCall", "TurnActs"]


@dataclass(frozen=True)
class DecisionCall:
    """A valid decision: the option chosen, whether its required facts were known, the turn."""

    tool: str
    value: str
    informed: bool
    turn: int


@dataclass(frozen=True)
class ArtifactCall:
    """A valid artifact and the turn it was produced in."""

    tool: str
    value: Mapping[str, Any]
    turn: int


@dataclass
class TurnActs:
    """What the agent did in one turn (its consecutive messages)."""

    triggers: set[str] = field(default_factory=set)
    closing: bool = False
    off_topic: bool = False
    harmful: bool = False
    empathy: bool = False
    decisions: list[DecisionCall] = field(default_factory=list)
    artifacts: list[ArtifactCall] = field(default_factory=list)
    invalid_calls: list[str] = field(default_factory=list)

    def copy(self) -> TurnActs:
        """An independent copy (the containers are copied)."""
        return replace(
            self,
            triggers=set(self.triggers),
            decisions=list(self.decisions),
            artifacts=list(self.artifacts),
            invalid_calls=list(self.invalid_calls),
        )


@dataclass
class Analysis:
    """Everything the persona and the scorers need to know about a conversation."""

    agent_turns: int = 0
    agent_messages: int = 0
    discovered: dict[str, int] = field(default_factory=dict)
    empathy_messages: int = 0
    question_messages: int = 0
    summary: bool = False
    closing: bool = False
    off_topic_messages: int = 0
    scope_hits: list[str] = field(default_factory=list)
    term_hits: list[str] = field(default_factory=list)
    phrase_hits: set[str] = field(default_factory=set)
    failure_hits: set[str] = field(default_factory=set)
    decisions: list[DecisionCall] = field(default_factory=list)
    artifacts: list[ArtifactCall] = field(default_factory=list)
    invalid_calls: list[str] = field(default_factory=list)
    last_turn: TurnActs = field(default_factory=TurnActs)
    last_role: str = ""

    def copy(self) -> Analysis:
        """An independent copy, to extend with more messages."""
        return replace(
            self,
            discovered=dict(self.discovered),
            scope_hits=list(self.scope_hits),
            term_hits=list(self.term_hits),
            phrase_hits=set(self.phrase_hits),
            failure_hits=set(self.failure_hits),
            decisions=list(self.decisions),
            artifacts=list(self.artifacts),
            invalid_calls=list(self.invalid_calls),
            last_turn=self.last_turn.copy(),
        )

    def state_key(self) -> Hashable:
        """Everything the scorers read, as a hashable value: equal keys score equally."""
        artifact = self.artifacts[-1] if self.artifacts else None
        return (
            frozenset(self.discovered),
            self.agent_messages,
            self.empathy_messages,
            self.question_messages,
            self.off_topic_messages,
            self.summary,
            self.closing,
            tuple(self.scope_hits),
            tuple(self.term_hits),
            frozenset(self.phrase_hits),
            frozenset(self.failure_hits),
            tuple((d.value, d.informed) for d in self.decisions),
            None if artifact is None else (artifact.tool, _canonical(artifact.value)),
            bool(self.invalid_calls),
        )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


_PREFIX_MIN = 16


def _message_key(message: Message, features: MessageFeatures) -> Hashable:
    if not message.tool_calls:
        return (message.role, features)
    calls = tuple((c.type, c.name, _canonical(c.input)) for c in message.tool_calls)
    return (message.role, features, calls)


def _tool_call(
    scenario: CompiledScenario,
    call_type: str,
    name: str,
    payload: Mapping[str, Any],
    known: Mapping[str, int],
    turn: int,
    result: Analysis,
    acts: TurnActs,
) -> None:
    tool = scenario.tools.get(name)
    if tool is None:
        reason: str | None = f"unknown tool {name!r}"
    elif tool.type != call_type:
        reason = f"tool {name!r} is a {tool.type}, called as a {call_type}"
    elif tool.mode == "options":
        value = payload.get("value")
        reason = None
        if set(payload) != {"value"} or value not in (tool.options or ()):
            reason = f"{name}: {value!r} is not one of {tool.options}"
        else:
            needed = scenario.decision_requires.get(name, frozenset())
            decision = DecisionCall(name, str(value), needed <= known.keys(), turn)
            acts.decisions.append(decision)
            result.decisions.append(decision)
    else:
        errors = schema_problems(dict(payload), tool.json_schema or {}, "$")
        reason = f"{name}: " + "; ".join(errors[:3]) if errors else None
        if reason is None:
            artifact = ArtifactCall(name, dict(payload), turn)
            acts.artifacts.append(artifact)
            result.artifacts.append(artifact)
    if reason is not None:
        acts.invalid_calls.append(reason)
        result.invalid_calls.append(reason)


def _agent_message(
    scenario: CompiledScenario,
    message: Message,
    features: MessageFeatures,
    result: Analysis,
    acts: TurnActs,
) -> None:
    result.agent_messages += 1
    acts.triggers |= features.triggers
    if features.empathy:
        result.empathy_messages += 1
        acts.empathy = True
    if features.question:
        result.question_messages += 1
    if features.summary_facts >= 2:
        result.summary = True
    if features.closing:
        result.closing = acts.closing = True
    if features.scope_rules or features.failure_phrases:
        acts.harmful = True
    for rule in features.scope_rules:
        if rule not in result.scope_hits:
            result.scope_hits.append(rule)
    for term in features.terms:
        if term not in result.term_hits:
            result.term_hits.append(term)
    result.phrase_hits |= features.agent_phrases
    result.failure_hits |= features.failure_phrases
    for call in message.tool_calls or ():
        _tool_call(
            scenario,
            call.type,
            call.name,
            call.input,
            result.discovered,
            result.agent_turns,
            result,
            acts,
        )
    if features.off_topic and not message.tool_calls:
        result.off_topic_messages += 1
        acts.off_topic = True


class _KeyedConversation:
    """A conversation's messages with their features and keys, extended as it grows."""

    __slots__ = ("features", "keys", "messages")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.features: list[MessageFeatures] = []
        self.keys: list[Hashable] = []

    def extends(self, conversation: Sequence[Message]) -> bool:
        """Whether ``conversation`` starts with exactly these message objects."""
        return len(conversation) >= len(self.messages) and all(
            map(operator.is_, conversation, self.messages)
        )

    def extend(self, scenario: CompiledScenario, messages: Sequence[Message]) -> None:
        features = [scenario.features(m.content) for m in messages]
        self.messages.extend(messages)
        self.features.extend(features)
        self.keys.extend(map(_message_key, messages, features))


class Analyzer:
    """The analyses of one compiled scenario's conversations, cached.

    One analyzer serves a scenario's persona sessions and its scoring, so the persona's reply
    and the turn's score share their analysis.
    """

    __slots__ = ("_analyses", "_conversations", "scenario")

    def __init__(self, scenario: CompiledScenario) -> None:
        self.scenario = scenario
        #: Conversation analyses by fingerprint (shared by the persona and the scorers).
        self._analyses: BoundedCache[Hashable, Analysis] = BoundedCache(1024)
        #: Per-message keys of recently analysed conversations, by ``id`` of the sequence
        #: (verified by message identity), so a growing conversation is keyed incrementally.
        self._conversations: BoundedCache[int, _KeyedConversation] = BoundedCache(1024)

    def _keyed(self, conversation: Sequence[Message]) -> _KeyedConversation:
        """The keys of ``conversation``; a conversation seen before (same list, same message
        objects in front) only costs its new messages."""
        found = self._conversations.get(id(conversation))
        if found is None or not found.extends(conversation):
            found = self._conversations.put(id(conversation), _KeyedConversation())
        if len(conversation) > len(found.messages):
            found.extend(self.scenario, conversation[len(found.messages) :])
        return found

    def analyze(self, conversation: Sequence[Message]) -> Analysis:
        """The (cached) analysis of ``conversation``; treat the result as read-only.

        Conversations are keyed by their messages' roles, text features and tool calls (the
        texts themselves are not kept). The persona's reply and the turn's scoring see the
        same conversation, so the second call is a cache hit; a conversation that extends an
        analysed one by a message or two (the next turn) only walks the new messages.
        Messages are taken as immutable once analysed (the server never changes a message in
        place).
        """
        keyed = self._keyed(conversation)
        key = tuple(keyed.keys)
        cache = self._analyses
        found = cache.get(key)
        if found is not None:
            return found
        scenario = self.scenario
        features = keyed.features
        # Walking a short conversation is cheaper than copying a cached prefix's analysis.
        for cut in (len(key) - 1, len(key) - 2) if len(key) > _PREFIX_MIN else ():
            prefix = cache.get(key[:cut])
            if prefix is not None:
                tail = zip(conversation[cut:], features[cut:], strict=True)
                return cache.put(key, _walk(scenario, tail, prefix.copy()))
        return cache.put(key, _walk(scenario, zip(conversation, features, strict=True), Analysis()))


def _walk(
    scenario: CompiledScenario,
    messages: Iterable[tuple[Message, MessageFeatures]],
    result: Analysis,
) -> Analysis:
    """Extend ``result`` with ``messages`` (client form: persona ``user``, agent ``assistant``)."""
    acts = result.last_turn
    previous = result.last_role
    for message, features in messages:
        role = message.role
        if role == "system":
            continue
        if role == "user":
            for fact in features.facts:
                result.discovered.setdefault(fact, result.agent_turns)
        else:
            if previous != "assistant":
                result.agent_turns += 1
                acts = TurnActs()
            _agent_message(scenario, message, features, result, acts)
        previous = role
    result.last_turn = acts
    result.last_role = previous
    return result
