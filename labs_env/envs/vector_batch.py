"""Batching per-env results the way Gymnasium's vector envs do, with typed info arrays.

Gymnasium's ``VectorEnv._add_info`` picks an array's dtype from the *first* value it sees, so a
float score that happens to be ``1`` first becomes an int array and later values are truncated;
and a key that is ``None`` in one env and a dict in another breaks it. Here every key is
collected first and typed from all its values:

* all ``bool`` → a ``bool`` array (missing: ``False``);
* all ``int`` → ``int64`` (missing: ``0``);
* any ``float`` among numbers → ``float64`` (missing: ``NaN``: a scenario without a score
  dimension reads as NaN, never as 0);
* anything else → an ``object`` array (missing: ``None``).

Every key ``k`` has a boolean mask ``_k`` (which envs reported it). The dicts under
:data:`NESTED_KEYS` (``scores``, ``final_info``) are stacked recursively, as Gymnasium does;
other dict values (``reward_config``, ``score_breakdown``) stay one object per env.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from labs_env.envs.vector_engine import Outcome
from labs_env.rollout.episode import History

__all__ = ["NESTED_KEYS", "StepResult", "stack_infos", "step_batch"]

StepResult = tuple[
    tuple[History, ...],
    np.ndarray[Any, Any],
    np.ndarray[Any, Any],
    np.ndarray[Any, Any],
    dict[str, Any],
]
#: Info keys whose dict values are stacked key by key (with their own ``_key`` masks).
NESTED_KEYS = frozenset({"scores", "final_info"})


def _array(values: dict[int, Any], num_envs: int) -> np.ndarray[Any, Any]:
    items = list(values.values())
    if all(isinstance(v, (bool, np.bool_)) for v in items):
        array: np.ndarray[Any, Any] = np.zeros(num_envs, dtype=np.bool_)
    elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        array = np.zeros(num_envs, dtype=np.int64)
    elif all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in items
    ):
        array = np.full(num_envs, np.nan, dtype=np.float64)
    else:
        array = np.full(num_envs, None, dtype=object)
        for index, value in values.items():
            array[index] = value  # element-wise: a tuple or list stays one object
        return array
    for index, value in values.items():
        array[index] = value
    return array


def stack_infos(infos: Sequence[Mapping[str, Any] | None], num_envs: int) -> dict[str, Any]:
    """One vector ``info`` dict from per-env dicts (``None``: that env reported nothing).

    Example:
        >>> out = stack_infos([{"scores": {"D1": 1.0}}, {"scores": {"D2": 0.5}}], 2)
        >>> out["scores"]["D1"], out["scores"]["_D1"]
        (array([ 1., nan]), array([ True, False]))
    """
    columns: dict[str, dict[int, Any]] = {}
    for index, info in enumerate(infos):
        if info:
            for key, value in info.items():
                columns.setdefault(key, {})[index] = value
    stacked: dict[str, Any] = {}
    for key, values in columns.items():
        if key in NESTED_KEYS and all(isinstance(v, Mapping) for v in values.values()):
            nested: list[Mapping[str, Any] | None] = [None] * num_envs
            for index, value in values.items():
                nested[index] = value
            stacked[key] = stack_infos(nested, num_envs)
        else:
            stacked[key] = _array(values, num_envs)
        mask = np.zeros(num_envs, dtype=np.bool_)
        mask[list(values)] = True
        stacked[f"_{key}"] = mask
    return stacked


def step_batch(outcomes: Sequence[Outcome], num_envs: int) -> StepResult:
    """The Gymnasium step tuple from per-env outcomes, with SAME_STEP's ``final_obs`` and
    ``final_info`` (and their masks) when an env reset within the step."""
    infos = stack_infos([o.info for o in outcomes], num_envs)
    finals = [o.final for o in outcomes]
    if any(f is not None for f in finals):
        final_obs = np.full(num_envs, None, dtype=object)
        for i, final in enumerate(finals):
            if final is not None:
                final_obs[i] = final[0]
        mask = np.array([f is not None for f in finals], dtype=np.bool_)
        infos["final_obs"], infos["_final_obs"] = final_obs, mask
        infos["final_info"] = stack_infos([f[1] if f else None for f in finals], num_envs)
        infos["_final_info"] = mask.copy()
    return (
        tuple(o.obs for o in outcomes),
        np.array([o.reward for o in outcomes], dtype=np.float64),
        np.array([o.terminated for o in outcomes], dtype=np.bool_),
        np.array([o.truncated for o in outcomes], dtype=np.bool_),
        infos,
    )
