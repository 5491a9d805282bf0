"""A policy backed by any OpenAI-compatible chat-completions server.

vLLM, SGLang, Ollama, llama.cpp and hosted APIs all speak ``POST {base_url}/chat/completions``
with function calling; this policy maps the episode's tools to functions and the model's tool
calls back to Labs tool calls (see :mod:`labs_env.policies.chat_format`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from labs_env.checks import check_flag
from labs_env.client.api_key import ApiKey
from labs_env.client.retry import (
    RETRY_STATUSES,
    RetryPolicy,
    parse_retry_after,
    sleep_async,
    sleep_sync,
)
from labs_env.errors import APIError, LabsValidationError
from labs_env.policies._chat_response import TOKEN_ID_FIELDS, UnusableGeneration, chat_generation
from labs_env.policies.chat_format import (
    MalformedMode,
    ToolMapping,
    build_tool_mapping,
    history_to_chat,
    truncate_content,
)
from labs_env.rollout.policy import Action, EpisodeContext

__all__ = ["DEFAULT_SYSTEM_PROMPT", "ChatCompletionError", "OpenAIChatPolicy"]

logger = logging.getLogger("labs_env.policies.openai_chat")

DEFAULT_SYSTEM_PROMPT = (
    "You are the agent in a conversation scenario ({collection}/{scenario}).\n"
    "Scenario: {description}\n"
    "The other party's messages come as user messages; reply as the agent, one message per "
    "turn. Gather the facts you need before acting. When you are ready, record your work with "
    "the provided tools: a decision tool is final, so do not decide too early. "
    "This is turn {turn} of at most {max_turns}."
)
_PLACEHOLDERS = {"collection", "scenario", "description", "turn", "max_turns"}


class ChatCompletionError(APIError):
    """The chat-completions server failed or answered something unusable.

    Attributes:
        status_code: the HTTP status, or ``None`` for connection failures and bad bodies.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class OpenAIChatPolicy:
    """Call a chat-completions model once per turn.

    Each action carries, beside the message, the :class:`~labs_env.rollout.generation.Generation`
    the server reported: ``finish_reason`` (a reply cut by ``max_tokens`` is
    ``"length"``, marked in ``info["reply_cut_by_length"]`` and the record), ``usage``,
    ``model``, per-token ``logprobs`` and, from vLLM, the token ids. Content over the service's
    10,000-character limit is cut and the cut recorded as a
    :class:`~labs_env.rollout.generation.Truncation`.

    Both sync and async: ``policy(history, context)`` blocks, ``await policy.acall(history,
    context)`` does not. Collection code should prefer ``acall`` when it exists (see
    :func:`labs_env.policies.acall_policy`).

    Args:
        base_url: the server's OpenAI base, e.g. ``http://localhost:8000/v1``.
        model: the model name the server knows.
        api_key: bearer token; falls back to ``OPENAI_API_KEY``; none is sent when neither is
            set (local servers rarely need one). Kept in an
            :class:`~labs_env.client.api_key.ApiKey`: never shown in reprs, logs or errors,
            and the policy refuses to be pickled.
        system_prompt: a template with the placeholders ``{collection}``, ``{scenario}``,
            ``{description}``, ``{turn}`` and ``{max_turns}``; ``None`` sends no system message.
        temperature, max_tokens: sampling settings sent with every request.
        logprobs: ask for each generated token's log-probability (``"logprobs": true``).
        token_ids: also ask for the prompt and completion token ids with vLLM's extensions
            (``return_token_ids``, ``return_tokens_as_token_ids``); servers without them may
            reject the request, so only for vLLM (or servers that accept the fields). Token ids
            and log-probabilities are read from the response whenever present.
        timeout: seconds per HTTP request.
        max_retries: extra attempts on connection errors, timeouts, 408, 429 and 5xx.
        retry_policy: backoff, deadline and rate-limit wait caps (the client's
            :class:`~labs_env.RetryPolicy`); a 429's ``Retry-After`` is honoured.
            :func:`labs_env.testing.instant_retries` makes the waits instant in tests.
        malformed_tool_calls: ``"keep"`` (default) sends a call whose arguments are not a JSON
            object as ``{"_raw_arguments": "<text>"}``, so the service judges the model's
            mistake like any invalid call; ``"drop"`` leaves it out. Both log a warning.
        extra_body: extra JSON fields merged into each request (e.g. ``{"top_p": 0.9}``).
        extra_headers: extra HTTP headers.
        transport, async_transport: custom httpx transports (tests, proxies).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | ApiKey | None = None,
        *,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        temperature: float = 0.7,
        max_tokens: int = 512,
        logprobs: bool = True,
        token_ids: bool = False,
        timeout: float = 60.0,
        max_retries: int = 3,
        retry_policy: RetryPolicy | None = None,
        malformed_tool_calls: MalformedMode = "keep",
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        _validate(base_url, model, system_prompt, max_retries, malformed_tool_calls)
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.system_prompt = system_prompt
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.logprobs = check_flag(logprobs, "logprobs")
        self.token_ids = check_flag(token_ids, "token_ids")
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_policy = retry_policy or RetryPolicy()
        self.malformed_tool_calls: MalformedMode = malformed_tool_calls
        self.extra_body = dict(extra_body or {})
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._api_key: ApiKey | None = None
        if isinstance(key, ApiKey):
            self._api_key = key
        elif key and key.strip():
            self._api_key = ApiKey(key.strip())
        self._extra_headers = dict(extra_headers or {})
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._async_clients: dict[int, httpx.AsyncClient] = {}

    def __repr__(self) -> str:
        key = "set" if self._api_key is not None else "none"
        return f"OpenAIChatPolicy(base_url={self.base_url!r}, model={self.model!r}, api_key={key})"

    # ------------------------------------------------------------------ calling

    def __call__(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> Action:
        """The model's action for this turn (blocking)."""
        exchange = self._exchange(history, context)
        client = self._sync_client()
        while True:
            try:
                response = client.post(self._url, json=exchange.body, headers=self._headers())
            except httpx.TransportError as exc:
                exchange.failed(exc)
            else:
                if exchange.answered(response):
                    return exchange.action
            sleep_sync(exchange.delay)

    async def acall(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> Action:
        """The model's action for this turn (async; one pooled client per event loop)."""
        exchange = self._exchange(history, context)
        client = self._async_client()
        while True:
            try:
                response = await client.post(self._url, json=exchange.body, headers=self._headers())
            except httpx.TransportError as exc:
                exchange.failed(exc)
            else:
                if exchange.answered(response):
                    return exchange.action
            await sleep_async(exchange.delay)

    def close(self) -> None:
        """Close the sync HTTP client (async clients: :meth:`aclose`)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async client of the running loop and the sync client."""
        client = self._async_clients.pop(id(asyncio.get_running_loop()), None)
        if client is not None:
            await client.aclose()
        self.close()

    def __enter__(self) -> OpenAIChatPolicy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ request / response

    def build_request(
        self, history: Sequence[Mapping[str, Any]], context: EpisodeContext
    ) -> tuple[dict[str, Any], ToolMapping]:
        """The chat-completions request body for this turn and the tool mapping used."""
        mapping = build_tool_mapping(context.tools)
        messages = history_to_chat(history, mapping)
        if self.system_prompt is not None:
            messages.insert(0, {"role": "system", "content": self._system_text(context)})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.logprobs:
            body["logprobs"] = True
        if self.token_ids:
            body.update(TOKEN_ID_FIELDS)
        if mapping.functions:
            body["tools"] = mapping.functions
            body["tool_choice"] = "auto"
        body.update(self.extra_body)
        return body, mapping

    def parse_response(self, response: httpx.Response, mapping: ToolMapping) -> Action:
        """The Labs action from a successful chat-completions response, with the
        :class:`~labs_env.rollout.generation.Generation` that produced it (finish reason,
        usage, model, and the log-probabilities and token ids the server returned)."""
        try:
            payload = response.json()
            choice = payload["choices"][0]
            message = choice["message"]
            if not isinstance(message, Mapping) or not isinstance(choice, Mapping):
                raise TypeError("message is not an object")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ChatCompletionError(
                f"unusable chat-completions response from {self._url}: {type(exc).__name__}",
                status_code=response.status_code,
            ) from None
        raw = message.get("content")
        content, truncation = truncate_content(raw)
        try:
            generation = chat_generation(
                payload,
                choice,
                raw if isinstance(raw, str) else None,
                [] if truncation is None else [truncation],
            )
        except UnusableGeneration as exc:
            raise ChatCompletionError(
                f"unusable chat-completions response from {self._url}: {exc}",
                status_code=response.status_code,
            ) from None
        if generation.cut_by_length:
            logger.warning("the model's reply was cut by max_tokens=%d", self.max_tokens)
        return {
            "content": content,
            "tool_calls": mapping.to_labs(message.get("tool_calls"), self.malformed_tool_calls),
            "generation": generation,
        }

    # ------------------------------------------------------------------ internals

    @property
    def _url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self._extra_headers}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.reveal()}"
        return headers

    def _system_text(self, context: EpisodeContext) -> str:
        return (self.system_prompt or "").format(
            collection=context.collection,
            scenario=context.scenario,
            description=context.description or "(no description)",
            turn=context.turn + 1,
            max_turns=context.max_turns if context.max_turns is not None else "unknown",
        )

    def _sync_client(self) -> httpx.Client:
        with self._lock:  # policies are shared across threads by some collectors
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout, transport=self._transport)
            return self._client

    def _async_client(self) -> httpx.AsyncClient:
        loop_id = id(asyncio.get_running_loop())
        client = self._async_clients.get(loop_id)
        if client is None:
            client = httpx.AsyncClient(timeout=self.timeout, transport=self._async_transport)
            self._async_clients = {loop_id: client}  # clients of finished loops are unusable
        return client

    def _exchange(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> _Exchange:
        body, mapping = self.build_request(history, context)
        return _Exchange(self, body, mapping)

    def _scrub(self, text: str) -> str:
        return self._api_key.redact(text) if self._api_key is not None else text


class _Exchange:
    """One logical call's retry decisions, without I/O (the sync and async callers differ only
    in how they send and sleep): after each attempt, :meth:`answered` or :meth:`failed` either
    settles the call (``action`` set, or an error raised) or sets ``delay`` before the next."""

    def __init__(self, policy: OpenAIChatPolicy, body: dict[str, Any], mapping: ToolMapping):
        self.policy = policy
        self.body = body
        self.mapping = mapping
        self.attempt = 0
        self.delay = 0.0
        self.action: Action = ""
        self._started = time.monotonic()

    def answered(self, response: httpx.Response) -> bool:
        """``True`` when the call is settled (``action``); ``False``: retry after ``delay``.

        Raises:
            ChatCompletionError: a failure that is not retried, or retries spent.
        """
        policy = self.policy
        if response.is_success:
            self.action = policy.parse_response(response, self.mapping)
            return True
        status = response.status_code
        delay: float | None = None
        if status in RETRY_STATUSES or status >= 500:
            now = time.time()
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("retry-after"), now)
                delay = policy.retry_policy.rate_limit_wait(retry_after, None, now, self.attempt)
            else:
                delay = policy.retry_policy.backoff(self.attempt)
        if delay is None or not self._may_retry(delay):
            raise ChatCompletionError(
                f"chat-completions request to {policy._url} failed with HTTP {status}: "
                f"{policy._scrub(_error_text(response))}",
                status_code=status,
            )
        self._next(delay)
        return False

    def failed(self, exc: httpx.TransportError) -> None:
        """A connection failure: set ``delay``, or raise when retries are spent."""
        delay = self.policy.retry_policy.backoff(self.attempt)
        if not self._may_retry(delay):
            raise ChatCompletionError(
                f"chat-completions request to {self.policy._url} failed: "
                f"{type(exc).__name__}: {self.policy._scrub(str(exc))}"
            ) from None
        self._next(delay)

    def _may_retry(self, delay: float) -> bool:
        elapsed = time.monotonic() - self._started
        policy = self.policy
        return self.attempt < policy.max_retries and elapsed + delay <= policy.retry_policy.deadline

    def _next(self, delay: float) -> None:
        self.attempt += 1
        self.delay = delay


def _validate(
    base_url: str, model: str, system_prompt: str | None, max_retries: int, malformed: str
) -> None:
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise LabsValidationError(
            "base_url", f"must be an http(s) URL, got {base_url!r}", "e.g. http://localhost:8000/v1"
        )
    if not isinstance(model, str) or not model:
        raise LabsValidationError(
            "model", "must be a non-empty model name", "e.g. model='qwen3-8b'"
        )
    if not isinstance(max_retries, int) or max_retries < 0:
        raise LabsValidationError("max_retries", f"must be an int >= 0, got {max_retries!r}")
    if malformed not in ("keep", "drop"):
        raise LabsValidationError(
            "malformed_tool_calls", f"must be 'keep' or 'drop', not {malformed!r}"
        )
    if system_prompt is not None:
        try:
            system_prompt.format(**dict.fromkeys(_PLACEHOLDERS, ""))
        except (KeyError, IndexError, ValueError) as exc:
            raise LabsValidationError(
                "system_prompt",
                f"is not a valid template ({type(exc).__name__}: {exc})",
                f"use only the placeholders {sorted(_PLACEHOLDERS)}; "
                "write literal braces doubled: {{ and }}",
            ) from None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:300]
    return json.dumps(body)[:300]
