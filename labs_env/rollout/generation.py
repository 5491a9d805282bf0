"""What produced an action: the exact tokens a policy generated, their log-probabilities and how
the generation ended, kept beside the message so trainers never have to re-tokenise.

A policy may return, instead of a plain action, a mapping with a ``"generation"`` entry (a
:class:`Generation` or a dict of its fields):

```python
{"content": text, "tool_calls": [...], "generation": Generation(completion_ids=..., ...)}
```

The message is sent as usual; the generation never leaves the client. It reaches the step's
``info["generation"]``, :class:`~labs_env.rollout.trajectory.TurnRecord.generation` in the
trajectory files, and :mod:`labs_env.training`'s trainer-ready samples.

Example:
    >>> gen = Generation(completion_ids=[5, 9], logprobs=[-0.1, -2.0], finish_reason="length")
    >>> gen.cut_by_length, gen.sum_logprob
    (True, -2.1)
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Generation", "Truncation"]


class Truncation(BaseModel):
    """Something the policy cut before sending (never silently).

    Attributes:
        field: what was cut, e.g. ``"content"`` or ``"tool_calls[0].input"``.
        original_length: its length before the cut (characters, or items).
        kept_length: what was kept.
        reason: why, e.g. ``"the service's 10,000-character message limit"``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    original_length: int = Field(ge=0)
    kept_length: int = Field(ge=0)
    reason: str = ""


class Generation(BaseModel):
    """The record of one model generation (every field optional: keep what the policy knows).

    Attributes:
        prompt_ids: the token ids the model conditioned on (the whole rendered prompt).
        completion_ids: the token ids it generated, in order.
        logprobs: the log-probability of each generated token under the sampling policy
            (one per ``completion_ids`` entry).
        text: the generated text as decoded, before it was parsed into content/tool calls.
        finish_reason: why generation stopped: ``"stop"``, ``"length"`` (cut by the token
            limit), ``"tool_calls"``, ...
        usage: token counts as the model server reports them (``prompt_tokens``, ...).
        model: the model's name.
        truncations: what the policy cut before sending.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    prompt_ids: list[int] | None = None
    completion_ids: list[int] | None = None
    logprobs: list[float] | None = None
    text: str | None = None
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    model: str | None = None
    truncations: list[Truncation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Generation:
        for name in ("prompt_ids", "completion_ids"):
            ids = getattr(self, name)
            if ids is not None and any(token < 0 for token in ids):
                raise ValueError(f"{name} must be token ids >= 0")
        if self.logprobs is not None:
            if any(not math.isfinite(value) or value > 1e-6 for value in self.logprobs):
                raise ValueError("logprobs must be finite log-probabilities (<= 0)")
            if self.completion_ids is not None and len(self.logprobs) != len(self.completion_ids):
                raise ValueError(
                    f"{len(self.logprobs)} logprobs for {len(self.completion_ids)} completion "
                    "tokens: give one log-probability per generated token"
                )
        return self

    @property
    def cut_by_length(self) -> bool:
        """The reply was cut by the token limit (``finish_reason == "length"``)."""
        return self.finish_reason == "length"

    @property
    def sum_logprob(self) -> float | None:
        """The log-probability of the whole completion (``None`` without logprobs)."""
        return None if self.logprobs is None else round(math.fsum(self.logprobs), 12)

    def summary(self) -> dict[str, Any]:
        """The fields that are set, as plain JSON values (what ``info`` carries)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
