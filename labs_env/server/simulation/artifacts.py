"""Artifacts: how close a submitted artifact is to the scenario's reference artifact.

Validating artifacts against their tool's schema is :mod:`labs_env.json_schema`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labs_env.server.simulation.text import tokens

__all__ = ["artifact_similarity"]


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
