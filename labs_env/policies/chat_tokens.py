"""Multi-turn prompts built from token ids, never from re-tokenised text.

A local LLM policy must condition turn ``k + 1`` on exactly the tokens it generated at turn
``k``: rendering the whole conversation through the chat template again re-tokenises the
model's own replies, and a reply the model spelled with a non-canonical split (``"hel"`` +
``"lo"``, ``"\\n\\n"`` as one token, a multibyte character cut in two) comes back as different
ids, so the trainer would compute log-probabilities of tokens the policy never sampled.

:class:`ChatTokens` keeps, per episode, the ids of everything rendered so far and extends them
with the template's tokens for the new (persona) messages only — the "bridge": what follows
the assistant turn's end-of-turn token up to the next generation prompt. The bridge is
computed the way TRL does for tool results: render a small dummy conversation with and
without the new messages and keep the token suffix, which requires a prefix-preserving
template (checked once, when made).

Works with any tokenizer that has ``apply_chat_template``, ``decode`` and an end-of-turn
token (``eos_token_id``); torch is not needed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labs_env.errors import LabsValidationError

__all__ = ["ChatTokens", "EpisodeTokens"]

_DUMMY = (
    {"role": "system", "content": "s"},
    {"role": "user", "content": "u"},
    {"role": "assistant", "content": "a"},
)


@dataclass
class EpisodeTokens:
    """What one episode rendered so far: its chat messages and their token ids (the last
    assistant turn closed by its end-of-turn token)."""

    messages: list[dict[str, str]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


class ChatTokens:
    """Prompt ids for a chat conversation, incremental per episode (see the module docstring).

    Args:
        tokenizer: a Hugging Face tokenizer (or anything with the same ``apply_chat_template``,
            ``decode`` and ``eos_token_id``).
        incremental: build each episode's prompt from its previous ids (default). ``False``
            renders the whole conversation each turn (for templates that are not
            prefix-preserving; the model's earlier replies are then re-tokenised).
        max_episodes: episodes remembered at once (least recently used forgotten first).

    Raises:
        LabsValidationError: the tokenizer has no chat template, no end-of-turn token, or (with
            ``incremental``) a template that is not prefix-preserving.
    """

    def __init__(self, tokenizer: Any, *, incremental: bool = True, max_episodes: int = 4096):
        if not getattr(tokenizer, "chat_template", None):
            raise LabsValidationError(
                "tokenizer",
                f"{type(tokenizer).__name__} has no chat template",
                "use an instruction-tuned model whose tokenizer defines chat_template, or set "
                "tokenizer.chat_template yourself",
            )
        eos = getattr(tokenizer, "eos_token_id", None)
        if not isinstance(eos, int):
            raise LabsValidationError(
                "tokenizer", "has no eos_token_id (the end-of-turn token)", "set eos_token"
            )
        self.tokenizer = tokenizer
        self.eos_id = eos
        self.incremental = incremental
        self.max_episodes = max_episodes
        self._episodes: OrderedDict[str, EpisodeTokens] = OrderedDict()
        if incremental:
            self.bridge_ids([{"role": "user", "content": "check"}])  # raises if not usable

    # ------------------------------------------------------------------ rendering

    def encode_chat(
        self, messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = False
    ) -> list[int]:
        """The template's token ids for ``messages``."""
        ids = self.tokenizer.apply_chat_template(
            [dict(m) for m in messages],
            add_generation_prompt=add_generation_prompt,
            tokenize=True,
            return_dict=False,
        )
        if isinstance(ids, Mapping):  # some versions return a BatchEncoding regardless
            ids = ids["input_ids"]
        return [int(token) for token in ids]

    def bridge_ids(self, new_messages: Sequence[Mapping[str, str]]) -> list[int]:
        """The ids that follow an assistant turn's end-of-turn token: the rest of the template
        around it, ``new_messages``, and the next generation prompt.

        Raises:
            LabsValidationError: the template is not prefix-preserving.
        """
        prefix = self.encode_chat(_DUMMY)
        ends = [i for i, token in enumerate(prefix) if token == self.eos_id]
        if not ends:
            raise LabsValidationError(
                "tokenizer.chat_template",
                "an assistant turn does not end with the eos token",
                "set eos_token to the template's end-of-turn token",
            )
        prefix = prefix[: ends[-1] + 1]
        full = self.encode_chat([*_DUMMY, *new_messages], add_generation_prompt=True)
        if full[: len(prefix)] != prefix:
            raise LabsValidationError(
                "tokenizer.chat_template",
                "is not prefix-preserving (rendering more messages changes the earlier tokens)",
                "pass incremental=False (earlier replies are then re-tokenised each turn)",
            )
        return full[len(prefix) :]

    # ------------------------------------------------------------------ episodes

    def prompt_ids(self, key: str | None, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """The prompt for the next assistant turn of episode ``key`` (``messages``: the whole
        conversation so far, system message included).

        When ``key``'s remembered messages are a prefix of ``messages`` and end with the
        policy's own reply, the prompt is the remembered ids plus the bridge of the new
        messages; otherwise (first turn, unknown episode, a history that changed) the whole
        conversation is rendered.
        """
        state = self._episodes.get(key) if key and self.incremental else None
        known = len(state.messages) if state is not None else 0
        if (
            state is not None
            and known < len(messages)
            and state.messages[-1]["role"] == "assistant"
            and [_plain(m) for m in messages[:known]] == state.messages
        ):
            return state.ids + self.bridge_ids([_plain(m) for m in messages[known:]])
        return self.encode_chat(messages, add_generation_prompt=True)

    def remember(
        self,
        key: str | None,
        messages: Sequence[Mapping[str, str]],
        prompt_ids: Sequence[int],
        completion_ids: Sequence[int],
        text: str,
    ) -> None:
        """Record the reply of episode ``key``: ``messages`` (the prompt's conversation) plus the
        assistant message ``text``, with ids ``prompt_ids + completion_ids`` closed by the
        end-of-turn token (appended when the reply was cut before it)."""
        if not key or not self.incremental:
            return
        ids = [*prompt_ids, *completion_ids]
        if not completion_ids or completion_ids[-1] != self.eos_id:
            ids.append(self.eos_id)
        state = EpisodeTokens([*map(_plain, messages), {"role": "assistant", "content": text}], ids)
        self._episodes[key] = state
        self._episodes.move_to_end(key)
        while len(self._episodes) > self.max_episodes:
            self._episodes.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop episode ``key``'s state (it ended)."""
        self._episodes.pop(key, None)


def _plain(message: Mapping[str, Any]) -> dict[str, str]:
    content = message.get("content")
    return {"role": str(message.get("role", "user")), "content": content or ""}
