"""The one JSON-schema subset validator of labs_env (pure, no third-party dependency).

A bottom-layer utility like ``models``: it imports nothing from labs_env, so both sides use it —
the env checks tool-call inputs before sending them (:func:`schema_problems`), and the local
server (``labs_env.server``, which may otherwise depend only on ``labs_env.models``) checks
scenario schemas when it loads them (:func:`check_schema`) and submitted artifacts against them.

Validated keywords: ``type`` (a name or a list of names), ``enum``, ``const``, ``required``,
``properties``, ``additionalProperties`` (boolean or schema), ``items`` (one schema),
``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``minLength``,
``maxLength``, ``pattern``, ``format: date`` (``YYYY-MM-DD``), ``minItems``, ``maxItems``.
:func:`schema_problems` ignores other keywords (the service has the final word on schemas
using more of the standard); :func:`check_schema` rejects them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = ["check_schema", "schema_problems"]

_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, Mapping),
    "array": lambda v: isinstance(v, (list, tuple)),
    "null": lambda v: v is None,
}
_VALIDATED = frozenset(
    {
        "type",
        "enum",
        "const",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minItems",
        "maxItems",
    }
)
_ANNOTATIONS = frozenset({"description", "title"})
_SCENARIO_TYPES = ("array", "boolean", "integer", "number", "object", "string")


def schema_problems(value: Any, schema: Mapping[str, Any], path: str = "input") -> list[str]:
    """Every way ``value`` breaks ``schema`` (within the supported subset), as readable lines.

    Example:
        >>> schema_problems({"amount": "3"}, {"type": "object", "required": ["amount", "note"],
        ...     "properties": {"amount": {"type": "number"}}})
        ['input: missing required property note', 'input.amount: expected number, got str']
    """
    problems: list[str] = []
    _check(value, schema, path, problems)
    return problems


def check_schema(schema: Mapping[str, Any], where: str = "json_schema") -> None:
    """Raise ``ValueError`` unless ``schema`` stays inside the subset a scenario file may use.

    That is: only the validated keywords (plus ``description`` and ``title``), one ``type`` per
    schema among array, boolean, integer, number, object and string, compilable ``pattern``s,
    and ``required`` naming only defined properties — so a tool never silently accepts more
    than its file says.
    """
    unknown = sorted(set(schema) - _VALIDATED - _ANNOTATIONS)
    if unknown:
        raise ValueError(f"{where}: unsupported JSON-Schema keyword(s) {unknown}")
    kind = schema.get("type")
    if kind not in _SCENARIO_TYPES:
        raise ValueError(f"{where}.type must be one of {list(_SCENARIO_TYPES)}, got {kind!r}")
    if "pattern" in schema and _regex(str(schema["pattern"])) is None:
        raise ValueError(f"{where}.pattern is not a valid regular expression")
    for name, sub in (schema.get("properties") or {}).items():
        check_schema(sub, f"{where}.properties.{name}")
    if "items" in schema:
        check_schema(schema["items"], f"{where}.items")
    missing = set(schema.get("required", ())) - set(schema.get("properties") or {})
    if missing:
        raise ValueError(f"{where}.required names undefined properties {sorted(missing)}")


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _check(value: Any, schema: Mapping[str, Any], path: str, out: list[str]) -> None:
    if not isinstance(schema, Mapping):
        return
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        known = [n for n in names if n in _TYPE_CHECKS]
        if known and not any(_TYPE_CHECKS[n](value) for n in known):
            out.append(f"{path}: expected {' or '.join(known)}, got {type(value).__name__}")
            return
    if "enum" in schema and value not in list(schema["enum"]):
        out.append(f"{path}: {value!r} is not one of {list(schema['enum'])}")
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: must equal {schema['const']!r}")
    if isinstance(value, Mapping):
        _check_object(value, schema, path, out)
    elif isinstance(value, (list, tuple)):
        _check_array(value, schema, path, out)
    elif isinstance(value, str):
        _check_string(value, schema, path, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, path, out)


def _check_object(
    value: Mapping[str, Any], schema: Mapping[str, Any], path: str, out: list[str]
) -> None:
    for name in schema.get("required", ()):
        if name not in value:
            out.append(f"{path}: missing required property {name}")
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            _check(item, properties[key], f"{path}.{key}", out)
        elif extra is False:
            out.append(f"{path}: unexpected property {key!r} (allowed: {sorted(properties)})")
        elif isinstance(extra, Mapping):
            _check(item, extra, f"{path}.{key}", out)


def _check_array(
    value: list[Any] | tuple[Any, ...], schema: Mapping[str, Any], path: str, out: list[str]
) -> None:
    _check_bounds(len(value), schema, path, out, "minItems", "maxItems", "items")
    items = schema.get("items")
    if isinstance(items, Mapping):
        for index, item in enumerate(value):
            _check(item, items, f"{path}[{index}]", out)


def _check_string(value: str, schema: Mapping[str, Any], path: str, out: list[str]) -> None:
    _check_bounds(len(value), schema, path, out, "minLength", "maxLength", "characters")
    pattern = _regex(str(schema["pattern"])) if "pattern" in schema else None
    if pattern is not None and not pattern.search(value):
        out.append(f"{path}: does not match the pattern {schema['pattern']!r}")
    if schema.get("format") == "date":
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            out.append(f"{path}: not a date in YYYY-MM-DD form")


def _check_bounds(
    size: int, schema: Mapping[str, Any], path: str, out: list[str], low: str, high: str, unit: str
) -> None:
    if low in schema and size < schema[low]:
        out.append(f"{path}: has {size} {unit}, fewer than {low}={schema[low]}")
    if high in schema and size > schema[high]:
        out.append(f"{path}: has {size} {unit}, more than {high}={schema[high]}")


def _check_number(value: float, schema: Mapping[str, Any], path: str, out: list[str]) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        out.append(f"{path}: {value} is below minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        out.append(f"{path}: {value} is above maximum {schema['maximum']}")
    low = schema.get("exclusiveMinimum")
    if isinstance(low, (int, float)) and not isinstance(low, bool) and value <= low:
        out.append(f"{path}: {value} must be greater than {low}")
    high = schema.get("exclusiveMaximum")
    if isinstance(high, (int, float)) and not isinstance(high, bool) and value >= high:
        out.append(f"{path}: {value} must be less than {high}")
