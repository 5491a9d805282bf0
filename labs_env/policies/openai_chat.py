"""A policy backed by any OpenAI-compatible chat-completions server.

vLLM, SGLang, Ollama, llama.cpp and hosted APIs all speak ``POST {base_url}/chat/completions``
with function calling; this policy maps the episode's tools to functions and the model's tool
calls back to Labs tool calls (see :mod:`labs_env.policies._chat_tools`).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from labs_env.client.api_key import ApiKey
from labs_env.client.retry import RETRY_STATUSES, RetryPolicy, parse_retry_after, record_wait
from labs_env.errors import APIError, LabsValidationError
from labs_env.policies._chat_tools import (
    MalformedMode,
    ToolMapping,
    build_tool_mapping,
    history_to_chat,
    truncate_content,
)
from labs_env.rollout.policy import Action, EpisodeContext

__all__ = ["DEFAULT_SYSTEM_PROMPT", "ChatCompletionError", "OpenAIChatPolicy"]

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
        body, mapping = self.build_request(history, context)
        client = self._sync_client()
        started = time.monotonic()
        for attempt in range(self.max_retries + 1):
            delay: float | None
            try:
                response = client.post(self._url, json=body, headers=self._headers())
            except httpx.TransportError as exc:
                delay = self._delay_after_exception(attempt, exc, started)
            else:
                delay = self._delay_after_response(attempt, response, started)
                if delay is None:
                    return self.parse_response(response, mapping)
            if not record_wait(delay):
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def acall(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> Action:
        """The model's action for this turn (async; one pooled client per event loop)."""
        body, mapping = self.build_request(history, context)
        client = self._async_client()
        started = time.monotonic()
        for attempt in range(self.max_retries + 1):
            delay: float | None
            try:
                response = await client.post(self._url, json=body, headers=self._headers())
            except httpx.TransportError as exc:
                delay = self._delay_after_exception(attempt, exc, started)
            else:
                delay = self._delay_after_response(attempt, response, started)
                if delay is None:
                    return self.parse_response(response, mapping)
            if not record_wait(delay):
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

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
        if mapping.functions:
            body["tools"] = mapping.functions
            body["tool_choice"] = "auto"
        body.update(self.extra_body)
        return body, mapping

    def parse_response(self, response: httpx.Response, mapping: ToolMapping) -> Action:
        """The Labs action from a successful chat-completions response."""
        try:
            message = response.json()["choices"][0]["message"]
            if not isinstance(message, Mapping):
                raise TypeError("message is not an object")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ChatCompletionError(
                f"unusable chat-completions response from {self._url}: {type(exc).__name__}",
                status_code=response.status_code,
            ) from None
        return {
            "content": truncate_content(message.get("content")),
            "tool_calls": mapping.to_labs(message.get("tool_calls"), self.malformed_tool_calls),
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

    def _delay_after_response(
        self, attempt: int, response: httpx.Response, started: float
    ) -> float | None:
        """``None`` on success; a delay before retrying; raises when retries are spent."""
        if response.is_success:
            return None
        status = response.status_code
        delay: float | None = None
        if status in RETRY_STATUSES or status >= 500:
            now = time.time()
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("retry-after"), now)
                delay = self.retry_policy.rate_limit_wait(retry_after, None, now, attempt)
            else:
                delay = self.retry_policy.backoff(attempt)
        if delay is None or not self._may_retry(attempt, delay, started):
            raise ChatCompletionError(
                f"chat-completions request to {self._url} failed with HTTP {status}: "
                f"{self._scrub(_error_text(response))}",
                status_code=status,
            )
        return delay

    def _delay_after_exception(
        self, attempt: int, exc: httpx.TransportError, started: float
    ) -> float:
        delay = self.retry_policy.backoff(attempt)
        if not self._may_retry(attempt, delay, started):
            raise ChatCompletionError(
                f"chat-completions request to {self._url} failed: "
                f"{type(exc).__name__}: {self._scrub(str(exc))}"
            ) from None
        return delay

    def _may_retry(self, attempt: int, delay: float, started: float) -> bool:
        elapsed = time.monotonic() - started
        return attempt < self.max_retries and elapsed + delay <= self.retry_policy.deadline

    def _scrub(self, text: str) -> str:
        return self._api_key.redact(text) if self._api_key is not None else text


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
