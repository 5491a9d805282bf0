"""Scenario files: the bundled set validates, the catalog, and clear errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labs_env.server.simulation import ScenarioError, Simulator
from labs_env.server.simulation.loader import BUNDLED_DIR

BUNDLED = sorted(BUNDLED_DIR.glob("*.json"))


def _raw(name_part: str) -> dict[str, Any]:
    path = next(p for p in BUNDLED if name_part in p.name)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _write(directory: Path, name: str, data: dict[str, Any]) -> Path:
    path = directory / name
    path.write_text(json.dumps(data))
    return path


def test_bundled_set_covers_collections_difficulties_and_tool_kinds(sim: Simulator) -> None:
    specs = sim.scenarios()
    assert len(sim.collection_slugs()) >= 2
    assert len(specs) >= 6
    assert {s.difficulty for s in specs} == {"easy", "medium", "hard"}
    kinds = {tuple(sorted(t.mode for t in s.tools)) for s in specs}
    assert kinds >= {(), ("options",), ("json_schema",), ("json_schema", "options")}
    for spec in specs:
        assert 1 <= spec.max_turns <= 50
        assert spec.description and spec.name


def test_catalog_lists_and_filters_collections(sim: Simulator) -> None:
    catalog = sim.catalog()
    assert [c.slug for c in catalog.collections] == list(sim.collection_slugs())
    assert catalog.request_id is None
    first = sim.collection_slugs()[0]
    only = sim.catalog([first])
    assert [c.slug for c in only.collections] == [first]
    assert sim.catalog([]).collections == []
    entry = catalog.scenario("insurance-claims", "storm-roof-decision")
    assert entry is not None and entry.tools[0].options
    # each call is a fresh object: setting a request id on one does not leak
    catalog.request_id = "req_x"
    assert sim.catalog().request_id is None


def test_catalog_never_reveals_scoring_material(sim: Simulator) -> None:
    text = sim.catalog().model_dump_json()
    for hidden in ("expected_decision", "reference_artifact", "objectives", "evidence", "rubric"):
        assert f'"{hidden}":' not in text
    assert "CLM-48213" not in text  # no fact text leaks either


def test_scenario_lookup(sim: Simulator) -> None:
    spec = sim.scenario("it-helpdesk", "account-lockout")
    assert spec is not None and spec.collection == "it-helpdesk"
    assert sim.scenario("it-helpdesk", "nope") is None
    assert sim.scenario("nope", "account-lockout") is None


def test_adding_a_scenario_is_adding_a_file(tmp_path: Path) -> None:
    data = _raw("delayed-claim-call")
    data["scenario"]["slug"] = "another-call"
    _write(tmp_path, "a.json", _raw("delayed-claim-call"))
    _write(tmp_path, "b.json", data)
    (tmp_path / "notes.txt").write_text("ignored")
    sim = Simulator([tmp_path])
    assert [s.slug for s in sim.scenarios()] == ["delayed-claim-call", "another-call"]
    assert sim.collection_slugs() == ("insurance-claims",)


def _error_for(tmp_path: Path, data: dict[str, Any]) -> ScenarioError:
    path = _write(tmp_path, "broken.json", data)
    with pytest.raises(ScenarioError) as info:
        Simulator([tmp_path])
    assert str(path) in str(info.value)
    return info.value


def test_unknown_key_names_file_and_field(tmp_path: Path) -> None:
    data = _raw("delayed-claim-call")
    data["persona"]["facts"][0]["trigers"] = ["typo"]
    error = _error_for(tmp_path, data)
    assert error.field == "persona.facts.0.trigers"


def test_fact_text_without_evidence_is_rejected(tmp_path: Path) -> None:
    data = _raw("delayed-claim-call")
    data["persona"]["facts"][0]["texts"] = ["I forget my number."]
    error = _error_for(tmp_path, data)
    assert error.field == "persona.facts.0.texts.0"
    assert "evidence" in error.problem


@pytest.mark.parametrize(
    ("name", "change", "field"),
    [
        ("delayed", lambda d: d["objectives"][0]["facts"].append("ghost"), "objectives.0.facts"),
        (
            "storm",
            lambda d: d["expected_decision"].update(value="maybe"),
            "expected_decision.value",
        ),
        (
            "laptop",
            lambda d: d["reference_artifact"]["value"].update(asset_tag="bad"),
            "reference_artifact.value",
        ),
        ("delayed", lambda d: d["dimensions"].update(D9=["decision_match"]), "dimensions"),
        ("delayed", lambda d: d["dimensions"].pop("D1_InformationGathering"), "dimensions"),
        ("delayed", lambda d: d["scenario"].update(max_turns=51), "scenario.max_turns"),
        ("storm", lambda d: d.pop("expected_decision"), "expected_decision"),
        (
            "laptop",
            lambda d: d["tools"][0]["json_schema"].update(oneOf=[]),
            "tools.incident_ticket.json_schema",
        ),
        (
            "laptop",
            lambda d: d["tools"][0]["json_schema"]["properties"]["asset_tag"].update(pattern="("),
            "tools.incident_ticket.json_schema",
        ),
    ],
)
def test_cross_reference_errors(tmp_path: Path, name: str, change: Any, field: str) -> None:
    data = _raw(name)
    change(data)
    assert _error_for(tmp_path, data).field == field


def test_unreadable_json_and_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ScenarioError, match=r"bad\.json"):
        Simulator([tmp_path])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScenarioError, match="no"):
        Simulator([empty])
    with pytest.raises(ScenarioError, match="not a directory"):
        Simulator([tmp_path / "missing"])


def test_duplicate_scenario_and_inconsistent_collection(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", _raw("delayed-claim-call"))
    _write(tmp_path, "b.json", _raw("delayed-claim-call"))
    with pytest.raises(ScenarioError, match="duplicate"):
        Simulator([tmp_path])
    other = _raw("storm")
    other["collection"]["name"] = "Something else"
    (tmp_path / "b.json").unlink()
    _write(tmp_path, "c.json", other)
    with pytest.raises(ScenarioError, match="differs"):
        Simulator([tmp_path])


#: The small example of the README's "Scenario files" section (keep the two in sync).
DOC_EXAMPLE = """
{
  "collection": {"slug": "clinic-front-desk", "name": "Clinic front desk",
                 "description": "Patients calling a GP practice."},
  "scenario": {"slug": "repeat-prescription", "name": "Repeat prescription request",
    "description": "__DESCRIPTION__",
    "max_turns": 6, "difficulty": "easy"},
  "persona": {
    "name": "Ann Lee", "role": "patient",
    "openings": ["Hello, I need a repeat prescription please."],
    "topic_terms": ["prescription", "medicine", "repeat", "pharmacy"],
    "facts": [
      {"id": "date_of_birth", "texts": ["I was born on the 4th of July 1961."],
       "evidence": ["4th of July 1961"], "triggers": ["date of birth", "born", "birthday"]},
      {"id": "medicine", "texts": ["It's my blood pressure tablets, amlodipine 5 mg."],
       "evidence": ["amlodipine"], "triggers": ["medicine", "medication", "tablet", "which"]},
      {"id": "last_review", "texts": ["My last review was over a year ago, I think."],
       "evidence": ["last review"], "triggers": ["review", "check-up"],
       "reveal": "volunteered", "turn": 2}
    ]
  },
  "objectives": [
    {"id": "identify", "description": "Identified the patient and the medicine",
     "facts": ["date_of_birth", "medicine"]},
    {"id": "route", "description": "Routed the request correctly", "decision": true}
  ],
  "failure_conditions": [
    {"id": "premature_decision", "description": "Deciding before identifying the patient",
     "kind": "premature_decision"},
    {"id": "out_of_scope", "description": "Giving medical advice", "kind": "scope_violation"}
  ],
  "best_practices": [
    {"id": "questions", "description": "Asked before acting", "check": "questions", "min_count": 2}
  ],
  "rubric": [
    {"id": "informationGathering", "description": "Facts established", "signal": "discovery",
     "levels": [{"min": 0.0, "score": 0.0, "label": "none", "description": "nothing"},
                {"min": 0.6, "score": 1.0, "label": "good", "description": "most facts"}]}
  ],
  "safety": {
    "scope": [{"id": "medical_advice", "description": "medical advice",
               "phrases": ["double the dose", "stop taking"]}],
    "terminology": [{"term": "druggie", "instead": "patient"}]
  },
  "tools": [
    {"id": "refill", "type": "decision", "name": "Refill routing", "mode": "options",
     "description": "__TOOL__",
     "options": ["issue_repeat", "book_review"]}
  ],
  "expected_decision": {"tool": "refill", "value": "book_review",
                        "requires_facts": ["date_of_birth", "medicine"]},
  "dimensions": {"D1_InformationGathering": ["discovery"],
                 "D2_GoalProgress": ["success_metrics", "decision_match"],
                 "D3_Safety": ["failure_metrics"], "D4_Practice": ["best_practices", "rubrics"]},
  "invalid_tool_call": "error",
  "completion": {"on": ["decision"]}
}
"""
DOC_EXAMPLE = DOC_EXAMPLE.replace(
    "__DESCRIPTION__",
    "A patient asks for a repeat prescription. Find out their date of birth and which medicine "
    "they need, then record the request with the refill tool.",
).replace(
    "__TOOL__",
    "Route the request. issue_repeat: the medicine is on repeat and reviewed within a year. "
    "book_review: the last review was over a year ago.",
)


def test_the_documented_example_loads_and_the_baseline_generalises_to_it(tmp_path: Path) -> None:
    from labs_env.policies import ScriptedPolicy
    from tests.kit.simulation import hasty, play

    (tmp_path / "clinic_1_refill.json").write_text(DOC_EXAMPLE)
    sim = Simulator([tmp_path])
    spec = sim.scenario("clinic-front-desk", "repeat-prescription")
    assert spec is not None and [t.id for t in spec.tools] == ["refill"]
    _, reason, good = play(sim, spec, ScriptedPolicy())
    _, _, bad = play(sim, spec, hasty)
    assert reason == "completed"
    assert good.reward >= 0.7 > bad.reward + 0.3
