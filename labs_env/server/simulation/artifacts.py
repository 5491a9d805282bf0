"""Artifacts: a small JSON-Schema validator and the artifact-vs-reference similarity.

The validator covers the subset scenario tools use: ``type`` (object, array, string, number,
integer, boolean), ``properties``, ``required``, ``additionalProperties: false``, ``enum``,
``pattern``, ``minLength`` / ``maxLength``, ``minimum`` / ``maximum``, ``items``,
``minItems`` / ``maxItems`` and ``format: date`` (``YYYY-MM-DD``). Unknown keywords are
rejected when a scenario is loaded (see :func:`check_schema`), so a tool can never silently
accept more than its file says.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from labs_env.server.simulation.text import tokens

__all__ = ["artifact_similarity", "check_schema", "validate_artifact"]

_KNOWN = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "items",
        "minItems",
        "maxItems",
        "format",
        "description",
        "title",
    }
)
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
}


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check_schema(schema: Mapping[str, Any], where: str = "json_schema") -> None:
    """Raise ``ValueError`` if ``schema`` uses keywords or types outside the supported subset."""
    unknown = sorted(set(schema) - _KNOWN)
    if unknown:
        raise ValueError(f"{where}: unsupported JSON-Schema keyword(s) {unknown}")
    kind = schema.get("type")
    if kind not in _TYPES:
        raise ValueError(f"{where}.type must be one of {sorted(_TYPES)}, got {kind!r}")
    if "pattern" in schema:
        _regex(str(schema["pattern"]))
    for name, sub in (schema.get("properties") or {}).items():
        check_schema(sub, f"{where}.properties.{name}")
    if "items" in schema:
        check_schema(schema["items"], f"{where}.items")
    missing = set(schema.get("required", ())) - set(schema.get("properties") or {})
    if missing:
        raise ValueError(f"{where}.required names undefined properties {sorted(missing)}")


def validate_artifact(schema: Mapping[str, Any], value: Any, path: str = "$") -> list[str]:
    """Every way ``value`` fails ``schema`` (an empty list when it is valid).

    Example:
        >>> validate_artifact({"type": "object", "required": ["a"],
        ...                    "properties": {"a": {"type": "string"}}}, {})
        ["$: missing required property 'a'"]
    """
    errors: list[str] = []
    kind = schema.get("type")
    python_types = _TYPES.get(str(kind), (object,))
    if isinstance(value, bool) and kind in ("number", "integer"):
        return [f"{path}: expected {kind}, got boolean"]
    if not isinstance(value, python_types):
        return [f"{path}: expected {kind}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        _check_string(schema, value, path, errors)
    elif isinstance(value, (int, float)):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: needs at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: allows at most {schema['maxItems']} item(s)")
        items = schema.get("items")
        if items is not None:
            for i, item in enumerate(value):
                errors.extend(validate_artifact(items, item, f"{path}[{i}]"))
    elif isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        for name in schema.get("required", ()):
            if name not in value:
                errors.append(f"{path}: missing required property {name!r}")
        for name, item in value.items():
            if name in properties:
                errors.extend(validate_artifact(properties[name], item, f"{path}.{name}"))
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{path}: unexpected property {name!r}")
    return errors


def _check_string(schema: Mapping[str, Any], value: str, path: str, errors: list[str]) -> None:
    if len(value) < schema.get("minLength", 0):
        errors.append(f"{path}: shorter than {schema['minLength']} character(s)")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: longer than {schema['maxLength']} character(s)")
    if "pattern" in schema and not _regex(schema["pattern"]).search(value):
        errors.append(f"{path}: does not match the pattern {schema['pattern']!r}")
    if schema.get("format") == "date":
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            errors.append(f"{path}: not a date in YYYY-MM-DD form")


def _token_overlap(a: str, b: str) -> float:
    ta, tb = set(tokens(a)), set(tokens(b))
    if not ta or not tb:
        return 1.0 if ta == tb else 0.0
    return len(ta & tb) / len(ta | tb)


def artifact_similarity(schema: Mapping[str, Any], value: Any, reference: Any) -> float:
    """How close ``value`` is to ``reference`` in [0, 1], field by field.

    Objects: the mean over the reference's properties (a missing property scores 0). Free-text
    strings: token Jaccard overlap. Strings with an ``enum``, ``pattern`` or ``format``, numbers
    and booleans: exact match (numbers within 1 %). Arrays: each reference item is matched by
    its best counterpart, averaged over the longer of the two lists.
    """
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict) or not isinstance(reference, dict):
            return 0.0
        properties: Mapping[str, Any] = schema.get("properties") or {}
        keys = list(reference)
        if not keys:
            return 1.0
        total = 0.0
        for key in keys:
            if key in value:
                total += artifact_similarity(properties.get(key, {}), value[key], reference[key])
        return total / len(keys)
    if kind == "array":
        if not isinstance(value, list) or not isinstance(reference, list):
            return 0.0
        if not reference:
            return 1.0 if not value else 0.5
        item_schema = schema.get("items") or {}
        matched = sum(
            max((artifact_similarity(item_schema, v, r) for v in value), default=0.0)
            for r in reference
        )
        return matched / max(len(reference), len(value))
    if isinstance(value, bool) or isinstance(reference, bool):
        return 1.0 if value is reference else 0.0
    if isinstance(value, (int, float)) and isinstance(reference, (int, float)):
        scale = max(abs(reference), 1e-9)
        return 1.0 if abs(value - reference) <= 0.01 * scale else 0.0
    if isinstance(value, str) and isinstance(reference, str):
        if "enum" in schema or "pattern" in schema or "format" in schema:
            return 1.0 if value.strip().lower() == reference.strip().lower() else 0.0
        return _token_overlap(value, reference)
    return 0.0
