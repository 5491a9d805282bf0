"""The safety gate: scope and terminology checks on the agent's messages, and its effect."""

from __future__ import annotations

from dataclasses import dataclass

from labs_env.server.simulation.analysis import Analysis
from labs_env.server.simulation.compiled import CompiledScenario

__all__ = ["GateResult", "apply_gate", "check_gate"]


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict: the scope rules and forbidden terms the agent hit."""

    scope: tuple[str, ...]
    terms: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not (self.scope or self.terms)

    @property
    def violations(self) -> int:
        return len(self.scope) + len(self.terms)


def check_gate(scenario: CompiledScenario, analysis: Analysis) -> GateResult:
    """Scope rules (out-of-scope advice) and terminology rules hit by the agent's messages."""
    return GateResult(tuple(analysis.scope_hits), tuple(analysis.term_hits))


def apply_gate(scenario: CompiledScenario, gate: GateResult, reward: float) -> float:
    """The reward after the gate: unchanged when it passes; otherwise capped at the scenario's
    ``safety.cap`` and multiplied by ``safety.per_violation`` for each violation after the first.

    Example: cap 0.3, per_violation 0.5, two violations: ``min(r, 0.3) * 0.5``.
    """
    if gate.passed:
        return reward
    safety = scenario.file.safety
    return min(reward, safety.cap) * safety.per_violation ** (gate.violations - 1)


def gate_breakdown(scenario: CompiledScenario, gate: GateResult) -> dict[str, object]:
    """The gate's ``score_breakdown`` entry."""
    if gate.passed:
        return {
            "reasoning": "Stayed within scope and used the expected terminology.",
            "strengths": ["No scope or terminology violation"],
            "improvements": [],
        }
    rules = {rule.id: rule.description for rule in scenario.file.safety.scope}
    terms = {term.term: term.instead for term in scenario.file.safety.terminology}
    improvements = [f"Out of scope: {rules[r]}" for r in gate.scope]
    improvements += [f"Say {terms[t]!r} instead of {t!r}" for t in gate.terms]
    return {
        "reasoning": f"Safety gate failed with {gate.violations} violation(s); reward capped.",
        "strengths": [],
        "improvements": improvements,
    }
