"""Request building and argument validation, shared by both clients (no I/O).

Every public client method turns its arguments into a :class:`RequestSpec`: method, path,
JSON body and how to read the answer. Bad arguments raise :class:`LabsValidationError` naming
the field path (``messages[2].content``) and the fix, before anything is sent.
"""

from __future__ import annotations

import enum
import functools
import inspect
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar, get_args
from urllib.parse import quote

import pydantic_core
from pydantic import BaseModel, ValidationError

from labs_env.errors import (
    APIResponseValidationError,
    APIStatusError,
    EpisodeNotFoundError,
    LabsValidationError,
)
from labs_env.models import (
    MAX_BATCH_ITEMS,
    MAX_MESSAGE_CHARS,
    BatchEvaluateItem,
    BatchEvaluateRequest,
    BatchEvaluateResult,
    BatchItemResult,
    Catalog,
    CompareRequest,
    CompareResult,
    Conversation,
    CreateEpisodeRequest,
    EncodedMessages,
    EpisodeCreated,
    EvaluateRequest,
    EvaluationResult,
    Message,
    RewardConfig,
    SubmitTurnRequest,
    TerminateResult,
    TurnResult,
)

__all__ = [
    "UNHANDLED",
    "RequestSpec",
    "Unhandled",
    "batch_evaluate_specs",
    "catalog_spec",
    "compare_spec",
    "create_episode_spec",
    "endpoint_method",
    "evaluate_spec",
    "merge_batch_results",
    "submit_turn_spec",
    "terminate_episode_spec",
    "validation_error",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


class Unhandled(enum.Enum):
    """The type of :data:`UNHANDLED`."""

    UNHANDLED = "unhandled"


#: Returned by ``RequestSpec.on_error`` when the error should be raised (or retried) as usual.
UNHANDLED: Final = Unhandled.UNHANDLED

_FIXES: dict[str, str] = {
    "string_too_long": "shorten it to at most {max_length} characters",
    "string_too_short": "pass a non-empty string",
    "too_short": "pass at least {min_length} item(s)",
    "too_long": "pass at most {max_length} item(s) (split the batch)",
    "missing": "provide this field",
    "extra_forbidden": "remove this field (is it misspelt?)",
    "literal_error": "use one of {expected}",
    "string_type": "pass a string",
    "list_type": "pass a list",
    "dict_type": "pass a dict",
    "model_type": "pass a dict or the model",
    "bool_type": "pass True or False",
    "bool_parsing": "pass True or False",
    "float_type": "pass a number",
    "float_parsing": "pass a number",
}


@dataclass(slots=True)
class RequestSpec(Generic[T]):
    """One logical API call, independent of how it is sent.

    Attributes:
        method: ``"GET"`` or ``"POST"``.
        path: the path below the base URL, e.g. ``/api/v1/catalog``.
        body: the JSON body (``None`` for GET).
        parse: turns a 2xx body and the ``X-Request-ID`` header into the result.
        idempotent: safe to resend when the outcome is unknown (not true of turns).
        on_error: maps some status errors to a result instead (``UNHANDLED`` otherwise).
    """

    method: str
    path: str
    body: bytes | None
    parse: Callable[[bytes, str | None], T]
    idempotent: bool = True
    on_error: Callable[[APIStatusError], T | Literal[Unhandled.UNHANDLED]] | None = None


def endpoint_method(method: F, build: Callable[..., RequestSpec[Any]]) -> F:
    """``method`` (a client method sending ``build``'s request) with ``build``'s name (minus
    ``_spec``), documentation and parameters after ``self``, and the result type as its return
    annotation, for ``help()``, ``inspect`` and the API docs."""
    signature = inspect.signature(build)
    result = str(signature.return_annotation).removeprefix("RequestSpec[").removesuffix("]")
    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__name__ = build.__name__.removesuffix("_spec")
    method.__qualname__ = method.__name__
    method.__doc__ = build.__doc__
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_parameter, *signature.parameters.values()], return_annotation=result
    )
    return method


def validation_error(
    exc: ValidationError, prefix: str = "", rename: Mapping[str, str] = {}
) -> LabsValidationError:
    """The first pydantic error as a :class:`LabsValidationError` with a field path and fix."""
    error = exc.errors(include_url=False, include_input=False)[0]
    path = prefix
    for index, part in enumerate(error["loc"]):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = rename.get(part, part) if index == 0 else part
            path += f".{name}" if path else name
    message = error["msg"]
    if error["type"] == "value_error":
        message = message.removeprefix("Value error, ")
        if not error["loc"] and "normalization" in message:
            path = f"{prefix}.normalization_windows" if prefix else "normalization_windows"
    template = _FIXES.get(error["type"], "see the Labs API reference for this field")
    try:
        fix = template.format(**error.get("ctx", {}))
    except (KeyError, IndexError):
        fix = template
    if error["type"] == "value_error":
        fix = "see the problem above"
    return LabsValidationError(path or "request", message, fix)


def _validate(model: type[M], data: Any, prefix: str = "", rename: Mapping[str, str] = {}) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, prefix, rename) from None


def _dump(request: BaseModel) -> bytes:
    return request.model_dump_json(exclude_none=True).encode()


def _message_list(value: Any, field: str) -> Any:
    if isinstance(value, (str, bytes, Mapping, BaseModel)):
        raise LabsValidationError(
            field,
            f"must be a list of messages, got {type(value).__name__}",
            'pass e.g. [{"role": "assistant", "content": "Hello"}]',
        )
    return list(value) if isinstance(value, Iterable) else value


def _parser(model: type[M]) -> Callable[[bytes, str | None], M]:
    """Parse a body into ``model`` and fill ``request_id`` from the header when absent."""
    validate = model.model_validate_json

    def parse(body: bytes, request_id: str | None) -> M:
        result = validate(body)
        if getattr(result, "request_id", None) is None and request_id is not None:
            result.request_id = request_id  # type: ignore[attr-defined]
        return result

    return parse


_PARSE_CATALOG = _parser(Catalog)
_PARSE_CREATED = _parser(EpisodeCreated)
_PARSE_TURN = _parser(TurnResult)
_PARSE_EVALUATION = _parser(EvaluationResult)
_PARSE_BATCH = _parser(BatchEvaluateResult)
_PARSE_COMPARE = _parser(CompareResult)
_PARSE_TERMINATE = _parser(TerminateResult)


_SAFE_ID = re.compile(r"[A-Za-z0-9_.~-]+")


def _episode_path(episode_id: Any, suffix: str) -> str:
    if type(episode_id) is str:
        return _checked_episode_path(episode_id, suffix)
    return _episode_path_slow(episode_id, suffix)


@functools.lru_cache(maxsize=4096)
def _checked_episode_path(episode_id: str, suffix: str) -> str:
    """Cached: every turn of an episode has the same path."""
    return _episode_path_slow(episode_id, suffix)


def _episode_path_slow(episode_id: Any, suffix: str) -> str:
    if not isinstance(episode_id, str) or not episode_id:
        raise LabsValidationError(
            "episode_id",
            f"must be a non-empty string, got {episode_id!r}",
            "pass the episode_id returned by create_episode",
        )
    if episode_id in (".", ".."):
        # Percent-encoding is no cure: %2E is "." to anything that normalises URLs (RFC 3986
        # 6.2.2.2), and the path would climb to /api/v1/turns. No episode has such an id.
        raise LabsValidationError(
            "episode_id",
            f"{episode_id!r} is not an episode id (it would change the request path)",
            "pass the episode_id returned by create_episode",
        )
    if not _SAFE_ID.fullmatch(episode_id):
        episode_id = quote(episode_id, safe="")
    return f"/api/v1/episodes/{episode_id}/{suffix}"


_ROLES = frozenset(get_args(Message.model_fields["role"].annotation))
_PLAIN_KEYS = frozenset({"role", "content"})


def _plain_turn_body(episode_id: str, messages: Any) -> bytes | None:
    """The hot path of a turn: plain ``{"role", "content"}`` dicts that are plainly valid are
    encoded directly (the same bytes pydantic would produce); anything else returns ``None``
    and goes through the request model, which reports the precise error.
    """
    if type(messages) is not list or not messages:
        return None
    for message in messages:
        if (
            type(message) is not dict
            or message.keys() != _PLAIN_KEYS
            or message["role"] not in _ROLES
            or type(message["content"]) is not str
            or len(message["content"]) > MAX_MESSAGE_CHARS
        ):
            return None
    try:  # pydantic-core's encoder: the request model's exact bytes, ~5x faster than json
        return pydantic_core.to_json({"id": episode_id, "messages": messages})
    except pydantic_core.PydanticSerializationError:  # e.g. a lone surrogate: let pydantic
        return None  # report it


_encode_reward_config = RewardConfig.__pydantic_serializer__.to_json


def _encoded_turn_body(
    episode_id: str, messages: EncodedMessages, reward_config: RewardConfig | None
) -> bytes | None:
    """The submit-turn body from pre-encoded messages (the bytes the request model would
    produce), or ``None`` to let the request model report a problem."""
    if not messages:
        return None
    tail = (
        b"}"
        if reward_config is None
        else b',"reward_config":' + _encode_reward_config(reward_config, exclude_none=True) + b"}"
    )
    try:
        episode = pydantic_core.to_json(episode_id)
    except pydantic_core.PydanticSerializationError:  # e.g. a lone surrogate
        return None
    return b"".join((b'{"id":', episode, b',"messages":', messages.json, tail))


# --------------------------------------------------------------------------- builders


def catalog_spec() -> RequestSpec[Catalog]:
    """The collections and scenarios the key's organisation subscribes to
    (``GET /api/v1/catalog``)."""
    return RequestSpec("GET", "/api/v1/catalog", None, _PARSE_CATALOG)


def create_episode_spec(
    collection_slug: str,
    scenario_slug: str,
    *,
    score_turns: bool = False,
    config: dict[str, Any] | None = None,
) -> RequestSpec[EpisodeCreated]:
    """Start an episode (``POST /api/v1/episodes``). With ``score_turns=False`` every turn's
    reward is 0.

    Retried like any safe call: a resend after a lost response can leave one extra, unused
    episode, which simply expires.
    """
    request = _validate(
        CreateEpisodeRequest,
        {
            "collection_slug": collection_slug,
            "scenario_slug": scenario_slug,
            "score_turns": score_turns,
            "config": config,
        },
    )
    return RequestSpec("POST", "/api/v1/episodes", _dump(request), _PARSE_CREATED)


def submit_turn_spec(
    episode_id: str,
    messages: Sequence[Message | Mapping[str, Any]],
    *,
    reward_config: RewardConfig | Mapping[str, Any] | None = None,
) -> RequestSpec[TurnResult]:
    """Submit the conversation so far (full history) and get the persona's reply
    (``POST /api/v1/episodes/{id}/turns``).

    Not idempotent on the service: resent only when the request provably did not reach it
    (connect errors, 429, 503) unless the client has ``retry_unsafe_turns=True``.
    """
    path = _episode_path(episode_id, "turns")
    body: bytes | None = None
    if isinstance(messages, EncodedMessages):
        if reward_config is None or type(reward_config) is RewardConfig:
            body = _encoded_turn_body(episode_id, messages, reward_config)
    elif reward_config is None:
        body = _plain_turn_body(episode_id, messages)
    if body is not None:
        return RequestSpec("POST", path, body, _PARSE_TURN, idempotent=False)
    request = _validate(
        SubmitTurnRequest,
        {
            "id": episode_id,
            "messages": _message_list(messages, "messages"),
            "reward_config": reward_config,
        },
        rename={"id": "episode_id"},
    )
    return RequestSpec("POST", path, _dump(request), _PARSE_TURN, idempotent=False)


def evaluate_spec(
    collection_slug: str,
    scenario_slug: str,
    messages: Sequence[Message | Mapping[str, Any]],
    *,
    reward_config: RewardConfig | Mapping[str, Any] | None = None,
    normalization_key: str | None = None,
    normalization_windows: Sequence[str] | None = None,
) -> RequestSpec[EvaluationResult]:
    """Score one complete conversation (``POST /api/v1/evaluate``)."""
    windows = normalization_windows
    if isinstance(windows, str):
        raise LabsValidationError(
            "normalization_windows",
            "must be a list of strings, got one string",
            f"pass [{windows!r}]",
        )
    request = _validate(
        EvaluateRequest,
        {
            "collection_slug": collection_slug,
            "scenario_slug": scenario_slug,
            "messages": _message_list(messages, "messages"),
            "reward_config": reward_config,
            "normalization_key": normalization_key,
            "normalization_windows": list(windows) if windows is not None else None,
        },
    )
    return RequestSpec("POST", "/api/v1/evaluate", _dump(request), _PARSE_EVALUATION)


def batch_evaluate_specs(
    items: Iterable[BatchEvaluateItem | Mapping[str, Any]],
) -> tuple[list[BatchEvaluateItem], list[RequestSpec[BatchEvaluateResult]]]:
    """Validate all items, reject duplicate ids, and split into requests of <= 100 items."""
    if isinstance(items, (str, bytes, Mapping, BaseModel)) or not isinstance(items, Iterable):
        raise LabsValidationError(
            "items",
            f"must be a list of items, got {type(items).__name__}",
            "pass a list of dicts or BatchEvaluateItem",
        )
    checked = [_validate(BatchEvaluateItem, item, f"items[{i}]") for i, item in enumerate(items)]
    if not checked:
        raise LabsValidationError("items", "the batch is empty", "pass at least one item")
    first_index: dict[str, int] = {}
    for index, item in enumerate(checked):
        if item.id in first_index:
            raise LabsValidationError(
                f"items[{index}].id",
                f"duplicate id {item.id!r} (also items[{first_index[item.id]}].id)",
                "give every item a unique id: results are matched by id",
            )
        first_index[item.id] = index
    specs = [
        RequestSpec(
            "POST",
            "/api/v1/batch/evaluate",
            _dump(BatchEvaluateRequest(items=checked[start : start + MAX_BATCH_ITEMS])),
            _PARSE_BATCH,
        )
        for start in range(0, len(checked), MAX_BATCH_ITEMS)
    ]
    return checked, specs


def merge_batch_results(
    items: Sequence[BatchEvaluateItem], parts: Sequence[BatchEvaluateResult]
) -> BatchEvaluateResult:
    """One result with ``results`` in item order, matched by id across all chunk responses."""
    by_id: dict[str, BatchItemResult] = {}
    for part in parts:
        for result in part.results:
            by_id.setdefault(result.id, result)
    missing = [item.id for item in items if item.id not in by_id]
    if missing:
        raise APIResponseValidationError(
            f"batch/evaluate response has no result for item id(s) {missing[:5]}",
            status_code=200,
            request_id=parts[0].request_id if parts else None,
        )
    times = [p.total_time_ms for p in parts if p.total_time_ms is not None]
    return BatchEvaluateResult(
        results=[by_id[item.id] for item in items],
        scoring_version=next((p.scoring_version for p in parts if p.scoring_version), None),
        total_time_ms=sum(times) if times else None,
        request_id=parts[0].request_id,
        request_ids=[p.request_id for p in parts],
    )


def _conversation(value: Any, field: str) -> Any:
    if isinstance(value, Conversation) or (isinstance(value, Mapping) and "messages" in value):
        return value
    return {"messages": _message_list(value, field)}


def compare_spec(
    collection_slug: str,
    scenario_slug: str,
    response_a: Sequence[Message | Mapping[str, Any]] | Mapping[str, Any],
    response_b: Sequence[Message | Mapping[str, Any]] | Mapping[str, Any],
) -> RequestSpec[CompareResult]:
    """Pairwise preference between two conversations (``POST /api/v1/compare``); each is a
    message list (or ``{"messages": [...]}``)."""
    request = _validate(
        CompareRequest,
        {
            "collection_slug": collection_slug,
            "scenario_slug": scenario_slug,
            "response_a": _conversation(response_a, "response_a"),
            "response_b": _conversation(response_b, "response_b"),
        },
    )
    return RequestSpec("POST", "/api/v1/compare", _dump(request), _PARSE_COMPARE)


def _terminate_not_supported(error: APIStatusError) -> bool | Literal[Unhandled.UNHANDLED]:
    if isinstance(error, EpisodeNotFoundError):
        return UNHANDLED
    return False if error.status_code in (404, 405, 501) else UNHANDLED


def _parse_terminated(body: bytes, request_id: str | None) -> bool:
    _PARSE_TERMINATE(body, request_id)
    return True


def terminate_episode_spec(episode_id: str) -> RequestSpec[bool]:
    """End an episode early (non-standard ``POST /api/v1/episodes/{id}/terminate``);
    ``False`` when the service lacks the endpoint."""
    path = _episode_path(episode_id, "terminate")
    return RequestSpec(
        "POST",
        path,
        json.dumps({"id": episode_id}).encode(),
        _parse_terminated,
        on_error=_terminate_not_supported,
    )
