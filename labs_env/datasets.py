"""Training data from trajectory records: SFT, DPO and GRPO rows, as JSONL or a HF dataset.

Rules shared by every export:

- An episode's reward is its final turn's reward (the score of the whole conversation).
- Episodes with an infrastructure error (``record.error``) or without a scored turn are never
  training data.
- Conversations are chat messages (persona ``user``, agent ``assistant``); trailing messages
  after the agent's last message are cut (nothing to learn from them).
- By default (``tool_call_format="openai"``) a conversation is the transcript
  :class:`~labs_env.policies.OpenAIChatPolicy` sends a model, as the model's chat template
  renders it (TRL's tool-calling dataset format; see
  :func:`~labs_env.policies.chat_format.template_form`): each call ``{"id", "type":
  "function", "function": {"name", "arguments": {...}}}`` followed by its ``tool`` result
  message (``tool_call_id``, ``name``), and every row has a ``tools`` column with the function
  definitions the model was offered. ``tool_call_format="labs"`` keeps Labs calls (and the
  Labs tool definitions as ``tools``).
- A ``system_prompt``, when given, is prepended to every conversation.
- :func:`to_hf_dataset` gives back exactly the rows (no ``None`` filled into tool arguments).

Example:
    >>> rec = {"episode_id": "e1", "collection": "c", "scenario": "s", "seed": 1,
    ...        "initial_observation": {"role": "user", "content": "Hi"},
    ...        "turns": [{"turn": 1, "reward": 0.9, "messages": [
    ...            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]}],
    ...        "final_reward": 0.9}
    >>> [m["content"] for m in sft_examples([rec], min_reward=0.5)[0]["messages"]]
    ['Hi', 'Hello']
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from labs_env.errors import LabsValidationError
from labs_env.evaluation.outcomes import RecordLike, as_record, outcome
from labs_env.models import ToolDefinition
from labs_env.policies.chat_format import chat_transcript, template_form
from labs_env.rollout.strict_json import encode_line
from labs_env.rollout.trajectory import TrajectoryRecord

__all__ = [
    "dpo_pairs",
    "episode_messages",
    "grpo_groups",
    "sft_examples",
    "to_hf_dataset",
    "write_jsonl",
]

ToolCallFormat = Literal["openai", "labs"]
Pairing = Literal["best_worst", "all"]
_ADVANTAGE_EPS = 1e-6
#: Arrow types of scalar columns (by the Python types in them); anything else is JSON.
_VALUE_TYPES: dict[frozenset[type], str] = {
    frozenset({bool}): "bool",
    frozenset({int}): "int64",
    frozenset({float}): "float64",
    frozenset({int, float}): "float64",
    frozenset({str}): "string",
}


def episode_messages(
    record: RecordLike,
    *,
    tool_call_format: ToolCallFormat = "openai",
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """The episode's conversation as chat messages, ending with the agent's last message."""
    return _transcript(as_record(record), tool_call_format, system_prompt)[0]


def _transcript(
    rec: TrajectoryRecord, fmt: ToolCallFormat, system_prompt: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The conversation (cut after the agent's last message) and the ``tools`` column."""
    if fmt not in ("openai", "labs"):
        raise LabsValidationError("tool_call_format", f"must be 'openai' or 'labs', not {fmt!r}")
    tools = [ToolDefinition.model_validate(tool) for tool in rec.tools or []]
    if fmt == "openai":
        # The conversation the model read: the policy's transcript, as the template renders it.
        wire, offered = chat_transcript(rec.conversation(), tools)
        messages = template_form(wire)
    else:
        messages = [_labs_message(m) for m in rec.conversation()]
        offered = [tool.model_dump(exclude_none=True) for tool in tools]
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()
    if system_prompt is not None and messages:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages, offered


def sft_examples(
    records: Iterable[RecordLike],
    *,
    min_reward: float = 0.5,
    tool_call_format: ToolCallFormat = "openai",
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """One row per episode whose reward is ``>= min_reward``: ``{"messages", "reward", ...}``.

    Rows also carry ``tools``, ``episode_id``, ``collection``, ``scenario`` and ``seed``.
    """
    rows = []
    for rec, reward in _usable(records):
        if reward >= min_reward:
            messages, tools = _transcript(rec, tool_call_format, system_prompt)
            if messages:
                rows.append({"messages": messages, "tools": tools, "reward": reward, **_meta(rec)})
    return rows


def dpo_pairs(
    records: Iterable[RecordLike],
    *,
    min_margin: float = 0.1,
    pairing: Pairing = "best_worst",
    tool_call_format: ToolCallFormat = "openai",
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """Preference pairs from episodes of the same scenario and seed (TRL's conversational form).

    Each row: ``prompt`` (the messages both episodes share), ``chosen`` and ``rejected`` (the
    rest of each conversation), ``tools``, ``chosen_reward``, ``rejected_reward``, ``margin``,
    the ids of both episodes, ``collection``, ``scenario``, ``seed``.
    ``pairing="best_worst"`` gives at most one pair per group (its best and worst episode);
    ``"all"`` every pair whose rewards differ by at least ``min_margin``. Episodes without a
    seed are not paired.
    """
    if pairing not in ("best_worst", "all"):
        raise LabsValidationError("pairing", f"must be 'best_worst' or 'all', not {pairing!r}")
    _check_margin(min_margin)
    rows = []
    for (collection, scenario, seed), members in _groups(records, by_seed_only=True).items():
        ranked = sorted(members, key=lambda item: -item[1])
        if pairing == "best_worst":
            candidates = [(ranked[0], ranked[-1])] if len(ranked) > 1 else []
        else:
            candidates = [(a, b) for i, a in enumerate(ranked) for b in ranked[i + 1 :]]
        for (good, good_reward), (bad, bad_reward) in candidates:
            margin = good_reward - bad_reward
            if margin < min_margin or margin <= 0:
                continue
            chosen, tools = _transcript(good, tool_call_format, system_prompt)
            rejected = _transcript(bad, tool_call_format, system_prompt)[0]
            shared = _common_prefix(chosen, rejected)
            if shared == len(chosen) or shared == len(rejected):
                continue  # one conversation contains the other: nothing to prefer
            rows.append(
                {
                    "prompt": chosen[:shared],
                    "chosen": chosen[shared:],
                    "rejected": rejected[shared:],
                    "tools": tools,
                    "chosen_reward": good_reward,
                    "rejected_reward": bad_reward,
                    "margin": margin,
                    "chosen_episode_id": good.episode_id,
                    "rejected_episode_id": bad.episode_id,
                    "collection": collection,
                    "scenario": scenario,
                    "seed": seed,
                }
            )
    return rows


def grpo_groups(
    records: Iterable[RecordLike],
    *,
    min_size: int = 2,
    tool_call_format: ToolCallFormat = "openai",
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """Groups of episodes with their rewards and group-normalised advantages.

    Episodes are grouped by a ``group_id`` (in ``record.extra`` or a top-level field) when
    present, else by scenario and seed (unseeded episodes without a ``group_id`` are left out).
    Each row: ``group_id``, ``collection``, ``scenario``, ``seed``, ``prompt`` (the shared
    messages), ``completions`` (each episode's remaining messages), ``tools``, ``rewards``,
    ``advantages`` (``(r - mean) / (std + 1e-6)``, population std) and ``episode_ids``.
    Groups smaller than ``min_size`` are dropped.
    """
    if not isinstance(min_size, int) or min_size < 1:
        raise LabsValidationError("min_size", f"must be an int >= 1, got {min_size!r}")
    rows = []
    for key, members in _groups(records, by_seed_only=False).items():
        if len(members) < min_size:
            continue
        transcripts = [_transcript(rec, tool_call_format, system_prompt) for rec, _ in members]
        conversations = [messages for messages, _ in transcripts]
        shared = min((_common_prefix(conversations[0], c) for c in conversations), default=0)
        rewards = [reward for _, reward in members]
        mean = sum(rewards) / len(rewards)
        std = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
        first = members[0][0]
        rows.append(
            {
                "group_id": key[0] if len(key) == 1 else "/".join(str(part) for part in key),
                "collection": first.collection,
                "scenario": first.scenario,
                "seed": first.seed,
                "prompt": conversations[0][:shared],
                "completions": [c[shared:] for c in conversations],
                "tools": transcripts[0][1],
                "rewards": rewards,
                "advantages": [(r - mean) / (std + _ADVANTAGE_EPS) for r in rewards],
                "episode_ids": [rec.episode_id for rec, _ in members],
            }
        )
    return rows


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> int:
    """Write rows as strict JSON lines (UTF-8, parent directories created); return the row
    count. The file appears complete or not at all (written aside, then renamed).

    Raises:
        LabsValidationError: a row holds a ``NaN`` or an infinity (named by its path, e.g.
            ``rows[3].advantages[0]``); no file is written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    count = 0
    try:
        with partial.open("wb") as handle:
            for count, row in enumerate(rows, start=1):
                handle.write(encode_line(row, f"rows[{count - 1}]"))
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


def to_hf_dataset(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A Hugging Face ``datasets.Dataset`` of the rows, giving back exactly the rows.

    Arrow gives every struct of a column the same fields: tool arguments ``{"value": "deny"}``
    would come back as ``{"value": "deny", "amount": None, ...}``. Messages and tool
    definitions are therefore stored as JSON values (``datasets.Json``), each as it is.

    Raises:
        LabsValidationError: ``datasets`` (>= 4.7, which has ``Json``) is not installed.
    """
    try:
        datasets = importlib.import_module("datasets")
    except ImportError:
        raise LabsValidationError(
            "datasets",
            "the Hugging Face 'datasets' package is not installed",
            "pip install datasets (or use write_jsonl and load the file later)",
        ) from None
    if not hasattr(datasets, "Json"):
        raise LabsValidationError(
            "datasets",
            f"datasets {datasets.__version__} cannot hold tool calls as they are (no Json)",
            "pip install 'datasets>=4.7' (or use write_jsonl and load the file later)",
        )
    plain = [dict(row) for row in rows]
    columns = list(plain[0]) if plain else []
    features = {name: _feature(datasets, [row.get(name) for row in plain]) for name in columns}
    return datasets.Dataset.from_list(plain, features=datasets.Features(features))


def _feature(datasets: Any, values: Sequence[Any]) -> Any:
    """The ``datasets`` feature holding ``values`` exactly: lists of lists, JSON for objects."""
    present = [value for value in values if value is not None]
    if present and all(isinstance(value, list) for value in present):
        return datasets.List(_feature(datasets, [item for value in present for item in value]))
    dtype = _VALUE_TYPES.get(frozenset(type(value) for value in present))
    return datasets.Value(dtype) if dtype is not None else datasets.Json()


# --------------------------------------------------------------------------- internals


def _usable(records: Iterable[RecordLike]) -> list[tuple[TrajectoryRecord, float]]:
    """Records that are training data, with their reward (errored / unscored ones dropped)."""
    out = []
    for record in records:
        rec = as_record(record)
        result = outcome(rec)
        if result.ok and result.reward is not None:
            out.append((rec, result.reward))
    return out


def _groups(
    records: Iterable[RecordLike], *, by_seed_only: bool
) -> dict[tuple[Any, ...], list[tuple[TrajectoryRecord, float]]]:
    groups: dict[tuple[Any, ...], list[tuple[TrajectoryRecord, float]]] = {}
    for rec, reward in _usable(records):
        group_id = None if by_seed_only else _group_id(rec)
        if group_id is not None:
            key: tuple[Any, ...] = (group_id,)
        elif rec.seed is not None:
            key = (rec.collection, rec.scenario, rec.seed)
        else:
            continue
        groups.setdefault(key, []).append((rec, reward))
    return groups


def _group_id(rec: TrajectoryRecord) -> str | None:
    value = rec.extra.get("group_id")
    if value is None and rec.model_extra:
        value = rec.model_extra.get("group_id")
    return None if value is None else str(value)


def _labs_message(message: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "role": message.get("role", "user"),
        "content": message.get("content") or "",
    }
    if message.get("tool_calls"):
        out["tool_calls"] = [dict(call) for call in message["tool_calls"]]
    return out


def _common_prefix(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> int:
    count = 0
    for left, right in zip(a, b, strict=False):
        if left != right:
            break
        count += 1
    return count


def _meta(rec: TrajectoryRecord) -> dict[str, Any]:
    return {
        "episode_id": rec.episode_id,
        "collection": rec.collection,
        "scenario": rec.scenario,
        "seed": rec.seed,
    }


def _check_margin(min_margin: float) -> None:
    if not isinstance(min_margin, (int, float)) or not min_margin >= 0:
        raise LabsValidationError("min_margin", f"must be a number >= 0, got {min_margin!r}")
