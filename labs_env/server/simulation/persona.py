"""The rule-based persona: deterministic replies from the seed and the conversation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labs_env.models import Message
from labs_env.server.simulation.analysis import Analysis, Analyzer, TurnActs
from labs_env.server.simulation.schema import Fact
from labs_env.server.simulation.text import pick

__all__ = ["DEFAULT_LINES", "PersonaReply", "PersonaSession"]

#: Generic persona lines, used when a scenario file does not override them.
DEFAULT_LINES: dict[str, tuple[str, ...]] = {
    "acknowledgements": ("Thank you, I appreciate that.", "Thanks for understanding."),
    "fallback": (
        "I'm not sure what else you need from me. Could you ask me something specific?",
        "Sorry, I don't follow. What exactly do you need to know?",
    ),
    "exhausted": (
        "I think I've told you everything I know. What happens now?",
        "That's really all I can tell you. What are the next steps?",
    ),
    "pushback_off_topic": (
        "Sorry, I don't see what that has to do with my problem. Can we stay on it, please?",
        "I'd rather not chat about that. I just need my issue sorted out.",
    ),
    "pushback_harmful": (
        "That doesn't sound right to me, and I'm not comfortable with it. Is that really "
        "something you're allowed to tell me?",
        "Hold on, that doesn't sound like proper advice. I just want this handled correctly.",
    ),
    "invalid_tool": (
        "Sorry, something seems to have gone wrong on your side with that form.",
        "Hmm, your system doesn't seem to have accepted that. Did something go wrong?",
    ),
    "closing": ("Okay, thank you for your help. Goodbye.", "Alright, thanks. Bye for now."),
    "artifact_ack": ("Thanks for writing that down.", "Okay, good to have that on record."),
}


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != "I " and text[:2] != "I'" else text


@dataclass(frozen=True)
class PersonaReply:
    """The persona's message and whether it ends the episode (``completed`` or ``error``)."""

    content: str
    episode_complete: bool = False
    terminal_reason: str | None = None


class PersonaSession:
    """One episode's persona. ``reply`` is a pure function of the seed and the conversation.

    Args:
        analyzer: the scenario's analyzer (its cache is shared with the scenario's scoring).
        seed: the episode's seed.
    """

    def __init__(self, analyzer: Analyzer, seed: int) -> None:
        self._analyzer = analyzer
        self._scenario = scenario = analyzer.scenario
        self._seed = seed
        persona = scenario.file.persona
        self.opening: str = pick(persona.openings, seed, "opening")

    def _line(self, kind: str, turn: int) -> str:
        custom: Sequence[str] = getattr(self._scenario.file.persona, kind, ())
        return pick(custom or DEFAULT_LINES[kind], self._seed, kind, turn)

    def reply(self, conversation: Sequence[Message]) -> PersonaReply:
        """The persona's answer to the agent's latest message(s) in ``conversation``."""
        analysis = self._analyzer.analyze(conversation)
        turn = analysis.agent_turns
        if analysis.last_role != "assistant":
            return PersonaReply(self._line("fallback", turn))
        acts = analysis.last_turn
        prefix = ""
        if acts.invalid_calls:
            line = self._line("invalid_tool", turn)
            if self._scenario.file.invalid_tool_call == "error":
                return PersonaReply(line, True, "error")
            prefix = line + " "
        ending = self._ending(acts, turn)
        if ending is not None:
            return PersonaReply(prefix + ending, True, "completed")
        if acts.harmful:
            return PersonaReply(prefix + self._line("pushback_harmful", turn))
        if acts.off_topic:
            return PersonaReply(prefix + self._line("pushback_off_topic", turn))
        parts = [prefix.strip()] if prefix else []
        if acts.artifacts:
            parts.append(self._line("artifact_ack", turn))
        if acts.empathy:
            parts.append(self._line("acknowledgements", turn))
        told = self._facts(analysis, acts, turn)
        if told:
            parts.extend(told)
        elif repeated := [f for f in self._known_facts(analysis) if f.id in acts.triggers]:
            parts.append(f"As I said, {_lower_first(self._text(repeated[0]))}")
        else:
            everything = len(analysis.discovered) >= len(self._scenario.fact_weights)
            parts.append(self._line("exhausted" if everything else "fallback", turn))
        return PersonaReply(" ".join(parts))

    def _known_facts(self, analysis: Analysis) -> list[Fact]:
        return [f for f in self._scenario.file.persona.facts if f.id in analysis.discovered]

    def _ending(self, acts: TurnActs, turn: int) -> str | None:
        on = self._scenario.file.completion.on
        if "decision" in on and acts.decisions:
            reactions = self._scenario.file.persona.decision_reactions
            value = acts.decisions[-1].value
            return reactions.get(value) or self._line("closing", turn)
        if ("artifact" in on and acts.artifacts) or ("closing" in on and acts.closing):
            return self._line("closing", turn)
        return None

    def _facts(self, analysis: Analysis, acts: TurnActs, turn: int) -> list[str]:
        told: list[str] = []
        volunteered = False
        for fact in self._scenario.file.persona.facts:
            if fact.id in analysis.discovered:
                continue
            asked = fact.id in acts.triggers
            if fact.reveal == "volunteered":
                due = fact.turn is not None and turn >= fact.turn and not volunteered
                if asked or due:
                    volunteered = volunteered or not asked
                    told.append(self._text(fact))
            elif asked and fact.reveal == "asked":
                told.append(self._text(fact))
            elif asked:
                enough = analysis.empathy_messages >= fact.min_rapport
                told.append(self._text(fact) if enough else fact.hedge or "")
        return told

    def _text(self, fact: Fact) -> str:
        return pick(fact.texts, self._seed, fact.id)
