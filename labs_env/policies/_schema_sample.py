"""Random instances of a JSON schema (the subset scenario artifact schemas use).

Supported: ``type`` (one or a list), ``enum``, ``const``, ``object`` (``properties``,
``required``; optional properties are included at random), ``array`` (``items``, ``minItems``,
``maxItems``), ``string`` (``minLength``, ``maxLength``, ``format`` date/date-time/email),
``integer``/``number`` (``minimum``, ``maximum``, exclusive bounds), ``boolean``, ``null``,
``anyOf``/``oneOf`` (one branch), ``allOf`` (merged), and local ``$ref`` (``#/...``).
``pattern`` and ``multipleOf`` are not honoured: the sample may be invalid against them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

__all__ = ["sample_from_schema"]

_WORDS = (
    "account",
    "claim",
    "customer",
    "details",
    "follow",
    "issue",
    "next",
    "note",
    "order",
    "policy",
    "request",
    "review",
    "status",
    "summary",
    "update",
)
_MAX_DEPTH = 6
_DEFAULT_SPAN = 1000


def sample_from_schema(schema: Mapping[str, Any], rng: random.Random) -> Any:
    """A random value shaped like ``schema`` (deterministic for a given ``rng`` state).

    Example:
        >>> import random
        >>> value = sample_from_schema(
        ...     {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1,
        ...      "maximum": 3}}, "required": ["n"]}, random.Random(0))
        >>> 1 <= value["n"] <= 3
        True
    """
    return _Sampler(schema, rng).sample(schema, 0)


class _Sampler:
    def __init__(self, root: Mapping[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def sample(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, Mapping):
            return None  # boolean schemas (true/false) and garbage: nothing better to say
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self.sample(self.rng.choice(branches), depth + 1)
        if isinstance(schema.get("allOf"), list):
            return self.sample(_merge_all_of(schema, self), depth + 1)
        kind = self._pick_type(schema)
        if depth >= _MAX_DEPTH and kind in ("object", "array"):
            return {} if kind == "object" else []
        return getattr(self, f"_{kind}", self._string)(schema, depth)

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        for _ in range(_MAX_DEPTH):
            if not (isinstance(ref, str) and ref.startswith("#")):
                break
            target: Any = self.root
            for part in ref.lstrip("#").strip("/").split("/"):
                target = target.get(part) if isinstance(target, Mapping) and part else target
            if not isinstance(target, Mapping):
                break
            schema = target
            ref = schema.get("$ref")
        return schema

    def _pick_type(self, schema: Mapping[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            choices = [k for k in kind if isinstance(k, str)]
            kind = self.rng.choice(choices) if choices else None
        if isinstance(kind, str):
            return kind
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        return "string"

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        required_set = set(required) if isinstance(required, list) else set()
        out: dict[str, Any] = {}
        for name, sub in properties.items():
            if name in required_set or self.rng.random() < 0.5:
                out[name] = self.sample(sub, depth + 1)
        for name in sorted(required_set - set(properties)):
            out[name] = self._string({}, depth + 1)
        return out

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        low = _int(schema.get("minItems"), 0)
        high = max(low, _int(schema.get("maxItems"), low + 3))
        items = schema.get("items", {})
        return [self.sample(items, depth + 1) for _ in range(self.rng.randint(low, high))]

    def _string(self, schema: Mapping[str, Any], depth: int) -> str:
        fmt = schema.get("format")
        if fmt in ("date", "date-time"):
            year, month, day = (
                self.rng.randint(2020, 2029),
                self.rng.randint(1, 12),
                self.rng.randint(1, 28),
            )
            date = f"{year}-{month:02d}-{day:02d}"
            return date if fmt == "date" else f"{date}T{self.rng.randint(0, 23):02d}:00:00Z"
        if fmt == "email":
            return f"{self.rng.choice(_WORDS)}@example.com"
        low = _int(schema.get("minLength"), 0)
        high = max(low, _int(schema.get("maxLength"), max(low, 40)))
        text = " ".join(self.rng.choice(_WORDS) for _ in range(self.rng.randint(1, 6)))
        while len(text) < low:
            text += " " + self.rng.choice(_WORDS)
        return text[: self.rng.randint(low, high)] if len(text) > high else text

    def _integer(self, schema: Mapping[str, Any], depth: int) -> int:
        low, high = _bounds(schema, integer=True)
        return self.rng.randint(int(low), int(high))

    def _number(self, schema: Mapping[str, Any], depth: int) -> float:
        low, high = _bounds(schema, integer=False)
        return round(self.rng.uniform(low, high), 3)

    def _boolean(self, schema: Mapping[str, Any], depth: int) -> bool:
        return self.rng.random() < 0.5

    def _null(self, schema: Mapping[str, Any], depth: int) -> None:
        return None


def _int(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
    )


def _bounds(schema: Mapping[str, Any], *, integer: bool) -> tuple[float, float]:
    def number(key: str) -> float | None:
        value = schema.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None

    step = 1.0 if integer else 1e-6
    low, high = number("minimum"), number("maximum")
    ex_low, ex_high = number("exclusiveMinimum"), number("exclusiveMaximum")
    if ex_low is not None:
        low = ex_low + step if low is None else max(low, ex_low + step)
    if ex_high is not None:
        high = ex_high - step if high is None else min(high, ex_high - step)
    if low is None:
        low = 0.0 if high is None else high - _DEFAULT_SPAN
    if high is None:
        high = low + _DEFAULT_SPAN
    if integer:
        low, high = float(math.ceil(low)), float(math.floor(high))
    return low, max(low, high)


def _merge_all_of(schema: Mapping[str, Any], sampler: _Sampler) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        if not isinstance(part, Mapping):
            continue
        part = sampler._resolve(part)
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged
