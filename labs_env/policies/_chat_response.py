"""Reading what a chat-completions response says about its generation.

Standard OpenAI fields: ``choices[0].finish_reason``, ``usage``, ``model`` and, when the request
asked for ``logprobs: true``, ``choices[0].logprobs.content[i].logprob``. vLLM adds the token
ids when asked (request ``return_token_ids: true``): ``prompt_token_ids`` on the response and
``token_ids`` on each choice; with ``return_tokens_as_token_ids: true`` each logprob entry's
``token`` reads ``"token_id:<id>"``, which older vLLM versions offer instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from labs_env.rollout.generation import Generation, Truncation

__all__ = ["TOKEN_ID_FIELDS", "UnusableGeneration", "chat_generation"]

#: What a request adds to ask vLLM for token ids.
TOKEN_ID_FIELDS = {"return_token_ids": True, "return_tokens_as_token_ids": True}
_TOKEN_ID_PREFIX = "token_id:"


class UnusableGeneration(ValueError):
    """The response's logprobs or token ids are malformed (the message says which)."""


def chat_generation(
    payload: Mapping[str, Any],
    choice: Mapping[str, Any],
    text: str | None,
    truncations: Sequence[Truncation] = (),
) -> Generation:
    """The :class:`Generation` of ``choice`` in ``payload`` (fields the server left out stay
    ``None``).

    Raises:
        UnusableGeneration: logprobs or token ids that are not what the fields promise.
    """
    entries = _logprob_entries(choice)
    logprobs = None if entries is None else [_logprob(entry, i) for i, entry in enumerate(entries)]
    completion_ids = _ids(choice.get("token_ids"), "choices[0].token_ids")
    if completion_ids is None and entries:
        completion_ids = _ids_from_tokens(entries)
    finish = choice.get("finish_reason")
    model = payload.get("model")
    try:
        return Generation(
            prompt_ids=_ids(payload.get("prompt_token_ids"), "prompt_token_ids"),
            completion_ids=completion_ids,
            logprobs=logprobs,
            text=text,
            finish_reason=finish if isinstance(finish, str) else None,
            usage=_usage(payload.get("usage")),
            model=model if isinstance(model, str) else None,
            truncations=list(truncations),
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        raise UnusableGeneration(first["msg"]) from None


def _logprob_entries(choice: Mapping[str, Any]) -> list[Any] | None:
    block = choice.get("logprobs")
    if block is None:
        return None
    content = block.get("content") if isinstance(block, Mapping) else None
    if content is None:
        return None
    if not isinstance(content, list):
        raise UnusableGeneration("choices[0].logprobs.content is not a list")
    return content


def _logprob(entry: Any, index: int) -> float:
    value = entry.get("logprob") if isinstance(entry, Mapping) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise UnusableGeneration(f"choices[0].logprobs.content[{index}].logprob is not a number")
    return float(value)


def _ids(value: Any, where: str) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in value
    ):
        raise UnusableGeneration(f"{where} is not a list of token ids")
    return list(value)


def _ids_from_tokens(entries: list[Any]) -> list[int] | None:
    """Ids from ``"token_id:<id>"`` tokens (vLLM's ``return_tokens_as_token_ids``); ``None``
    when the tokens are plain text."""
    tokens = [entry.get("token") if isinstance(entry, Mapping) else None for entry in entries]
    if not all(isinstance(t, str) and t.startswith(_TOKEN_ID_PREFIX) for t in tokens):
        return None
    try:
        return [int(str(t)[len(_TOKEN_ID_PREFIX) :]) for t in tokens]
    except ValueError:
        raise UnusableGeneration("a 'token_id:<id>' token has no integer id") from None


def _usage(value: Any) -> dict[str, int] | None:
    if not isinstance(value, Mapping):
        return None
    counts = {
        str(k): int(v)
        for k, v in value.items()
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0
    }
    return counts or None
