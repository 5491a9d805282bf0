"""The seven scorers: pure functions of a compiled scenario and a conversation analysis.

Each returns a :class:`ScorerOutput` with a score in [0, 1], a one-line reasoning, strengths
and improvements (the ``score_breakdown`` entry). Keys are the ``quality_weights`` names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from labs_env.server.simulation.analysis import Analysis
from labs_env.server.simulation.artifacts import artifact_similarity
from labs_env.server.simulation.compiled import CompiledScenario
from labs_env.server.simulation.schema import BestPractice, FailureCondition, Objective

__all__ = ["SCORERS", "ScorerOutput", "rubric_signals"]


@dataclass(frozen=True)
class ScorerOutput:
    """One scorer's result. ``criteria`` is set by the rubric scorer only."""

    score: float
    reasoning: str
    strengths: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    criteria: Mapping[str, float] | None = None


def _human(identifier: str) -> str:
    return identifier.replace("_", " ")


def _ratio(part: float, whole: float) -> float:
    return min(1.0, max(0.0, part / whole)) if whole > 0 else 0.0


# --------------------------------------------------------------------------- discovery


def discovery_fraction(scenario: CompiledScenario, analysis: Analysis) -> float:
    """The weighted fraction of the persona's facts revealed in the conversation."""
    weights = scenario.fact_weights
    found = sum(weights[fact] for fact in analysis.discovered if fact in weights)
    return _ratio(found, sum(weights.values()))


def discovery(scenario: CompiledScenario, analysis: Analysis) -> ScorerOutput:
    """Key facts uncovered (weighted fraction). More facts never lower it."""
    score = discovery_fraction(scenario, analysis)
    facts = scenario.file.persona.facts
    found = [f"Uncovered the {_human(f.id)}" for f in facts if f.id in analysis.discovered]
    missed = [
        f"Find out about the {_human(f.id)}" for f in facts if f.id not in analysis.discovered
    ]
    reasoning = f"{len(found)} of {len(facts)} key facts uncovered."
    return ScorerOutput(score, reasoning, found, missed)


# --------------------------------------------------------------------------- decision, artifact


def decision_value(scenario: CompiledScenario, analysis: Analysis) -> float:
    """1 for the expected final decision, the scenario's partial credit for others, else 0."""
    expected = scenario.file.expected_decision
    if expected is None or not analysis.decisions:
        return 0.0
    final = analysis.decisions[-1].value
    return 1.0 if final == expected.value else expected.partial.get(final, 0.0)


def decision_match(scenario: CompiledScenario, analysis: Analysis) -> ScorerOutput:
    """The final decision equals the expected one (partial credit where the scenario says)."""
    score = decision_value(scenario, analysis)
    if not analysis.decisions:
        return ScorerOutput(0.0, "No valid decision was made.", [], ["Record a decision"])
    final = analysis.decisions[-1].value
    if score == 1.0:
        return ScorerOutput(score, f"The decision {final!r} is correct.", ["Correct decision"])
    return ScorerOutput(
        score,
        f"The decision {final!r} is not the best one for this case.",
        [],
        ["Base the decision on the facts the person gave"],
    )


def artifact_value(scenario: CompiledScenario, analysis: Analysis) -> float:
    """Similarity of the last valid artifact to the reference (0 without one)."""
    reference = scenario.file.reference_artifact
    if reference is None or not analysis.artifacts:
        return 0.0
    schema = scenario.tools[reference.tool].json_schema or {}
    return artifact_similarity(schema, analysis.artifacts[-1].value, reference.value)


def output_similarity(scenario: CompiledScenario, analysis: Analysis) -> ScorerOutput:
    """How close the final artifact is to the reference artifact, field by field."""
    if not analysis.artifacts:
        return ScorerOutput(0.0, "No valid artifact was produced.", [], ["Produce the artifact"])
    score = artifact_value(scenario, analysis)
    strengths = ["Artifact closely matches the reference"] if score >= 0.8 else []
    improvements = [] if score >= 0.8 else ["Fill the artifact with the facts the person gave"]
    return ScorerOutput(score, f"Artifact similarity {score:.2f}.", strengths, improvements)


# --------------------------------------------------------------------------- objectives


def _objective_score(scenario: CompiledScenario, analysis: Analysis, o: Objective) -> float:
    parts: list[float] = []
    if o.facts:
        parts.append(sum(f in analysis.discovered for f in o.facts) / len(o.facts))
    if o.agent_phrases:
        parts.append(float(f"o:{o.id}" in analysis.phrase_hits))
    if o.decision:
        parts.append(decision_value(scenario, analysis))
    if o.artifact is not None:
        parts.append(float(artifact_value(scenario, analysis) >= o.artifact))
    if o.summary:
        parts.append(float(analysis.summary))
    if o.closing:
        parts.append(float(analysis.closing))
    if o.empathy:
        parts.append(_ratio(analysis.empathy_messages, o.empathy))
    return sum(parts) / len(parts)


def success_metrics(scenario: CompiledScenario, analysis: Analysis) -> ScorerOutput:
    """Objectives achieved: weighted mean of per-objective partial credit."""
    objectives = scenario.file.objectives
    scored = [(o, _objective_score(scenario, analysis, o)) for o in objectives]
    total = sum(o.weight * s for o, s in scored) / sum(o.weight for o in objectives)
    done = [o.description for o, s in scored if s >= 0.999]
    todo = [o.description for o, s in scored if s < 0.999]
    return ScorerOutput(total, f"{len(done)} of {len(objectives)} objectives achieved.", done, todo)


# --------------------------------------------------------------------------- failures


def _triggered(analysis: Analysis, condition: FailureCondition) -> bool:
    kind = condition.kind
    if kind == "phrases":
        return condition.id in analysis.failure_hits
    if kind == "premature_decision":
        return any(not d.informed for d in analysis.decisions)
    if kind == "invalid_tool_call":
        return bool(analysis.invalid_calls)
    if kind == "scope_violation":
        return bool(analysis.scope_hits or analysis.term_hits)
    return analysis.off_topic_messages > 0


def failure_metrics(scenario: CompiledScenario, analysis: Analysis) -> ScorerOutput:
    """Harmful actions avoided: 1 minus the severities of the failure conditions triggered."""
    conditions = scenario.file.failure_conditions
    hit = [c for c in conditions if _triggered(analysis, c)]
    score = max(0.0, 1.0 - sum(c.severity for c in hit))
    if not hit:
        return ScorerOutput(1.0, "No failure condition triggered.", ["Avoided harmful actions"])
    reasoning = f"{len(hit)} failure condition(s) triggered."
    return ScorerOutput(score, reasoning, [], [f"Avoid: {c.description}" for c in hit])


# --------------------------------------------------------------------------- best practices


def _practice_met(analysis: Analysis, practice: BestPractice) -> bool:
    check = practice.check
    if check == "empathy":
        return analysis.empathy_messages >= practice.min_count
    if check == "questions":
        return analysis.question_messages >= practice.min_count
    if check == "summary":
        return analysis.summary
    if check == "closing":
        return analysis.closing
    if check == "phrases":
        return f"p:{practice.id}" in analysis.phrase_hits
    if check == "informed_decision":
        return bool(analysis.decisions) and all(d.informed for d in analysis.decisions)
    return analysis.off_topic_messages == 0 and analysis.agent_messages > 0


def best_practices(scenario: CompiledScenario, analysis: Analysis) -> ScorerOutput:
    """Professional habits followed: weighted fraction of the scenario's best practices met."""
    practices = scenario.file.best_practices
    met = [(p, _practice_met(analysis, p)) for p in practices]
    score = sum(p.weight for p, ok in met if ok) / sum(p.weight for p in practices)
    good = [p.description for p, ok in met if ok]
    bad = [p.description for p, ok in met if not ok]
    return ScorerOutput(
        score, f"{len(good)} of {len(practices)} best practices followed.", good, bad
    )


# --------------------------------------------------------------------------- rubric


def rubric_signals(scenario: CompiledScenario, analysis: Analysis) -> dict[str, float]:
    """The conversation signals rubric criteria are graded on, each in [0, 1]."""
    if scenario.has_decision or scenario.has_artifact:
        parts = []
        if scenario.has_decision:
            parts.append(decision_value(scenario, analysis))
        if scenario.has_artifact:
            parts.append(artifact_value(scenario, analysis))
        resolution = sum(parts) / len(parts)
    else:
        resolution = float(analysis.closing)
    clean = not (analysis.scope_hits or analysis.term_hits or analysis.failure_hits)
    agent = analysis.agent_messages
    return {
        "discovery": discovery_fraction(scenario, analysis),
        "empathy": _ratio(analysis.empathy_messages, 2),
        "questions": _ratio(analysis.question_messages, 3),
        "scope": 1.0 if clean and agent else 0.0,
        "resolution": resolution,
        "summary": float(analysis.summary),
        "focus": 1.0 - _ratio(analysis.off_topic_messages, agent) if agent else 0.0,
    }


def rubrics(scenario: CompiledScenario, analysis: Analysis) -> ScorerOutput:
    """Rubric criteria graded by levels on conversation signals; reported per criterion."""
    signals = rubric_signals(scenario, analysis)
    criteria: dict[str, float] = {}
    strengths: list[str] = []
    improvements: list[str] = []
    for criterion in scenario.file.rubric:
        value = signals[criterion.signal]
        level = criterion.levels[0]
        for candidate in criterion.levels:
            if value >= candidate.min:
                level = candidate
        criteria[criterion.id] = level.score
        note = f"{criterion.id}: {level.label} ({level.description})"
        (strengths if level is criterion.levels[-1] else improvements).append(note)
    weights = {c.id: c.weight for c in scenario.file.rubric}
    score = sum(weights[k] * v for k, v in criteria.items()) / sum(weights.values())
    reasoning = f"Rubric average {score:.2f} over {len(criteria)} criteria."
    return ScorerOutput(score, reasoning, strengths, improvements, criteria)


#: Scorer functions by ``quality_weights`` key, in the canonical order.
SCORERS: Mapping[str, Callable[[CompiledScenario, Analysis], ScorerOutput]] = {
    "success_metrics": success_metrics,
    "failure_metrics": failure_metrics,
    "best_practices": best_practices,
    "rubrics": rubrics,
    "discovery": discovery,
    "output_similarity": output_similarity,
    "decision_match": decision_match,
}
