"""Typed wire models of the Labs API (the protocol: ``docs/server.md``, "Endpoints").

Request models are strict (``extra="forbid"``): a misspelt field is an error before anything
is sent. Response models are lenient (``extra="allow"``): the service adds fields over time and
the client must keep working. Both the client and the local server use these models, so the
protocol is written down once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, overload

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "MAX_BATCH_ITEMS",
    "MAX_JSON_DEPTH",
    "MAX_MESSAGE_CHARS",
    "MAX_NORMALIZATION_WINDOWS",
    "MAX_TURNS",
    "NORMALIZATION_WINDOW_PATTERN",
    "QUALITY_WEIGHT_KEYS",
    "TERMINAL_REASONS",
    "BatchEvaluateItem",
    "BatchEvaluateRequest",
    "BatchEvaluateResult",
    "BatchItemResult",
    "Catalog",
    "CatalogCollection",
    "CatalogScenario",
    "CompareRequest",
    "CompareResult",
    "Conversation",
    "CreateEpisodeRequest",
    "EncodedMessages",
    "EpisodeCreated",
    "ErrorBody",
    "EvaluateRequest",
    "EvaluationMetadata",
    "EvaluationResult",
    "Message",
    "Observation",
    "RewardConfig",
    "SubmitTurnRequest",
    "TerminalReason",
    "TerminateResult",
    "ToolCall",
    "ToolDefinition",
    "TurnResult",
    "encode_message",
    "is_plain_json",
    "json_problem",
]

MAX_MESSAGE_CHARS = 10_000
MAX_TURNS = 50
MAX_BATCH_ITEMS = 100
MAX_NORMALIZATION_WINDOWS = 5
NORMALIZATION_WINDOW_PATTERN = re.compile(r"^\d+[dwmn]$")
QUALITY_WEIGHT_KEYS: tuple[str, ...] = (
    "success_metrics",
    "failure_metrics",
    "best_practices",
    "rubrics",
    "discovery",
    "output_similarity",
    "decision_match",
)
TerminalReason = Literal["completed", "error", "max_turns_reached", "client_terminated"]
TERMINAL_REASONS: tuple[str, ...] = ("completed", "error", "max_turns_reached", "client_terminated")


#: How deeply a JSON value sent or written (a tool input, a config) may nest.
MAX_JSON_DEPTH = 64


def json_problem(
    value: Any, path: str = "value", *, max_depth: int = MAX_JSON_DEPTH
) -> tuple[str, str] | None:
    """Why ``value`` is not a plain JSON value, as ``(path of the culprit, problem)``; ``None``
    when it is one.

    Plain JSON: objects with string keys, arrays (lists or tuples), strings of valid Unicode
    (no lone surrogate), finite numbers, booleans and ``None``, nested at most ``max_depth``
    levels. Anything else would be changed on the way (``NaN`` sent as ``null``), fail deep
    inside an encoder, or make a file other JSON readers reject.

    Example:
        >>> json_problem({"amount": [1, float("nan")]}, "input")
        ('input.amount[1]', 'nan is not a finite number (JSON has no NaN or Infinity)')
    """
    stack: list[tuple[str, Any, int]] = [(path, value, 0)]
    while stack:
        where, item, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError as exc:
                    bad = item[exc.start : exc.end]
                    return where, f"contains a lone surrogate {bad!r}, which is not valid Unicode"
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return where, f"{item!r} is not a finite number (JSON has no NaN or Infinity)"
            continue
        if item is None or isinstance(item, int):  # bool is an int
            continue
        if depth >= max_depth:
            return where, f"nests deeper than {max_depth} levels"
        if isinstance(item, Mapping):
            for key in item:
                if not isinstance(key, str):
                    return where, f"has a key {key!r} that is not a string"
            stack.extend((f"{where}.{k}", v, depth + 1) for k, v in reversed(list(item.items())))
        elif isinstance(item, (list, tuple)):
            stack.extend(
                (f"{where}[{i}]", v, depth + 1) for i, v in reversed(list(enumerate(item)))
            )
        else:
            return where, f"is an instance of {type(item).__name__}, not a JSON value"
    return None


def is_plain_json(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is plain JSON (see :func:`json_problem`, which says where it is not).

    The fast check (no paths built): a score breakdown of a turn costs a few microseconds.
    """
    kind = type(value)
    if kind is str:
        return value.isascii() or _valid_unicode(value)
    if kind is float:
        return bool(value - value == 0.0)  # False for NaN and the infinities
    if kind is int or kind is bool or value is None:
        return True
    if depth >= MAX_JSON_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not is_plain_json(item, depth + 1):
                return False
        return True
    if kind is list:
        for item in value:  # noqa: SIM110 (a loop: cheaper than all() over a generator)
            if not is_plain_json(item, depth + 1):
                return False
        return True
    return json_problem(value, max_depth=MAX_JSON_DEPTH - depth) is None


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _checked_json(value: Any, info: ValidationInfo) -> Any:
    """A free-form object (a tool input, ``config``, ``scores``, ...) if it is plain JSON.

    In a request, a ``NaN`` would be sent as ``null`` and an ``object()`` fail deep in the
    encoder: both are refused before anything is sent. In an evaluation or comparison
    response, a ``NaN`` or ``Infinity`` inside ``scores`` breaks the documented shape like a
    reward outside [0, 1] does: the client raises ``APIResponseValidationError``. (A turn's
    scores are checked by the episode that applies the turn, which walks them anyway.)
    """
    if value is None or is_plain_json(value):
        return value
    problem = json_problem(value, str(info.field_name))
    if problem is not None:
        raise ValueError(f"{problem[0]}: {problem[1]}")
    return value


#: A free-form JSON object of a request or response: plain JSON, every number finite.
_JsonObject = Annotated[dict[str, Any], AfterValidator(_checked_json)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------------- shared shapes


class ToolCall(_Request):
    """A tool call on an assistant message: a decision (``{"value": option}``) or an artifact."""

    type: Literal["artifact", "decision"]
    name: str = Field(min_length=1, description="The tool's id, e.g. 'claim_status'.")
    input: _JsonObject


class Message(_Request):
    """One chat message. The client always sends ``role``."""

    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=MAX_MESSAGE_CHARS)
    tool_calls: list[ToolCall] | None = None


_encode_message = Message.__pydantic_serializer__.to_json


def encode_message(message: Message) -> bytes:
    """One message's JSON exactly as a request model encodes it inside a body."""
    return _encode_message(message, exclude_none=True)


def _checked_messages(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    for index, message in enumerate(messages):
        if not isinstance(message, Message):
            raise TypeError(
                f"EncodedMessages holds Message objects; item {index} is {type(message).__name__}"
            )
    return messages


class EncodedMessages(Sequence[Message]):
    """Validated messages together with their JSON, as a request body's ``messages`` holds it.

    An episode's history only grows, and a message's JSON never changes: an episode keeps its
    history as one of these and a turn costs the new message's encoding, not the whole
    conversation's re-validation and re-encoding. Immutable; :meth:`extended` returns a new
    one. The clients send :attr:`json` as is.

    Example:
        >>> history = EncodedMessages([Message(role="user", content="Hi")])
        >>> history.extended(Message(role="assistant", content="Hello")).json
        b'[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]'
    """

    __slots__ = ("_json", "_messages")

    def __init__(self, messages: Iterable[Message] = ()) -> None:
        self._messages = _checked_messages(tuple(messages))
        self._json = b"[" + b",".join(map(encode_message, self._messages)) + b"]"

    @property
    def json(self) -> bytes:
        """The JSON array of the messages, exactly as the request models encode it."""
        return self._json

    def extended(self, *messages: Message) -> EncodedMessages:
        """These messages followed by ``messages`` (only the new ones are encoded)."""
        if not self._messages:
            return EncodedMessages(messages)
        if not messages:
            return self
        joined = EncodedMessages.__new__(EncodedMessages)
        joined._messages = self._messages + _checked_messages(messages)
        joined._json = b"".join(
            (self._json[:-1], b",", b",".join(map(encode_message, messages)), b"]")
        )
        return joined

    def __len__(self) -> int:
        return len(self._messages)

    @overload
    def __getitem__(self, index: int) -> Message: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Message, ...]: ...

    def __getitem__(self, index: int | slice) -> Message | tuple[Message, ...]:
        return self._messages[index]

    def __iter__(self) -> Iterator[Message]:
        return iter(self._messages)

    def __repr__(self) -> str:
        return f"EncodedMessages({list(self._messages)!r})"


class ToolDefinition(_Response):
    """A tool offered by a scenario: ``mode`` is ``json_schema`` (artifact) or ``options``."""

    id: str
    type: str
    name: str
    mode: str
    description: str | None = None
    json_schema: dict[str, Any] | None = None
    options: list[str] | None = None


class Observation(_Response):
    """The persona's message as the service sends it (labelled ``assistant`` by the service)."""

    role: str = "assistant"
    content: str


def _check_weight(key: str, value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"quality_weights[{key!r}] must be a finite number >= 0, got {value!r}; "
            "use 0 (or omit the key) to switch a scorer off"
        )
    return float(value)


class RewardConfig(_Request):
    """Per-turn scoring configuration: which scorers run, their weights, the safety gate.

    When sent, an omitted key weighs 0 and only scorers with weight > 0 run. Weights are
    normalised by their sum by the service.

    Example:
        >>> RewardConfig(quality_weights={"discovery": 1.0}, skip_safety_gate=True).active_scorers
        ('discovery',)
    """

    quality_weights: dict[str, float]
    skip_safety_gate: bool = False

    @field_validator("quality_weights")
    @classmethod
    def _validate_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(QUALITY_WEIGHT_KEYS))
        if unknown:
            raise ValueError(
                f"unknown quality_weights key(s) {unknown}; valid keys are "
                f"{list(QUALITY_WEIGHT_KEYS)}"
            )
        checked = {key: _check_weight(key, value) for key, value in weights.items()}
        if not any(value > 0 for value in checked.values()):
            raise ValueError(
                "quality_weights needs at least one weight > 0; to use the service's default "
                "scoring, send no reward_config at all"
            )
        return checked

    @property
    def active_scorers(self) -> tuple[str, ...]:
        """The scorers that run (weight > 0), in the canonical key order."""
        return tuple(k for k in QUALITY_WEIGHT_KEYS if self.quality_weights.get(k, 0.0) > 0)

    def normalized_weights(self) -> dict[str, float]:
        """Weights of the active scorers divided by their sum."""
        total = sum(self.quality_weights.values())
        return {k: self.quality_weights[k] / total for k in self.active_scorers}


# --------------------------------------------------------------------------- catalog


class CatalogScenario(_Response):
    """One scenario of the catalog: slug, name, description, turn limit and tools."""

    slug: str
    name: str
    description: str = ""
    max_turns: int | None = None
    tools: list[ToolDefinition] = Field(default_factory=list)


class CatalogCollection(_Response):
    """One collection of the catalog and its scenarios."""

    slug: str
    name: str
    description: str = ""
    scenarios: list[CatalogScenario] = Field(default_factory=list)


class Catalog(_Response):
    """``GET /catalog``: the collections and scenarios the key's organisation subscribes to."""

    collections: list[CatalogCollection] = Field(default_factory=list)
    request_id: str | None = None

    def scenario(self, collection_slug: str, scenario_slug: str) -> CatalogScenario | None:
        """The catalog entry of one scenario, or ``None``."""
        for collection in self.collections:
            if collection.slug == collection_slug:
                for scenario in collection.scenarios:
                    if scenario.slug == scenario_slug:
                        return scenario
        return None


# --------------------------------------------------------------------------- episodes


class CreateEpisodeRequest(_Request):
    """The body of ``POST /episodes``."""

    collection_slug: str = Field(min_length=1)
    scenario_slug: str = Field(min_length=1)
    score_turns: bool = False
    config: _JsonObject | None = None


class EpisodeCreated(_Response):
    """``POST /episodes``: the new episode's id, the persona's opening message and the tools."""

    episode_id: str
    initial_observation: Observation
    tools: list[ToolDefinition] = Field(default_factory=list)
    request_id: str | None = None


class SubmitTurnRequest(_Request):
    """The body of ``POST /episodes/{id}/turns`` (the full history, ``id`` equal to the path's)."""

    id: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    reward_config: RewardConfig | None = None


Reward = Field(ge=0.0, le=1.0)


class TurnResult(_Response):
    """``POST /episodes/{id}/turns``: the persona's reply, the reward of the conversation so far,
    and, when the episode ended, why (``terminal_reason``)."""

    turn: int = Field(ge=1)
    observation: Observation
    reward: float = Reward
    episode_complete: bool
    #: Checked by the episode that applies the turn (it walks them anyway): a non-finite
    #: number ends that episode with an ``APIResponseValidationError``.
    scores: dict[str, Any] | None = None
    score_breakdown: dict[str, Any] | None = None
    terminal_reason: str | None = None
    request_id: str | None = None


class TerminateResult(_Response):
    """Response of the non-standard ``POST /episodes/{id}/terminate`` (local server only)."""

    episode_id: str
    episode_complete: bool = True
    terminal_reason: str = "client_terminated"
    request_id: str | None = None


# --------------------------------------------------------------------------- evaluation


def _check_windows(windows: list[str] | None) -> list[str] | None:
    if windows is None:
        return None
    if len(windows) > MAX_NORMALIZATION_WINDOWS:
        raise ValueError(
            f"at most {MAX_NORMALIZATION_WINDOWS} normalization_windows are allowed, "
            f"got {len(windows)}"
        )
    bad = [w for w in windows if not NORMALIZATION_WINDOW_PATTERN.match(w)]
    if bad:
        raise ValueError(
            f"normalization_windows {bad} do not match ^\\d+[dwmn]$ "
            "(e.g. '7d' days, '4w' weeks, '3m' months, '100n' last N evaluations)"
        )
    return windows


class _Normalization(_Request):
    normalization_key: str | None = None
    normalization_windows: list[str] | None = None

    @field_validator("normalization_windows")
    @classmethod
    def _validate_windows(cls, windows: list[str] | None) -> list[str] | None:
        return _check_windows(windows)

    @model_validator(mode="after")
    def _windows_need_key(self) -> _Normalization:
        if self.normalization_windows and not self.normalization_key:
            raise ValueError(
                "normalization_windows requires normalization_key (e.g. your training-run id)"
            )
        return self


class EvaluateRequest(_Normalization):
    """The body of ``POST /evaluate``."""

    collection_slug: str = Field(min_length=1)
    scenario_slug: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    reward_config: RewardConfig | None = None


class EvaluationMetadata(_Response):
    """What ``/evaluate`` says of the evaluation itself."""

    scenario_name: str | None = None
    evaluation_time_ms: float | None = Field(default=None, allow_inf_nan=False)


class EvaluationResult(_Response):
    """``POST /evaluate``: the reward of one complete conversation, with scores when the access
    level returns them and z-scores when normalisation was asked for."""

    reward: float = Reward
    scoring_version: str | None = None
    scores: _JsonObject | None = None
    score_breakdown: _JsonObject | None = None
    normalized: _JsonObject | None = None
    metadata: EvaluationMetadata | None = None
    request_id: str | None = None


class BatchEvaluateItem(_Normalization):
    """One conversation of a ``/batch/evaluate`` request; results are matched by ``id``."""

    id: str = Field(min_length=1)
    collection_slug: str = Field(min_length=1)
    scenario_slug: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)


class BatchEvaluateRequest(_Request):
    """The body of ``POST /batch/evaluate`` (1 to 100 items)."""

    items: list[BatchEvaluateItem] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class BatchItemResult(_Response):
    """One batch result: ``status == "success"`` with a reward, or ``"error"`` with none.

    Error items must never be used as training signal.
    """

    id: str
    status: str = "success"
    reward: float | None = Field(default=None, ge=0.0, le=1.0)
    scores: _JsonObject | None = None
    score_breakdown: _JsonObject | None = None
    normalized: _JsonObject | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success" and self.reward is not None


class BatchEvaluateResult(_Response):
    """``POST /batch/evaluate``: one result per item, in item order."""

    results: list[BatchItemResult]
    scoring_version: str | None = None
    total_time_ms: float | None = Field(default=None, allow_inf_nan=False)
    request_id: str | None = None


class Conversation(_Request):
    """A conversation to compare: ``{"messages": [...]}``."""

    messages: list[Message] = Field(min_length=1)


class CompareRequest(_Request):
    """The body of ``POST /compare``."""

    collection_slug: str = Field(min_length=1)
    scenario_slug: str = Field(min_length=1)
    response_a: Conversation
    response_b: Conversation


class CompareResult(_Response):
    """``POST /compare``: which conversation the service prefers, both rewards and the margin."""

    winner: Literal["a", "b", "tie"]
    reward_a: float = Reward
    reward_b: float = Reward
    margin: float = Field(ge=0.0, allow_inf_nan=False)
    scoring_version: str | None = None
    request_id: str | None = None


# --------------------------------------------------------------------------- errors


class ErrorBody(_Response):
    """``{"message": "...", "data": {"request_id": "req_..."}}``."""

    message: str = ""
    data: dict[str, Any] | None = None

    @property
    def request_id(self) -> str | None:
        value = (self.data or {}).get("request_id")
        return value if isinstance(value, str) else None


def as_messages(messages: Any) -> list[Message]:
    """Coerce dicts or models to :class:`Message` objects (raises pydantic errors)."""
    return [m if isinstance(m, Message) else Message.model_validate(_plain(m)) for m in messages]


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True)
    if isinstance(value, Mapping):
        return dict(value)
    return value
