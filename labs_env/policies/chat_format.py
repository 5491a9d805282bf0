"""A Labs conversation in chat-completions form, and its tools as functions.

Labs tools are the agent's outputs (a decision among options, or a JSON artifact), so they map
to functions whose arguments are the tool input: a decision becomes a function with one
``value`` argument restricted to the options, an artifact a function whose parameters are the
tool's ``json_schema``. There is no tool *result* in Labs; to keep the chat transcript valid for
servers that demand one, each earlier call is followed by a short ``tool`` message.

Two forms of the same transcript:

- :func:`chat_transcript`: the wire form, what :class:`~labs_env.policies.OpenAIChatPolicy`
  sends a chat-completions server (each call's ``arguments`` as JSON text, as the API wants);
- :func:`template_form`: what a chat template renders, i.e. what the model reads — the
  ``arguments`` as an object (servers such as vLLM decode the JSON text before templating, and
  templates write it with ``tojson``), and each ``tool`` message with its function's ``name``.
  This is TRL's documented tool-calling dataset format.

Example:
    >>> from labs_env.models import ToolDefinition
    >>> tool = ToolDefinition(id="claim_status", type="decision", name="Claim status",
    ...                       mode="options", options=["approve", "deny"])
    >>> history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Denied.",
    ...            "tool_calls": [{"type": "decision", "name": "claim_status",
    ...                            "input": {"value": "deny"}}]}]
    >>> messages, functions = chat_transcript(history, [tool])
    >>> messages[1]["tool_calls"][0]["function"]["arguments"]
    '{"value": "deny"}'
    >>> template_form(messages)[1]["tool_calls"][0]["function"]["arguments"], functions[0]["type"]
    ({'value': 'deny'}, 'function')
    >>> template_form(messages)[2]
    {'role': 'tool', 'tool_call_id': 'call_1_0', 'content': 'Recorded.', 'name': 'claim_status'}
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
    "chat_transcript",
    "history_to_chat",
    "template_form",
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


def chat_transcript(
    history: Sequence[Mapping[str, Any]], tools: Sequence[ToolDefinition]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A Labs conversation in the wire form a chat-completions server receives, and the
    function definitions of the episode's tools (``[]`` without tools)."""
    mapping = build_tool_mapping(tools)
    return history_to_chat(history, mapping), mapping.functions


def template_form(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The wire-form ``messages`` as a chat template renders them (see the module docstring):
    ``arguments`` decoded to objects (text that is not a JSON object stays text), ``tool``
    messages named after their call's function. Fresh dicts; the input is not changed."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for message in messages:
        entry = dict(message)
        if isinstance(entry.get("tool_calls"), list):
            entry["tool_calls"] = [_decoded_call(call, names) for call in entry["tool_calls"]]
        if entry.get("role") == "tool" and entry.get("tool_call_id") in names:
            entry["name"] = names[entry["tool_call_id"]]
        out.append(entry)
    return out


def _decoded_call(call: Mapping[str, Any], names: dict[str, str]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            decoded = json.loads(arguments)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            function["arguments"] = decoded
    if isinstance(call.get("id"), str) and isinstance(function.get("name"), str):
        names[call["id"]] = function["name"]
    return {**call, "function": function}


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
