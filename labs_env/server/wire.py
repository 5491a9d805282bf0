"""Wire-level building blocks shared by the server's modules: responses, errors, JSON.

A :class:`Response` is what the sans-IO core hands to a transport: a status, JSON bytes,
headers, and two instructions for the transport (wait ``delay`` seconds before delivering;
``drop`` the connection instead of delivering). :class:`ApiError` is raised anywhere inside a
request and turned into the documented error envelope by the core.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from pydantic import ValidationError

__all__ = [
    "ApiError",
    "RawJSON",
    "Response",
    "describe_validation_error",
    "dumps",
    "error_body",
    "loads",
]

_MAX_REPORTED_ERRORS = 3


@dataclass(frozen=True, slots=True)
class RawJSON:
    """JSON serialised once and spliced into many bodies (a top-level value for :func:`dumps`)."""

    data: bytes


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON (pydantic-core's encoder: ~4x faster than the stdlib's here).

    NaN and infinities, which JSON cannot carry, become ``null``. Top-level :class:`RawJSON`
    values of a dict are spliced in as they are (after the other keys).
    """
    if type(payload) is dict:
        raw = [key for key, value in payload.items() if type(value) is RawJSON]
        if raw:
            plain = {key: value for key, value in payload.items() if type(value) is not RawJSON}
            body = pydantic_core.to_json(plain, inf_nan_mode="null")
            pieces = [body[:-1]]
            separator = b"," if len(body) > 2 else b""
            for key in raw:
                pieces += (separator, pydantic_core.to_json(key), b":", payload[key].data)
                separator = b","
            pieces.append(b"}")
            return b"".join(pieces)
    return pydantic_core.to_json(payload, inf_nan_mode="null")


def loads(body: bytes) -> Any:
    """Parse a JSON request body (NaN and infinities refused); raises ``ValueError``."""
    return pydantic_core.from_json(body, allow_inf_nan=False)


@dataclass(slots=True)
class Response:
    """A finished response, as the core returns it to a transport.

    Attributes:
        status: HTTP status code.
        body: the JSON body.
        headers: header pairs (lower-case names), without ``content-length``.
        delay: seconds the transport waits before delivering (injected latency).
        drop: close the connection instead of delivering (injected fault); the request may
            still have been committed.
        replayed: the body is a stored response replayed for a repeated ``Idempotency-Key``.
    """

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    drop: bool = False
    replayed: bool = False

    def json(self) -> Any:
        """The decoded body (a convenience for tests and tools)."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None


class ApiError(Exception):
    """An error answer: ``status`` and the human ``message`` of the documented envelope.

    Args:
        status: HTTP status code.
        message: the human-readable message (``{"message": ...}``).
        headers: extra headers for this error (e.g. ``retry-after``).
    """

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


def error_body(message: str, request_id: str) -> bytes:
    """``{"message": ..., "data": {"request_id": ...}}``."""
    return dumps({"message": message, "data": {"request_id": request_id}})


def _location(loc: Sequence[int | str], index_offset: int = 0) -> str:
    text = ""
    for position, part in enumerate(loc):
        if isinstance(part, int):
            shift = index_offset if position == 1 and loc[0] == "messages" else 0
            text += f"[{part + shift}]"
        else:
            text += part if not text else f".{part}"
    return text or "body"


def describe_validation_error(error: ValidationError, index_offset: int = 0) -> str:
    """A readable one-line summary of a pydantic error that names the offending fields.

    Args:
        error: the validation error.
        index_offset: added to the index of ``messages[i]`` locations (a turn body whose
            first messages repeat the stored conversation is validated from an offset).
    """
    parts = []
    details = error.errors(include_url=False, include_input=False)
    for detail in details[:_MAX_REPORTED_ERRORS]:
        message = str(detail["msg"])
        if detail["type"] == "extra_forbidden":
            message = "unknown field"
        elif detail["type"] == "missing":
            message = "field required"
        parts.append(f"{_location(detail['loc'], index_offset)}: {message}")
    more = len(details) - _MAX_REPORTED_ERRORS
    if more > 0:
        parts.append(f"and {more} more error(s)")
    return "Invalid request: " + "; ".join(parts)
