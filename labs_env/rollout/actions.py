"""Turning an agent's action into the assistant message the service expects.

An action is a string (the message), or a mapping / object with ``content`` and optional
``tool_calls``; each call names a tool by its **id** (``name``) and carries an ``input``
object. The call's ``type`` (``decision`` / ``artifact``) is filled in from the episode's
tools. Structural mistakes always raise :class:`~labs_env.errors.LabsValidationError` before
anything is sent; semantic ones (an option the tool does not offer, input against the tool's
JSON schema) only when ``validate=True`` — otherwise they are sent, because the service's
penalty is the learning signal.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from labs_env.checks import check_json
from labs_env.errors import LabsValidationError
from labs_env.json_schema import schema_problems
from labs_env.models import MAX_MESSAGE_CHARS, ToolDefinition
from labs_env.rollout.generation import Generation

__all__ = ["action_generation", "action_to_message", "tool_call_type"]

_ACTION_KEYS = frozenset({"role", "content", "tool_calls", "generation"})
_CALL_KEYS = frozenset({"type", "name", "input"})
_TYPE_BY_MODE = {"options": "decision", "json_schema": "artifact"}
_WIRE_TYPES = ("artifact", "decision")


def tool_call_type(tool: ToolDefinition) -> str:
    """The ``type`` a call of ``tool`` carries on the wire (``decision`` or ``artifact``)."""
    if tool.type in _WIRE_TYPES:
        return tool.type
    return _TYPE_BY_MODE.get(tool.mode, tool.type)


def action_to_message(
    action: Any, tools: Sequence[ToolDefinition], *, validate: bool = False
) -> dict[str, Any]:
    """The assistant message dict for ``action`` (fresh objects, ``type`` filled in).

    Raises:
        LabsValidationError: a structural mistake, or a semantic one when ``validate``.

    Example:
        >>> action_to_message("Hello, how can I help?", [])
        {'role': 'assistant', 'content': 'Hello, how can I help?'}
    """
    fields = _action_fields(action)
    content = fields.get("content")
    if not isinstance(content, str):
        raise LabsValidationError(
            "action.content",
            "missing" if content is None else f"expected str, got {type(content).__name__}",
            'pass a string, or {"content": "...", "tool_calls": [...]}',
        )
    _check_content(content, "action.content")
    message: dict[str, Any] = {"role": "assistant", "content": content}
    raw_calls = fields.get("tool_calls")
    if raw_calls is not None:
        if isinstance(raw_calls, (str, bytes, Mapping)) or not isinstance(raw_calls, Sequence):
            raise LabsValidationError(
                "action.tool_calls",
                f"expected a list of tool calls, got {type(raw_calls).__name__}",
                'pass [{"name": "<tool id>", "input": {...}}]',
            )
        by_id = {tool.id: tool for tool in tools}
        calls = [
            _tool_call(call, f"action.tool_calls[{i}]", by_id, validate)
            for i, call in enumerate(raw_calls)
        ]
        if calls:
            message["tool_calls"] = calls
    return message


def action_generation(action: Any) -> Generation | None:
    """The :class:`~labs_env.rollout.generation.Generation` an action carries, if any.

    Raises:
        LabsValidationError: ``action.generation`` is not a generation record.

    Example:
        >>> action_generation({"content": "Hi", "generation": {"completion_ids": [7]}})
        Generation(prompt_ids=None, completion_ids=[7], logprobs=None, text=None, \
finish_reason=None, usage=None, model=None, truncations=[])
    """
    if isinstance(action, str):
        return None
    value = _action_fields(action).get("generation")
    if value is None or isinstance(value, Generation):
        return value
    try:
        return Generation.model_validate(
            value.model_dump() if isinstance(value, BaseModel) else value
        )
    except ValidationError as exc:
        problem = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)[:3]
        )
        raise LabsValidationError(
            "action.generation",
            problem,
            "pass a labs_env.rollout.generation.Generation or a dict of its fields",
        ) from None


def _action_fields(action: Any) -> dict[str, Any]:
    if isinstance(action, str):
        return {"content": action}
    if isinstance(action, BaseModel):
        action = action.model_dump(exclude_none=True)
    if isinstance(action, Mapping):
        _reject_unknown_keys(
            action, _ACTION_KEYS, "action", "use only 'content', 'tool_calls' and 'generation'"
        )
        role = action.get("role", "assistant")
        if role != "assistant":
            raise LabsValidationError(
                "action.role", f"{role!r}: the agent always speaks as 'assistant'", "drop 'role'"
            )
        return dict(action)
    if hasattr(action, "content"):
        return {
            "content": action.content,
            "tool_calls": getattr(action, "tool_calls", None),
            "generation": getattr(action, "generation", None),
        }
    raise LabsValidationError(
        "action",
        f"expected a str, a mapping or an object with 'content', got {type(action).__name__}",
        'pass the message text, or {"content": "...", "tool_calls": [...]}',
    )


def _reject_unknown_keys(
    data: Mapping[Any, Any], allowed: frozenset[str], field: str, fix: str
) -> None:
    unknown = sorted(str(k) for k in set(data) - allowed)
    if unknown:
        raise LabsValidationError(field, f"unknown key(s) {unknown}", fix)


def _check_content(content: str, field: str) -> None:
    if len(content) > MAX_MESSAGE_CHARS:
        raise LabsValidationError(
            field,
            f"{len(content)} characters, more than the service's limit of {MAX_MESSAGE_CHARS}",
            "shorten the message",
        )
    if not content.isascii():  # valid Unicode: a lone surrogate cannot be sent
        check_json(content, field)


def _call_fields(call: Any, field: str) -> dict[str, Any]:
    if isinstance(call, BaseModel):
        call = call.model_dump(exclude_none=True)
    if isinstance(call, Mapping):
        _reject_unknown_keys(
            call, _CALL_KEYS, field, "a tool call has 'name' (tool id) and 'input'"
        )
        return dict(call)
    if hasattr(call, "name") and hasattr(call, "input"):
        return {"name": call.name, "input": call.input, "type": getattr(call, "type", None)}
    raise LabsValidationError(
        field,
        f"expected a mapping with 'name' and 'input', got {type(call).__name__}",
        'pass {"name": "<tool id>", "input": {...}}',
    )


def _tool_call(
    call: Any, field: str, tools: Mapping[str, ToolDefinition], validate: bool
) -> dict[str, Any]:
    fields = _call_fields(call, field)
    name = fields.get("name")
    if not isinstance(name, str) or not name:
        raise LabsValidationError(f"{field}.name", "missing or not a string", "use the tool's id")
    tool = tools.get(name)
    if tool is None:
        by_display = [t.id for t in tools.values() if t.name == name]
        fix = (
            f"use the tool's id {by_display[0]!r}, not its display name"
            if by_display
            else f"use one of this episode's tool ids: {sorted(tools) or 'none (no tools)'}"
        )
        raise LabsValidationError(f"{field}.name", f"unknown tool id {name!r}", fix)
    payload = fields.get("input")
    if not isinstance(payload, Mapping):
        raise LabsValidationError(
            f"{field}.input",
            "missing" if payload is None else f"expected an object, got {type(payload).__name__}",
            'a decision takes {"value": "<option>"}; an artifact an object matching its schema',
        )
    check_json(payload, f"{field}.input")  # before copying: it may nest without end
    wire_type = tool_call_type(tool)
    given = fields.get("type")
    if given is not None and given != wire_type:
        raise LabsValidationError(
            f"{field}.type", f"{given!r}, but tool {name!r} is a {wire_type}", "omit 'type'"
        )
    if wire_type not in _WIRE_TYPES:
        raise LabsValidationError(
            f"{field}.name",
            f"tool {name!r} has type {tool.type!r} / mode {tool.mode!r}, which this client "
            "cannot send",
            "upgrade labs_env",
        )
    data = copy.deepcopy(dict(payload))
    if validate:
        _check_semantics(tool, data, f"{field}.input")
    return {"type": wire_type, "name": name, "input": data}


def _check_semantics(tool: ToolDefinition, data: dict[str, Any], field: str) -> None:
    if tool.mode == "options":
        value = data.get("value")
        options = list(tool.options or [])
        if set(data) != {"value"} or value not in options:
            raise LabsValidationError(
                field,
                f"decision {tool.id!r} takes {{'value': one of {options}}}, got {data!r}",
                "pick one of the offered options",
            )
    elif tool.mode == "json_schema" and tool.json_schema is not None:
        problems = schema_problems(data, tool.json_schema, field)
        if problems:
            raise LabsValidationError(
                field,
                "; ".join(problems),
                f"make the input match tool {tool.id!r}'s json_schema",
            )
