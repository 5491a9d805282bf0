"""Padding token samples (:class:`~labs_env.training.samples.TokenSample`) into torch tensors
(needs the ``[train]`` extra; torch is imported when called, never when this module is)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labs_env.errors import LabsValidationError
from labs_env.training.samples import TokenSample

__all__ = ["collate"]


def collate(samples: Sequence[TokenSample], *, pad_id: int, device: Any = None) -> dict[str, Any]:
    """Right-padded tensors for a batch of samples.

    Returns a dict of ``[batch, length]`` tensors: ``input_ids`` (long, ``pad_id`` padding),
    ``attention_mask`` (long), ``loss_mask`` (float), ``old_logprobs`` (float, ``NaN`` made
    0 where the mask is 0) and ``advantages`` (float); plus ``rewards`` (``[batch]``).
    Position ``t`` of ``loss_mask``/``old_logprobs``/``advantages`` describes token ``t``: a
    model's logits at ``t - 1`` predict it.

    Raises:
        LabsValidationError: no samples.
    """
    if not samples:
        raise LabsValidationError("samples", "is empty", "collect some episodes first")
    import torch

    width = max(len(s) for s in samples)

    def pad(values: list[np.ndarray[Any, Any]], fill: float, dtype: Any) -> Any:
        out = np.full((len(values), width), fill, dtype=dtype)
        for row, value in enumerate(values):
            out[row, : len(value)] = value
        return torch.from_numpy(out).to(device) if device is not None else torch.from_numpy(out)

    old = [np.where(s.loss_mask > 0, s.old_logprobs, 0.0) for s in samples]
    return {
        "input_ids": pad([s.input_ids for s in samples], pad_id, np.int64),
        "attention_mask": pad([np.ones(len(s), np.int64) for s in samples], 0, np.int64),
        "loss_mask": pad([s.loss_mask for s in samples], 0, np.float32),
        "old_logprobs": pad(old, 0.0, np.float32),
        "advantages": pad([s.advantages for s in samples], 0.0, np.float32),
        "rewards": torch.tensor([s.reward for s in samples], dtype=torch.float32, device=device),
    }
