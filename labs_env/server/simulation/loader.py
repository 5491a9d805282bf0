"""Loading scenario files: schema validation plus cross-reference checks, with clear errors.

Adding a scenario is adding a ``*.json`` file; a broken file fails loudly with
``ScenarioError("<file>: <field>: <problem>")``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from labs_env.json_schema import check_schema, schema_problems
from labs_env.models import QUALITY_WEIGHT_KEYS
from labs_env.server.simulation.schema import ScenarioFile
from labs_env.server.simulation.text import normalize_phrase

__all__ = ["BUNDLED_DIR", "ScenarioError", "applicable_scorers", "load_file", "scenario_paths"]

#: The directory of the scenarios shipped with the package.
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "scenarios"


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the file, the field and the problem."""

    def __init__(self, path: Path | str, field: str, problem: str) -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.path}: {field}: {problem}")


def scenario_paths(directories: Iterable[Path]) -> list[Path]:
    """Every ``*.json`` file in ``directories`` (not recursive), sorted by name per directory."""
    paths: list[Path] = []
    for directory in directories:
        if not Path(directory).is_dir():
            raise ScenarioError(directory, "(directory)", "is not a directory")
        paths.extend(sorted(Path(directory).glob("*.json")))
    return paths


def applicable_scorers(file: ScenarioFile) -> tuple[str, ...]:
    """The scorers that apply: no ``decision_match`` without a decision tool, no
    ``output_similarity`` without an artifact tool."""
    modes = {tool.mode for tool in file.tools}
    skip = set()
    if "options" not in modes:
        skip.add("decision_match")
    if "json_schema" not in modes:
        skip.add("output_similarity")
    return tuple(key for key in QUALITY_WEIGHT_KEYS if key not in skip)


def load_file(path: Path) -> ScenarioFile:
    """Parse and fully validate one scenario file."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(path, "(file)", f"cannot be read as JSON: {exc}") from exc
    try:
        file = ScenarioFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        more = f" (and {exc.error_count() - 1} more error(s))" if exc.error_count() > 1 else ""
        raise ScenarioError(path, where, f"{first['msg']}{more}") from exc
    try:
        _check_references(file)
    except _RefError as exc:
        raise ScenarioError(path, exc.field, exc.problem) from None
    return file


class _RefError(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field = field
        self.problem = problem


def _require(condition: bool, field: str, problem: str) -> None:
    if not condition:
        raise _RefError(field, problem)


def _contains(text: str, phrase: str) -> bool:
    return f" {normalize_phrase(phrase)} " in f" {normalize_phrase(text)} "


def _unique(ids: list[str], field: str) -> None:
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    _require(not duplicates, field, f"duplicate id(s) {duplicates}")


def _check_facts(file: ScenarioFile) -> set[str]:
    facts = file.persona.facts
    _unique([f.id for f in facts], "persona.facts")
    for i, fact in enumerate(facts):
        for j, text in enumerate(fact.texts):
            _require(
                any(_contains(text, ev) for ev in fact.evidence),
                f"persona.facts.{i}.texts.{j}",
                f"does not contain any evidence phrase of fact {fact.id!r} {fact.evidence}",
            )
        if fact.hedge:
            _require(
                not any(_contains(fact.hedge, ev) for ev in fact.evidence),
                f"persona.facts.{i}.hedge",
                "must not reveal the fact (it contains an evidence phrase)",
            )
    return {f.id for f in facts}


def _check_tools(file: ScenarioFile, fact_ids: set[str]) -> None:
    _unique([t.id for t in file.tools], "tools")
    decisions = [t for t in file.tools if t.mode == "options"]
    artifacts = [t for t in file.tools if t.mode == "json_schema"]
    _require(len(decisions) <= 1, "tools", "at most one decision tool per scenario")
    _require(len(artifacts) <= 1, "tools", "at most one artifact tool per scenario")
    expected = file.expected_decision
    _require(
        bool(decisions) == (expected is not None),
        "expected_decision",
        "is required with a decision tool and only allowed with one",
    )
    if expected is not None and decisions:
        options = decisions[0].options or []
        _require(
            expected.tool == decisions[0].id, "expected_decision.tool", "not the decision tool"
        )
        _require(expected.value in options, "expected_decision.value", f"not one of {options}")
        bad = sorted(set(expected.partial) - set(options))
        _require(not bad, "expected_decision.partial", f"unknown option(s) {bad}")
        bad = sorted(set(expected.requires_facts) - fact_ids)
        _require(not bad, "expected_decision.requires_facts", f"unknown fact(s) {bad}")
        bad = sorted(set(file.persona.decision_reactions) - set(options))
        _require(not bad, "persona.decision_reactions", f"unknown option(s) {bad}")
    reference = file.reference_artifact
    _require(
        bool(artifacts) == (reference is not None),
        "reference_artifact",
        "is required with an artifact tool and only allowed with one",
    )
    if reference is not None and artifacts:
        schema = artifacts[0].json_schema or {}
        try:
            check_schema(schema, f"tools.{artifacts[0].id}.json_schema")
        except ValueError as exc:
            raise _RefError(f"tools.{artifacts[0].id}.json_schema", str(exc)) from None
        _require(reference.tool == artifacts[0].id, "reference_artifact.tool", "not the tool")
        errors = schema_problems(reference.value, schema, "$")
        _require(not errors, "reference_artifact.value", f"fails its schema: {errors[:3]}")


def _check_references(file: ScenarioFile) -> None:
    fact_ids = _check_facts(file)
    _check_tools(file, fact_ids)
    has_decision = file.expected_decision is not None
    has_artifact = file.reference_artifact is not None
    _unique([o.id for o in file.objectives], "objectives")
    for i, objective in enumerate(file.objectives):
        bad = sorted(set(objective.facts) - fact_ids)
        _require(not bad, f"objectives.{i}.facts", f"unknown fact(s) {bad}")
        _require(has_decision or not objective.decision, f"objectives.{i}.decision", "no tool")
        _require(has_artifact or not objective.artifact, f"objectives.{i}.artifact", "no tool")
    _unique([c.id for c in file.failure_conditions], "failure_conditions")
    for i, condition in enumerate(file.failure_conditions):
        _require(
            has_decision or condition.kind != "premature_decision",
            f"failure_conditions.{i}.kind",
            "'premature_decision' needs a decision tool",
        )
    _unique([p.id for p in file.best_practices], "best_practices")
    for i, practice in enumerate(file.best_practices):
        _require(
            has_decision or practice.check != "informed_decision",
            f"best_practices.{i}.check",
            "'informed_decision' needs a decision tool",
        )
    _unique([c.id for c in file.rubric], "rubric")
    _unique([r.id for r in file.safety.scope], "safety.scope")
    for trigger in file.completion.on:
        _require(
            (trigger != "decision" or has_decision) and (trigger != "artifact" or has_artifact),
            "completion.on",
            f"{trigger!r} needs the matching tool",
        )
    applicable = applicable_scorers(file)
    fed = {scorer for scorers in file.dimensions.values() for scorer in scorers}
    _require(
        fed <= set(applicable),
        "dimensions",
        f"scorer(s) {sorted(fed - set(applicable))} do not apply to this scenario's tools",
    )
    _require(
        fed >= set(applicable),
        "dimensions",
        f"scorer(s) {sorted(set(applicable) - fed)} feed no dimension",
    )
