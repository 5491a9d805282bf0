"""The scripted baseline: investigate, empathise, summarise, then decide or write, then close.

It knows only what a real client knows (the catalog description, the episode's tools and the
conversation) and never looks at scenario files, yet it clearly out-scores a careless agent:
it asks about everything the description says to find out, re-asks with empathy when the
person is reluctant, summarises what it learnt, picks the decision option best supported by
the person's own words, fills artifacts from its tool's JSON schema and the gathered facts,
and closes politely with next steps.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from labs_env.errors import LabsValidationError
from labs_env.models import ToolDefinition
from labs_env.policies._evidence import (
    choose_option,
    fact_sentences,
    fill_artifact,
    investigation_items,
    sentences,
    to_second_person,
    words,
)
from labs_env.rollout.actions import tool_call_type
from labs_env.rollout.policy import Action, EpisodeContext

__all__ = ["ScriptedPolicy"]

_GREETINGS = (
    "Hello, thank you for contacting us.",
    "Good morning, and thank you for getting in touch.",
)
_EMPATHY = (
    "I'm sorry to hear about this, and I understand how frustrating it must be.",
    "I'm sorry you're dealing with this; I can imagine how stressful it is.",
)
_REASSURE = (
    "I understand, and I'm sorry to press.",
    "I hear you, and I appreciate your patience.",
)
_DISTRESS = ("frustrat", "upset", "worried", "stress", "angry", "fed up", "urgent", "panic")
_RELUCTANCE = (
    "rather not",
    "not comfortable",
    "why does it matter",
    "don't want to",
    "prefer not",
    "why do you need",
    "is that relevant",
    "none of your business",
)
_ANYTHING_ELSE = "Is there anything else I should know?"
_IMPACT = "How is this situation affecting you?"
_CLOSE = (
    "As a next step, I will follow up on this and we will get back to you within two business "
    "days. Thank you for your patience, and have a good day."
)


def _pick(options: Sequence[str], *key: object) -> str:
    return options[zlib.crc32(":".join(map(str, key)).encode()) % len(options)]


def _question(item: str) -> str:
    return f"Could you tell me {item}?"


class ScriptedPolicy:
    """A deterministic, rule-based baseline agent for any Labs scenario.

    Args:
        seed: varies the stock wording (greetings, empathy lines); never the plan.
        questions_per_turn: how many investigation questions to ask per message (1-3).

    Example:
        >>> from labs_env.policies import EpisodeContext, ScriptedPolicy
        >>> ctx = EpisodeContext(collection="c", scenario="s",
        ...                      description="Find out the order number.")
        >>> action = ScriptedPolicy()([{"role": "user", "content": "Hi."}], ctx)
        >>> "order number" in action
        True
    """

    def __init__(self, seed: int = 0, *, questions_per_turn: int = 2) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise LabsValidationError("seed", f"must be an int, got {seed!r}", "pass e.g. seed=0")
        if questions_per_turn not in (1, 2, 3):
            raise LabsValidationError(
                "questions_per_turn", f"must be 1, 2 or 3, got {questions_per_turn!r}"
            )
        self.seed = seed
        self.questions_per_turn = questions_per_turn

    def __repr__(self) -> str:
        return f"ScriptedPolicy(seed={self.seed}, questions_per_turn={self.questions_per_turn})"

    def __call__(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> Action:
        """The next action given the conversation so far (persona ``user``, agent ``assistant``)."""
        persona = [str(m.get("content", "")) for m in history if m.get("role") == "user"]
        agent = [m for m in history if m.get("role") == "assistant"]
        said = " ".join(str(m.get("content", "")) for m in agent)
        used_tools = {
            call.get("name") for m in agent for call in (m.get("tool_calls") or ()) if call
        }
        turn = len(agent) + 1
        remaining = (context.max_turns or 50) - len(agent)
        tools = [t for t in context.tools if t.options or isinstance(t.json_schema, dict)]
        pending = [t for t in _ordered(tools) if t.id not in used_tools]
        final_steps = max(1, len(pending)) + (0 if pending else 1)
        last = persona[-1].lower() if persona else ""
        items = investigation_items(context.description) or ["what happened", "when it started"]
        parts: list[str] = []
        if not agent:
            parts += [_pick(_GREETINGS, self.seed, turn), _pick(_EMPATHY, self.seed, turn)]
        elif any(cue in last for cue in _DISTRESS):
            parts.append(_pick(_EMPATHY, self.seed, turn))
        investigating = remaining > final_steps + 1
        if investigating:
            question = self._investigate(items, agent, said, last, turn)
            if question is not None:
                if not agent:
                    question += " " + _IMPACT
                return " ".join([*parts, question])
        if "summarise" not in said and remaining > final_steps:
            return " ".join([*parts, self._summary(persona), "Have I understood that correctly?"])
        if pending:
            return self._use_tool(pending[0], persona, parts, last_tool=len(pending) == 1)
        if "summarise" not in said:
            parts.append(self._summary(persona))
        return " ".join([*parts, _CLOSE])

    def _investigate(
        self, items: list[str], agent: Sequence[Mapping[str, Any]], said: str, last: str, turn: int
    ) -> str | None:
        previous = str(agent[-1].get("content", "")) if agent else ""
        reluctant = [s for s in sentences([last]) if any(cue in s for cue in _RELUCTANCE)]
        asked = [i for i in items if _question(i) in previous]
        if reluctant and asked:
            context_words = set(words(" ".join(reluctant)))
            item = max(reversed(asked), key=lambda i: len(set(words(i)) & context_words))
            if said.count(_question(item)) < 2:
                return (
                    f"{_pick(_REASSURE, self.seed, turn)} It really helps me handle your case "
                    f"properly. {_question(item)}"
                )
        todo = [i for i in items if _question(i) not in said]
        if todo:
            return " ".join(_question(i) for i in todo[: self.questions_per_turn])
        if _ANYTHING_ELSE not in said:
            return _ANYTHING_ELSE
        return None

    @staticmethod
    def _summary(persona: Sequence[str]) -> str:
        facts = fact_sentences(persona)
        if not facts:
            return "Let me summarise: I have noted your situation."
        restated = " ".join(_capitalised(to_second_person(s, first_person=True)) for s in facts)
        return f"Let me summarise what you've told me: {restated}"

    @staticmethod
    def _use_tool(
        tool: ToolDefinition, persona: Sequence[str], parts: list[str], *, last_tool: bool
    ) -> Action:
        call: dict[str, Any] = {"type": tool_call_type(tool), "name": tool.id}
        if tool.options:
            value, reason = choose_option(tool.options, tool.description or "", persona)
            call["input"] = {"value": value}
            because = f" because {reason}" if reason else ""
            text = f"Based on what you've told me, I have recorded the decision '{value}'{because}."
        else:
            call["input"] = fill_artifact(tool.json_schema or {}, persona)
            text = f"I have written up the {tool.name.lower()} with the details you gave me."
        if last_tool:
            text += " " + _CLOSE
        return {"content": " ".join([*parts, text]), "tool_calls": [call]}


def _capitalised(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _ordered(tools: Sequence[ToolDefinition]) -> list[ToolDefinition]:
    """Artifacts before decisions: a decision usually ends the case."""
    return sorted(tools, key=lambda t: 0 if not t.options else 1)
