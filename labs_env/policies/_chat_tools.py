"""Mapping between Labs tools / tool calls and OpenAI-style function calling.

Labs tools are the agent's outputs (a decision among options, or a JSON artifact), so they map
to functions whose arguments are the tool input: a decision becomes a function with one
``value`` argument restricted to the options, an artifact a function whose parameters are the
tool's ``json_schema``. There is no tool *result* in Labs; to keep the chat transcript valid for
servers that demand one, each earlier call is followed by a short ``tool`` message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from labs_env.models import MAX_MESSAGE_CHARS, ToolDefinition
from labs_env.rollout.actions import tool_call_type
from labs_env.rollout.generation import Truncation

__all__ = [
    "MalformedMode",
    "ToolMapping",
    "build_tool_mapping",
    "history_to_chat",
    "truncate_content",
]

logger = logging.getLogger("labs_env.policies.openai_chat")

MalformedMode = Literal["keep", "drop"]
_NAME_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOOL_ACK = "Recorded."


@dataclass
class ToolMapping:
    """The function definitions for one episode and the way back to Labs tool ids."""

    functions: list[dict[str, Any]] = field(default_factory=list)
    by_function: dict[str, ToolDefinition] = field(default_factory=dict)
    wrapped: set[str] = field(default_factory=set)  # artifact schemas wrapped in {"value": ...}

    def to_labs(self, tool_calls: Any, malformed: MalformedMode) -> list[dict[str, Any]]:
        """Convert a chat ``tool_calls`` list to Labs tool calls (unknown names are dropped)."""
        out: list[dict[str, Any]] = []
        for call in tool_calls if isinstance(tool_calls, list) else []:
            function = call.get("function") if isinstance(call, Mapping) else None
            name = function.get("name") if isinstance(function, Mapping) else None
            tool = self.by_function.get(name) if isinstance(name, str) else None
            if tool is None:
                logger.warning("dropping a call to unknown tool %r", name)
                continue
            raw = function.get("arguments") if isinstance(function, Mapping) else None
            payload = self._input(tool, name or "", raw)
            if payload is None:
                if malformed == "drop":
                    logger.warning("dropping a call to %r with malformed arguments", tool.id)
                    continue
                logger.warning("sending a call to %r with malformed arguments as-is", tool.id)
                payload = {"_raw_arguments": raw if isinstance(raw, str) else repr(raw)}
            out.append({"type": tool_call_type(tool), "name": tool.id, "input": payload})
        return out

    def _input(self, tool: ToolDefinition, name: str, raw: Any) -> dict[str, Any] | None:
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return None
        if tool.options and isinstance(value, str):
            return {"value": value}  # a bare option string: unambiguous, accept it
        if not isinstance(value, dict):
            return None
        if name in self.wrapped:
            return value if "value" in value and len(value) == 1 else None
        return value


def build_tool_mapping(tools: Sequence[ToolDefinition]) -> ToolMapping:
    """Function-calling definitions for an episode's tools (tools without options/schema skip)."""
    mapping = ToolMapping()
    for tool in tools:
        parameters = _parameters(tool)
        if parameters is None:
            logger.warning("tool %r has neither options nor a json_schema; not offered", tool.id)
            continue
        name = _function_name(tool.id, mapping.by_function)
        if tool.options is None and parameters.get("type") != "object":
            parameters = {
                "type": "object",
                "properties": {"value": parameters},
                "required": ["value"],
            }
            mapping.wrapped.add(name)
        mapping.by_function[name] = tool
        description = tool.description or tool.name
        kind = "Decision: choose exactly one option." if tool.options else "Artifact (a document)."
        mapping.functions.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": f"{description} [{kind}]".strip(),
                    "parameters": parameters,
                },
            }
        )
    return mapping


def history_to_chat(
    history: Sequence[Mapping[str, Any]], mapping: ToolMapping
) -> list[dict[str, Any]]:
    """The conversation in chat-completions form, earlier tool calls included."""
    names = {tool.id: name for name, tool in mapping.by_function.items()}
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(history):
        role = str(message.get("role", "user"))
        content = message.get("content")
        entry: dict[str, Any] = {
            "role": role,
            "content": content if isinstance(content, str) else "",
        }
        calls = message.get("tool_calls") if role == "assistant" else None
        chat_calls = _chat_calls(calls, names, index)
        if chat_calls:
            entry["tool_calls"] = chat_calls
        messages.append(entry)
        messages += [
            {"role": "tool", "tool_call_id": call["id"], "content": _TOOL_ACK}
            for call in chat_calls
        ]
    return messages


def truncate_content(content: Any) -> tuple[str, Truncation | None]:
    """The model's text as a Labs message content (None -> "", cut to the length limit) and
    the :class:`~labs_env.rollout.generation.Truncation` recording a cut (``None``: no cut).

    Example:
        >>> text, cut = truncate_content("x" * 10_005)
        >>> len(text), cut.original_length, cut.kept_length
        (10000, 10005, 10000)
    """
    text = content if isinstance(content, str) else ""
    if len(text) <= MAX_MESSAGE_CHARS:
        return text, None
    logger.warning("truncating a %d-character reply to %d", len(text), MAX_MESSAGE_CHARS)
    cut = Truncation(
        field="content",
        original_length=len(text),
        kept_length=MAX_MESSAGE_CHARS,
        reason=f"the service's {MAX_MESSAGE_CHARS:,}-character message limit",
    )
    return text[:MAX_MESSAGE_CHARS], cut


def _chat_calls(calls: Any, names: Mapping[str, str], index: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for number, call in enumerate(calls if isinstance(calls, list) else []):
        if isinstance(call, Mapping):
            tool_id, payload = call.get("name"), call.get("input", {})
        else:  # a ToolCall model
            tool_id, payload = getattr(call, "name", None), getattr(call, "input", {})
        name = names.get(str(tool_id), str(tool_id))
        out.append(
            {
                "id": f"call_{index}_{number}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(payload)},
            }
        )
    return out


def _parameters(tool: ToolDefinition) -> dict[str, Any] | None:
    if tool.options:
        return {
            "type": "object",
            "properties": {"value": {"type": "string", "enum": list(tool.options)}},
            "required": ["value"],
            "additionalProperties": False,
        }
    if isinstance(tool.json_schema, dict):
        return dict(tool.json_schema)
    return None


def _function_name(tool_id: str, taken: Mapping[str, Any]) -> str:
    base = tool_id if _NAME_OK.match(tool_id) else re.sub(r"[^A-Za-z0-9_-]", "_", tool_id)[:60]
    name, suffix = base or "tool", 2
    while name in taken:
        name, suffix = f"{base[:60]}_{suffix}", suffix + 1
    return name
