"""Trainer-ready samples from collected episodes: token sequences built from the policy's own
ids, loss masks, old log-probabilities, rewards and group-relative (GRPO) advantages.

- :mod:`~labs_env.training.samples` — :func:`episode_samples` (per episode or per turn),
  the re-tokenisation drift check :func:`find_drift`, :func:`check_decodes`;
- :mod:`~labs_env.training.advantages` — :func:`group_advantages`, :func:`grpo_samples`;
- :mod:`~labs_env.training.torch_batch` — :func:`collate` into padded torch tensors
  (``[train]`` extra; torch is imported only when it is called).

The core is numpy only; ``import labs_env.training`` never imports torch.
"""

from labs_env.training.advantages import (
    NORMALIZATIONS,
    Normalization,
    group_advantages,
    grpo_samples,
)
from labs_env.training.samples import (
    LAYOUTS,
    REWARD_MODES,
    Drift,
    Layout,
    RewardMode,
    SequenceMismatchError,
    Tokenizer,
    TokenSample,
    TokenTextMismatchError,
    check_decodes,
    episode_samples,
    find_drift,
)
from labs_env.training.torch_batch import collate

__all__ = [
    "LAYOUTS",
    "NORMALIZATIONS",
    "REWARD_MODES",
    "Drift",
    "Layout",
    "Normalization",
    "RewardMode",
    "SequenceMismatchError",
    "TokenSample",
    "TokenTextMismatchError",
    "Tokenizer",
    "check_decodes",
    "collate",
    "episode_samples",
    "find_drift",
    "group_advantages",
    "grpo_samples",
]
