"""The pydantic schema of a scenario file (``labs_env/server/scenarios/*.json``).

One file = one scenario (and the collection it belongs to). See "Scenario files" in
``docs/server.md`` for the format with an example. Every model forbids unknown keys,
so a misspelt field is a load error naming the file and the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from labs_env.models import MAX_TURNS, QUALITY_WEIGHT_KEYS

__all__ = [
    "BestPractice",
    "CollectionInfo",
    "Completion",
    "ExpectedDecision",
    "Fact",
    "FailureCondition",
    "Objective",
    "Persona",
    "ReferenceArtifact",
    "RubricCriterion",
    "RubricLevel",
    "Safety",
    "ScenarioFile",
    "ScenarioInfo",
    "ScopeRule",
    "TermRule",
    "ToolSpec",
]

Slug: Any = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
Ident: Any = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
Text: Any = Field(min_length=1)
Phrases: Any = Field(default_factory=list)
Weight: Any = Field(default=1.0, gt=0.0, le=100.0)

Signal = Literal["discovery", "empathy", "questions", "scope", "resolution", "summary", "focus"]
PracticeCheck = Literal[
    "empathy", "questions", "summary", "closing", "phrases", "informed_decision", "on_topic"
]
FailureKind = Literal[
    "phrases", "premature_decision", "invalid_tool_call", "scope_violation", "off_topic"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectionInfo(_Strict):
    """The collection a scenario belongs to (files of one collection must agree)."""

    slug: str = Slug
    name: str = Text
    description: str = Text


class ScenarioInfo(_Strict):
    """What the catalog shows: slug, name, description, turn limit (and the difficulty)."""

    slug: str = Slug
    name: str = Text
    description: str = Text
    max_turns: int = Field(ge=1, le=MAX_TURNS)
    difficulty: Literal["easy", "medium", "hard"]


class Fact(_Strict):
    """A fact the persona knows, and when it tells it.

    ``reveal``: ``asked`` (a trigger phrase is in the agent's message), ``volunteered`` (told
    unprompted from agent turn ``turn`` on, or earlier when asked), ``rapport`` (asked, and the
    agent has shown empathy in at least ``min_rapport`` messages; before that the persona
    answers with ``hedge``). ``texts`` are wording variants (the episode seed picks one); each
    must contain one of the ``evidence`` phrases, which is how scorers see the fact was revealed.
    """

    id: str = Ident
    texts: list[str] = Field(min_length=1)
    evidence: list[str] = Field(min_length=1)
    triggers: list[str] = Phrases
    reveal: Literal["asked", "volunteered", "rapport"] = "asked"
    turn: int | None = Field(default=None, ge=1, le=MAX_TURNS)
    min_rapport: int = Field(default=1, ge=1, le=10)
    hedge: str | None = None
    weight: float = Weight

    @model_validator(mode="after")
    def _check_reveal(self) -> Fact:
        if self.reveal == "volunteered" and self.turn is None:
            raise ValueError("a 'volunteered' fact needs 'turn' (the agent turn it is told at)")
        if self.reveal != "volunteered" and not self.triggers:
            raise ValueError(f"an {self.reveal!r} fact needs at least one trigger phrase")
        if self.reveal == "rapport" and not self.hedge:
            raise ValueError("a 'rapport' fact needs 'hedge' (the reply before rapport)")
        return self


class Persona(_Strict):
    """The simulated person: opening lines, facts, and optional wording overrides."""

    name: str = Text
    role: str = Text
    openings: list[str] = Field(min_length=1)
    facts: list[Fact] = Field(min_length=1)
    topic_terms: list[str] = Field(min_length=1)
    empathy_markers: list[str] = Phrases
    acknowledgements: list[str] = Phrases
    fallback: list[str] = Phrases
    exhausted: list[str] = Phrases
    pushback_off_topic: list[str] = Phrases
    pushback_harmful: list[str] = Phrases
    invalid_tool: list[str] = Phrases
    closing: list[str] = Phrases
    decision_reactions: dict[str, str] = Field(default_factory=dict)


class Objective(_Strict):
    """A success metric: every listed condition must hold (partial credit per condition)."""

    id: str = Ident
    description: str = Text
    weight: float = Weight
    facts: list[str] = Phrases
    agent_phrases: list[str] = Phrases
    decision: bool = False
    artifact: float | None = Field(default=None, gt=0.0, le=1.0)
    summary: bool = False
    closing: bool = False
    empathy: int = Field(default=0, ge=0, le=10)

    @model_validator(mode="after")
    def _has_condition(self) -> Objective:
        if not (
            self.facts
            or self.agent_phrases
            or self.decision
            or self.artifact
            or self.summary
            or self.closing
            or self.empathy
        ):
            raise ValueError("an objective needs at least one condition")
        return self


def _phrases_only_with(field: str, value: str, phrases: list[str]) -> None:
    """``phrases`` is required when ``field`` is ``"phrases"`` and allowed only then."""
    if (value == "phrases") != bool(phrases):
        raise ValueError(f"'phrases' is required for {field} 'phrases' and only allowed there")


class FailureCondition(_Strict):
    """Something the agent must not do; each one triggered costs ``severity``."""

    id: str = Ident
    description: str = Text
    kind: FailureKind
    phrases: list[str] = Phrases
    severity: float = Field(default=0.5, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _phrases_for_kind(self) -> FailureCondition:
        _phrases_only_with("kind", self.kind, self.phrases)
        return self


class BestPractice(_Strict):
    """A professional habit, checked by ``check`` (with ``phrases`` / ``min_count``)."""

    id: str = Ident
    description: str = Text
    check: PracticeCheck
    phrases: list[str] = Phrases
    min_count: int = Field(default=1, ge=1, le=20)
    weight: float = Weight

    @model_validator(mode="after")
    def _phrases_for_check(self) -> BestPractice:
        _phrases_only_with("check", self.check, self.phrases)
        return self


class RubricLevel(_Strict):
    """A level of a rubric criterion: reached when the criterion's signal is >= ``min``."""

    min: float = Field(ge=0.0, le=1.0)
    score: float = Field(ge=0.0, le=1.0)
    label: str = Text
    description: str = Text


class RubricCriterion(_Strict):
    """A rubric criterion measured by a conversation ``signal`` in [0, 1], graded by levels."""

    id: str = Ident
    description: str = Text
    signal: Signal
    weight: float = Weight
    levels: list[RubricLevel] = Field(min_length=2)

    @model_validator(mode="after")
    def _levels_ordered(self) -> RubricCriterion:
        mins = [level.min for level in self.levels]
        if mins[0] != 0.0 or mins != sorted(set(mins)) or len(set(mins)) != len(mins):
            raise ValueError("levels need strictly increasing 'min' values starting at 0.0")
        scores = [level.score for level in self.levels]
        if scores != sorted(scores):
            raise ValueError("level scores must not decrease as 'min' grows")
        return self


class ScopeRule(_Strict):
    """Out-of-scope advice the agent must not give (safety gate)."""

    id: str = Ident
    description: str = Text
    phrases: list[str] = Field(min_length=1)


class TermRule(_Strict):
    """A term the agent must not use (safety gate), with the preferred wording."""

    term: str = Text
    instead: str = Text


class Safety(_Strict):
    """The safety gate: on a violation the reward is capped at ``cap`` and multiplied by
    ``per_violation`` for every violation after the first."""

    scope: list[ScopeRule] = Field(min_length=1)
    terminology: list[TermRule] = Phrases
    cap: float = Field(default=0.3, ge=0.0, le=1.0)
    per_violation: float = Field(default=0.5, ge=0.0, le=1.0)


class ToolSpec(_Strict):
    """A tool offered to the agent (the wire ``ToolDefinition``)."""

    id: str = Ident
    type: Literal["decision", "artifact"]
    name: str = Text
    mode: Literal["options", "json_schema"]
    description: str = Text
    options: list[str] | None = None
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _mode_matches(self) -> ToolSpec:
        if self.mode == "options":
            if self.type != "decision" or not self.options or self.json_schema is not None:
                raise ValueError("an 'options' tool is a 'decision' with non-empty 'options'")
            if len(set(self.options)) != len(self.options):
                raise ValueError("duplicate options")
        elif self.type != "artifact" or not self.json_schema or self.options is not None:
            raise ValueError("a 'json_schema' tool is an 'artifact' with a 'json_schema'")
        return self


class ExpectedDecision(_Strict):
    """The correct decision, the facts it needs, and partial credit for other options."""

    tool: str = Ident
    value: str = Text
    requires_facts: list[str] = Field(min_length=1)
    partial: dict[str, float] = Field(default_factory=dict)


class ReferenceArtifact(_Strict):
    """The reference output of an artifact tool (valid against the tool's schema)."""

    tool: str = Ident
    value: dict[str, Any]


class Completion(_Strict):
    """What ends the episode with ``completed``: a decision, an artifact, a closing phrase."""

    on: list[Literal["decision", "artifact", "closing"]] = Field(min_length=1)
    closing_phrases: list[str] = Phrases


class ScenarioFile(_Strict):
    """A whole scenario file. Cross-references are checked by the loader."""

    collection: CollectionInfo
    scenario: ScenarioInfo
    persona: Persona
    objectives: list[Objective] = Field(min_length=1)
    failure_conditions: list[FailureCondition] = Field(min_length=1)
    best_practices: list[BestPractice] = Field(min_length=1)
    rubric: list[RubricCriterion] = Field(min_length=1)
    safety: Safety
    tools: list[ToolSpec] = Phrases
    expected_decision: ExpectedDecision | None = None
    reference_artifact: ReferenceArtifact | None = None
    dimensions: dict[str, list[str]] = Field(min_length=1)
    invalid_tool_call: Literal["error", "penalize"] = "error"
    completion: Completion

    @model_validator(mode="after")
    def _dimension_keys(self) -> ScenarioFile:
        for name, scorers in self.dimensions.items():
            unknown = [s for s in scorers if s not in QUALITY_WEIGHT_KEYS]
            if not scorers or unknown:
                raise ValueError(
                    f"dimensions[{name!r}] must list scorers from {list(QUALITY_WEIGHT_KEYS)}"
                )
        return self
