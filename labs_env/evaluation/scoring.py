"""Scoring stored conversations with ``/batch/evaluate`` (or ``/evaluate``), errors kept apart.

Input rows are trajectory records (as the recorder writes them) or plain items
``{"collection_slug", "scenario_slug", "messages", "id"?, "normalization_key"?,
"normalization_windows"?}``. Every row that cannot be scored — not JSON, not an item, invalid
messages, an episode with an infrastructure error, an item the service failed — becomes an
error entry, never a scored row: error items must never be training signal.

Example:
    >>> from labs_env.connect import make_local_client
    >>> item = {"collection_slug": "insurance-claims", "scenario_slug": "delayed-claim-call",
    ...         "messages": [{"role": "user", "content": "My claim is late."},
    ...                      {"role": "assistant", "content": "What is the claim number?"}]}
    >>> with make_local_client() as client:
    ...     result = score_items(client, parse_items([item]))
    >>> len(result.scored), len(result.errors)
    (1, 0)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from labs_env.client import LabsClient
from labs_env.errors import APIError
from labs_env.models import (
    MAX_BATCH_ITEMS,
    BatchEvaluateItem,
    BatchItemResult,
    EvaluationResult,
    RewardConfig,
)
from labs_env.rollout.trajectory import TrajectoryRecord

__all__ = [
    "ScoreItem",
    "ScoringResult",
    "parse_items",
    "read_items",
    "score_items",
    "wire_messages",
]


@dataclass(frozen=True)
class ScoreItem:
    """One conversation to score, or the reason it cannot be.

    Attributes:
        index: 1-based position in the input (the line number for a file).
        id: the row's ``id`` (a trajectory's ``episode_id``; ``line-N`` when absent).
        item: the validated request item (``None`` when ``error`` is set).
        source: extra fields carried to the output (e.g. a trajectory's seed).
        error: why the row cannot be scored.
    """

    index: int
    id: str
    item: BatchEvaluateItem | None
    source: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class ScoringResult:
    """Scored rows (the data) and error entries (kept apart)."""

    scored: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def read_items(path: str | Path) -> list[ScoreItem]:
    """The rows of a JSONL file as :class:`ScoreItem`\\ s (bad lines become error items)."""
    rows: list[tuple[int, Any]] = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                rows.append((number, _Unparsable(f"line is not JSON ({exc.msg})")))
    return list(_parse_rows(rows))


def parse_items(rows: Iterable[Any]) -> list[ScoreItem]:
    """:class:`ScoreItem`\\ s from in-memory rows (dicts or :class:`TrajectoryRecord`\\ s)."""
    return list(_parse_rows(enumerate(rows, start=1)))


class _Unparsable:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parse_rows(rows: Iterable[tuple[int, Any]]) -> Iterator[ScoreItem]:
    for index, row in rows:
        if isinstance(row, _Unparsable):
            yield ScoreItem(index, f"line-{index}", None, error=row.reason)
        elif isinstance(row, TrajectoryRecord) or (
            isinstance(row, Mapping) and "episode_id" in row and "turns" in row
        ):
            yield _from_trajectory(index, row)
        elif isinstance(row, Mapping):
            yield _from_item(index, row)
        else:
            yield ScoreItem(index, f"line-{index}", None, error="row is not a JSON object")


def _from_trajectory(index: int, row: Any) -> ScoreItem:
    try:
        record = row if isinstance(row, TrajectoryRecord) else TrajectoryRecord.model_validate(row)
    except ValidationError as exc:
        return ScoreItem(index, f"line-{index}", None, error=_first_error(exc))
    source = {"episode_id": record.episode_id, "seed": record.seed}
    if not record.ok:
        reason = f"episode has an infrastructure error ({record.error}); not scored"
        return ScoreItem(index, record.episode_id, None, source, reason)
    raw = {
        "id": str(index),
        "collection_slug": record.collection,
        "scenario_slug": record.scenario,
        "messages": wire_messages(record.conversation()),
    }
    return _validated(index, record.episode_id, raw, source)


def _from_item(index: int, row: Mapping[str, Any]) -> ScoreItem:
    row_id = str(row.get("id") or f"line-{index}")
    fields = ("collection_slug", "scenario_slug", "messages")
    missing = [name for name in fields if name not in row]
    if missing:
        return ScoreItem(index, row_id, None, error=f"missing field(s) {missing}")
    raw = {name: row[name] for name in fields}
    for name in ("normalization_key", "normalization_windows"):
        if row.get(name) is not None:
            raw[name] = row[name]
    raw["id"] = str(index)
    raw["messages"] = wire_messages(raw["messages"])
    return _validated(index, row_id, raw, {})


def wire_messages(messages: Any) -> Any:
    """Messages as the service takes them: ``tool_calls: null`` dropped."""
    if not isinstance(messages, list):
        return messages
    return [
        {k: v for k, v in m.items() if not (k == "tool_calls" and v is None)}
        if isinstance(m, Mapping)
        else m
        for m in messages
    ]


def _validated(
    index: int, row_id: str, raw: dict[str, Any], source: Mapping[str, Any]
) -> ScoreItem:
    try:
        item = BatchEvaluateItem.model_validate(raw)
    except ValidationError as exc:
        return ScoreItem(index, row_id, None, source, _first_error(exc))
    return ScoreItem(index, row_id, item, source)


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "row"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def score_items(
    client: LabsClient,
    items: Sequence[ScoreItem],
    *,
    reward_config: RewardConfig | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ScoringResult:
    """Score the valid items; everything else goes to ``errors``.

    Items go to ``/batch/evaluate`` in requests of at most 100, so a request that fails
    costs only its own items (each gets the error). With a ``reward_config`` (which
    ``/batch/evaluate`` does not take), or for a single item, each is sent to ``/evaluate``.

    Args:
        on_progress: called with the number of items just finished (scored or failed).
    """
    result = ScoringResult()
    valid: list[ScoreItem] = []
    for entry in items:
        if entry.item is None:
            result.errors.append(_error_row(entry, entry.error or "invalid row"))
            if on_progress:
                on_progress(1)
        else:
            valid.append(entry)
    if reward_config is not None or len(valid) == 1:
        for entry in valid:
            _evaluate_one(client, entry, reward_config, result)
            if on_progress:
                on_progress(1)
    else:
        for start in range(0, len(valid), MAX_BATCH_ITEMS):
            chunk = valid[start : start + MAX_BATCH_ITEMS]
            _evaluate_batch(client, chunk, result)
            if on_progress:
                on_progress(len(chunk))
    result.errors.sort(key=lambda row: int(row["line"]))
    return result


def _evaluate_one(
    client: LabsClient, entry: ScoreItem, reward_config: RewardConfig | None, out: ScoringResult
) -> None:
    item = entry.item
    assert item is not None
    try:
        evaluation = client.evaluate(
            item.collection_slug,
            item.scenario_slug,
            item.messages,
            reward_config=reward_config,
            normalization_key=item.normalization_key,
            normalization_windows=item.normalization_windows,
        )
    except APIError as exc:
        out.errors.append(_error_row(entry, f"{type(exc).__name__}: {exc}"))
        return
    out.scored.append(_scored_row(entry, evaluation, evaluation.scoring_version))


def _evaluate_batch(client: LabsClient, chunk: Sequence[ScoreItem], out: ScoringResult) -> None:
    try:
        batch = client.batch_evaluate([entry.item for entry in chunk if entry.item is not None])
    except APIError as exc:
        for entry in chunk:
            out.errors.append(_error_row(entry, f"{type(exc).__name__}: {exc}"))
        return
    by_id = {result.id: result for result in batch.results}
    for entry in chunk:
        assert entry.item is not None
        result = by_id.get(entry.item.id)
        if result is None:
            out.errors.append(_error_row(entry, "the service returned no result for this item"))
        elif not result.ok:
            out.errors.append(_error_row(entry, result.error or f"status {result.status!r}"))
        else:
            out.scored.append(_scored_row(entry, result, batch.scoring_version))


def _scored_row(
    entry: ScoreItem, result: EvaluationResult | BatchItemResult, scoring_version: str | None
) -> dict[str, Any]:
    """The output row of a scored item: the item, then what the service said of it."""
    item = entry.item
    assert item is not None
    row: dict[str, Any] = {
        "id": entry.id,
        **entry.source,
        "collection_slug": item.collection_slug,
        "scenario_slug": item.scenario_slug,
        "messages": [m.model_dump(exclude_none=True) for m in item.messages],
    }
    scored = {
        "reward": result.reward,
        "scores": result.scores,
        "score_breakdown": result.score_breakdown,
        "normalized": result.normalized,
        "scoring_version": scoring_version,
    }
    row.update({key: value for key, value in scored.items() if value is not None})
    return row


def _error_row(entry: ScoreItem, error: str) -> dict[str, Any]:
    return {"id": entry.id, "line": entry.index, "error": error}
