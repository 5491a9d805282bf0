"""Group-relative advantages (GRPO) for the episodes of :func:`~labs_env.collect_groups`.

A GRPO group is ``k`` episodes of the same scenario and seed. Each member's advantage is its
reward relative to the group's:

- ``normalize="std"`` (default, GRPO): ``A_i = (r_i - mean(r)) / (std(r) + eps)``, with the
  population standard deviation of the group (``ddof=0``), so a group's advantages have mean
  0 and variance ~1; a group whose rewards are all equal gets 0 everywhere (no signal).
- ``normalize="mean"`` (Dr. GRPO): ``A_i = r_i - mean(r)``, no division (the std division
  up-weights groups that barely differ).

With ``reward="final"`` the rewards are the episodes' final rewards and every generated token
of an episode carries its episode's advantage. With ``reward="turn"`` each turn's reward is
compared with the group members' rewards at the same turn number (members that reached it).

Example:
    >>> group_advantages([1.0, 0.0, 0.5, 0.5]).round(3).tolist()
    [1.414, -1.414, 0.0, 0.0]
    >>> group_advantages([0.2, 0.4], normalize="mean").round(3).tolist()
    [-0.1, 0.1]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from labs_env.errors import LabsValidationError
from labs_env.rollout.trajectory import TrajectoryRecord
from labs_env.training.samples import (
    Layout,
    RewardMode,
    Tokenizer,
    TokenSample,
    episode_samples,
)

__all__ = ["NORMALIZATIONS", "Normalization", "group_advantages", "grpo_samples"]

#: How rewards become advantages within a group (module docstring).
Normalization = Literal["std", "mean"]
NORMALIZATIONS: tuple[Normalization, ...] = ("std", "mean")


def group_advantages(
    rewards: Sequence[float], *, normalize: Normalization = "std", eps: float = 1e-6
) -> NDArray[np.float64]:
    """The advantages of one group's rewards (module docstring).

    Raises:
        LabsValidationError: fewer than 2 rewards, a non-finite reward, a bad option.
    """
    if normalize not in NORMALIZATIONS:
        raise LabsValidationError(
            "normalize", f"must be one of {NORMALIZATIONS}, not {normalize!r}"
        )
    values: NDArray[np.float64] = np.asarray(rewards, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise LabsValidationError(
            "rewards",
            f"a GRPO group needs at least 2 members, got {values.size}",
            "collect with collect_groups(..., group_size=k), k >= 2",
        )
    if not np.isfinite(values).all():
        raise LabsValidationError("rewards", "must all be finite numbers")
    if np.ptp(values) == 0:
        return np.zeros(len(values))  # no signal (and no rounding noise)
    centred: NDArray[np.float64] = values - values.mean()
    if normalize == "mean":
        return centred
    scaled: NDArray[np.float64] = centred / (float(values.std()) + eps)
    return scaled


def grpo_samples(
    groups: Iterable[Sequence[TrajectoryRecord]],
    *,
    layout: Layout = "episode",
    reward: RewardMode = "final",
    normalize: Normalization = "std",
    eps: float = 1e-6,
    tokenizer: Tokenizer | None = None,
    drop_failed: bool = True,
) -> list[TokenSample]:
    """Samples with group-relative advantages, group after group.

    Args:
        groups: each a list of a group's records (what :func:`~labs_env.collect_groups`
            yields).
        layout, reward, tokenizer: as for :func:`~labs_env.training.samples.episode_samples`.
        normalize, eps: module docstring.
        drop_failed: leave out episodes that failed (``record.error``: never a reward); a
            group left with fewer than 2 members is skipped. ``False``: raise instead.

    Raises:
        LabsValidationError: a group of fewer than 2 records (checked for every group before
            any sample is built), a bad option, or what ``episode_samples`` raises.
    """
    if normalize not in NORMALIZATIONS:
        raise LabsValidationError(
            "normalize", f"must be one of {NORMALIZATIONS}, not {normalize!r}"
        )
    groups = [list(group) for group in groups]
    for index, group in enumerate(groups):
        if len(group) < 2:
            name = group[0].extra.get("group", index) if group else index
            raise LabsValidationError(
                f"groups[{index}]",
                f"group {name!r} has {len(group)} member(s); GRPO compares at least 2",
                "collect with collect_groups(..., group_size=k), k >= 2",
            )
    out: list[TokenSample] = []
    for group in groups:
        members = [r for r in group if r.ok] if drop_failed else group
        if len(members) < 2:
            continue
        per_episode = [
            episode_samples(r, layout=layout, reward=reward, tokenizer=tokenizer) for r in members
        ]
        out += _assign(per_episode, reward, normalize, eps)
    return out


def _assign(
    per_episode: list[list[TokenSample]], reward: RewardMode, normalize: Normalization, eps: float
) -> list[TokenSample]:
    """Fill each sample's per-span advantages from its group."""
    span_advantage: dict[tuple[int, int], float] = {}  # (episode index, turn) -> advantage
    if reward == "final":
        finals = [samples[0].reward if samples else 0.0 for samples in per_episode]
        values = group_advantages(finals, normalize=normalize, eps=eps)
        for e, samples in enumerate(per_episode):
            for sample in samples:
                for turn in sample.span_turns:
                    span_advantage[e, turn] = float(values[e])
    else:
        by_turn: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for e, samples in enumerate(per_episode):
            seen = {
                t: r for s in samples for t, r in zip(s.span_turns, s.span_rewards, strict=False)
            }
            for turn, turn_reward in seen.items():
                by_turn[turn].append((e, turn_reward))
        for turn, entries in by_turn.items():
            if len(entries) < 2:  # only one member reached this turn: nothing to compare with
                values = np.zeros(len(entries))
            else:
                values = group_advantages([r for _, r in entries], normalize=normalize, eps=eps)
            for (e, _), value in zip(entries, values, strict=False):
                span_advantage[e, turn] = float(value)
    return [
        sample.with_advantages([span_advantage[e, t] for t in sample.span_turns])
        for e, samples in enumerate(per_episode)
        for sample in samples
    ]
