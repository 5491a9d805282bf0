"""The shared JSON-schema subset validator: the env's tool-input check and the server's."""

from __future__ import annotations

import pytest

from labs_env.json_schema import check_schema, schema_problems

TICKET = {
    "type": "object",
    "required": ["tag", "started"],
    "properties": {
        "tag": {"type": "string", "pattern": "^LT-\\d{4}$"},
        "started": {"type": "string", "format": "date"},
        "count": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}


def test_a_valid_value_has_no_problems() -> None:
    assert schema_problems({"tag": "LT-1234", "started": "2024-03-01", "count": 2}, TICKET) == []


def test_every_problem_is_reported_with_its_path() -> None:
    problems = schema_problems({"tag": "laptop", "started": "yesterday", "count": 0}, TICKET, "$")
    assert problems == [
        "$.tag: does not match the pattern '^LT-\\\\d{4}$'",
        "$.started: not a date in YYYY-MM-DD form",
        "$.count: 0 is below minimum 1",
    ]


def test_a_wrong_type_is_reported_once_and_booleans_are_not_numbers() -> None:
    assert schema_problems(True, {"type": "integer", "minimum": 5}) == [
        "input: expected integer, got bool"
    ]


def test_a_pattern_python_cannot_compile_is_ignored_when_checking_values() -> None:
    assert schema_problems("x", {"type": "string", "pattern": "("}) == []


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "string", "oneOf": []}, "unsupported JSON-Schema keyword"),
        ({"type": "null"}, "type must be one of"),
        ({"type": "string", "pattern": "("}, "not a valid regular expression"),
        ({"type": "object", "required": ["a"], "properties": {}}, "undefined properties"),
        ({"type": "array", "items": {"type": "date"}}, "json_schema.items.type"),
    ],
)
def test_check_schema_rejects_what_a_scenario_may_not_use(schema: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_schema(schema)


def test_check_schema_accepts_the_validated_keywords() -> None:
    check_schema(TICKET)
