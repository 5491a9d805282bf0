"""A tiny deterministic tokenizer with a ChatML template, and a policy that "generates" with
it through :class:`~labs_env.policies.chat_tokens.ChatTokens`: the token-level code paths
without torch.

The tokenizer encodes canonically (longest match first), but the policy may emit a
non-canonical split (``"hel"`` + ``"lo"`` for ``"hello"``, ``"\\n"`` + ``"\\n"``), as real
models do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labs_env.policies.chat_tokens import ChatTokens
from labs_env.rollout.generation import Generation
from labs_env.rollout.policy import EpisodeContext

START, END = "<|im_start|>", "<|im_end|>"
SPECIAL = {START: 1, END: 2}
MERGES = ("hello", "hel", "lo", "\n\n", " the", "claim", "Could")


class FakeTokenizer:
    """Longest-match tokenizer: specials, a few merges, then single characters."""

    chat_template = "chatml"
    eos_token_id = 2
    pad_token_id = 2

    def __init__(self, template: str = "chatml") -> None:
        self.chat_template = template
        self.vocab: dict[str, int] = dict(SPECIAL)
        for piece in MERGES:
            self.vocab[piece] = len(self.vocab) + 1
        self.pieces = {i: p for p, i in self.vocab.items()}

    def token(self, piece: str) -> int:
        if piece not in self.vocab:
            self.vocab[piece] = len(self.vocab) + 1
            self.pieces[self.vocab[piece]] = piece
        return self.vocab[piece]

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids, i = [], 0
        longest = sorted([*SPECIAL, *MERGES], key=len, reverse=True)
        while i < len(text):
            piece = next((p for p in longest if text.startswith(p, i)), text[i])
            ids.append(self.token(piece))
            i += len(piece)
        return ids

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return "".join(
            self.pieces[int(t)]
            for t in token_ids
            if not (skip_special_tokens and int(t) in SPECIAL.values())
        )

    def render(self, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool) -> str:
        text = "".join(f"{START}{m['role']}\n{m['content']}{END}\n" for m in messages)
        if self.chat_template == "shifting":  # not prefix-preserving: counts the messages
            text = f"[{len(messages)}]" + text
        return text + (f"{START}assistant\n" if add_generation_prompt else "")

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        add_generation_prompt: bool = False,
        tokenize: bool = True,
        return_dict: bool = False,
    ) -> list[int]:
        return self.encode(self.render(messages, add_generation_prompt))


class FakeTokenPolicy:
    """Replies ``replies[turn]``, tokenised canonically, or by ``splits`` (a reply -> the
    pieces the "model" sampled), ending with the end-of-turn token; prompts come from
    :class:`ChatTokens` (incremental per episode)."""

    def __init__(
        self,
        replies: Sequence[str],
        *,
        splits: Mapping[str, Sequence[str]] | None = None,
        tokenizer: FakeTokenizer | None = None,
        system: str = "Be kind.",
        cut_at: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer or FakeTokenizer()
        self.chat = ChatTokens(self.tokenizer)
        self.replies = list(replies)
        self.splits = dict(splits or {})
        self.system = system
        self.cut_at = cut_at  # a reply longer than this many tokens is cut ("length")

    def __call__(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> Any:
        messages = [{"role": "system", "content": self.system}]
        messages += [{"role": m["role"], "content": m["content"]} for m in history]
        prompt = self.chat.prompt_ids(context.episode_id, messages)
        text = self.replies[min(context.turn, len(self.replies) - 1)]
        if text in self.splits:
            ids = [self.tokenizer.token(p) for p in self.splits[text]]
        else:
            ids = self.tokenizer.encode(text)
        ids.append(self.tokenizer.eos_token_id)
        finish = "stop"
        if self.cut_at is not None and len(ids) > self.cut_at:
            ids, finish = ids[: self.cut_at], "length"
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        self.chat.remember(context.episode_id, messages, prompt, ids, text)
        logprobs = [-0.1 - 0.01 * i for i in range(len(ids))]
        return {
            "content": text,
            "generation": Generation(
                prompt_ids=prompt,
                completion_ids=ids,
                logprobs=logprobs,
                text=text,
                finish_reason=finish,
            ),
        }
