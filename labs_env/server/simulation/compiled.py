"""A scenario file compiled for fast matching: one phrase index and a per-message cache."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from labs_env.server.simulation.bounded_cache import BoundedCache
from labs_env.server.simulation.schema import ScenarioFile, ToolSpec
from labs_env.server.simulation.text import (
    CLOSING_MARKERS,
    EMPATHY_MARKERS,
    GENERIC_ON_TOPIC,
    OFF_TOPIC_MARKERS,
    SUMMARY_MARKERS,
    Label,
    PhraseIndex,
)

__all__ = ["CompiledScenario", "MessageFeatures"]

#: Texts cached per scenario are bounded by count (8,192) and by total size (4 M characters).
_FEATURE_CHAR_BUDGET = 4_000_000
_ENGAGED = frozenset(("empathy", "topic", "closing", "summary"))


@dataclass(frozen=True, eq=False)
class MessageFeatures:
    """What one message's text contains (independent of who wrote it).

    Compared by identity: one object per distinct cached text, so conversation keys built from
    these objects are small and cheap to hash.
    """

    facts: frozenset[str]
    triggers: frozenset[str]
    empathy: bool
    closing: bool
    question: bool
    summary_facts: int
    scope_rules: tuple[str, ...]
    terms: tuple[str, ...]
    failure_phrases: frozenset[str]
    agent_phrases: frozenset[str]
    off_topic: bool


def _label_map(file: ScenarioFile) -> dict[str, list[Label]]:
    phrases: dict[str, list[Label]] = {}

    def add(items: Iterable[str], kind: str, ident: str = "") -> None:
        for item in items:
            phrases.setdefault(item, []).append((kind, ident))

    persona = file.persona
    for fact in persona.facts:
        add(fact.triggers, "t", fact.id)
        add(fact.evidence, "e", fact.id)
    add(EMPATHY_MARKERS, "empathy")
    add(persona.empathy_markers, "empathy")
    add(CLOSING_MARKERS, "closing")
    add(file.completion.closing_phrases, "closing")
    add(SUMMARY_MARKERS, "summary")
    add(OFF_TOPIC_MARKERS, "offtopic")
    add(GENERIC_ON_TOPIC, "topic")
    add(persona.topic_terms, "topic")
    for rule in file.safety.scope:
        add(rule.phrases, "s", rule.id)
    for term in file.safety.terminology:
        add([term.term], "w", term.term)
    for condition in file.failure_conditions:
        add(condition.phrases, "f", condition.id)
    for practice in file.best_practices:
        add(practice.phrases, "p", practice.id)
    for objective in file.objectives:
        add(objective.agent_phrases, "o", objective.id)
    return phrases


class CompiledScenario:
    """A validated scenario file plus its precompiled phrase index and message cache."""

    def __init__(self, file: ScenarioFile) -> None:
        self.file = file
        self.index = PhraseIndex(_label_map(file))
        self.tools: Mapping[str, ToolSpec] = {tool.id: tool for tool in file.tools}
        expected = file.expected_decision
        self.decision_requires: Mapping[str, frozenset[str]] = (
            {expected.tool: frozenset(expected.requires_facts)} if expected else {}
        )
        self.fact_weights: Mapping[str, float] = {f.id: f.weight for f in file.persona.facts}
        self.has_decision = any(t.mode == "options" for t in file.tools)
        self.has_artifact = any(t.mode == "json_schema" for t in file.tools)
        self.total_fact_weight = sum(self.fact_weights.values())
        self._features: BoundedCache[str, MessageFeatures] = BoundedCache(8192)
        self._feature_chars = 0

    def features(self, content: str) -> MessageFeatures:
        """The (cached) features of a message text."""
        found = self._features.get(content)
        if found is None:
            self._feature_chars += len(content)
            if self._feature_chars > _FEATURE_CHAR_BUDGET:
                self._features.clear()
                self._feature_chars = len(content)
            found = self._features.put(content, self._compute(content))
        return found

    def _compute(self, content: str) -> MessageFeatures:
        by_kind: dict[str, set[str]] = {}
        for kind, ident in self.index.labels(content):
            by_kind.setdefault(kind, set()).add(ident)
        facts = frozenset(by_kind.get("e", ()))
        triggers = frozenset(by_kind.get("t", ()))
        engaged = bool(facts or triggers) or not by_kind.keys().isdisjoint(_ENGAGED)
        off_topic = "offtopic" in by_kind or (not engaged and content.count(" ") >= 3)
        agent_phrases = {f"p:{x}" for x in by_kind.get("p", ())}
        agent_phrases.update(f"o:{x}" for x in by_kind.get("o", ()))
        return MessageFeatures(
            facts=facts,
            triggers=triggers,
            empathy="empathy" in by_kind,
            closing="closing" in by_kind,
            question="?" in content,
            summary_facts=len(facts) if "summary" in by_kind else 0,
            scope_rules=tuple(sorted(by_kind.get("s", ()))),
            terms=tuple(sorted(by_kind.get("w", ()))),
            failure_phrases=frozenset(by_kind.get("f", ())),
            agent_phrases=frozenset(agent_phrases),
            off_topic=off_topic,
        )
