"""Reward normalisation for ``/evaluate``: z-scores against a key's recent evaluations.

Each (API key, ``normalization_key``) keeps a bounded history of (time, reward). A window is
``<N>d`` (days), ``<N>w`` (weeks), ``<N>m`` (30-day months) or ``<N>n`` (the last N
evaluations). The z-score of a reward is ``(reward - mean) / std`` over the *earlier*
evaluations in the window (population std); it is 0.0 with fewer than two of them or when
they are all equal.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

__all__ = ["NormalizationHistory", "window_zscore"]

_SECONDS = {"d": 86_400.0, "w": 7 * 86_400.0, "m": 30 * 86_400.0}


def window_zscore(
    reward: float, history: Sequence[tuple[float, float]], window: str, now: float
) -> float:
    """The z-score of ``reward`` against the entries of ``history`` inside ``window``."""
    count, unit = int(window[:-1]), window[-1]
    if unit == "n":
        values = [value for _, value in history[len(history) - count :]] if count else []
    else:
        since = now - count * _SECONDS[unit]
        values = [value for at, value in history if at >= since]
    if len(values) < 2:
        return 0.0
    mean = math.fsum(values) / len(values)
    variance = math.fsum((value - mean) ** 2 for value in values) / len(values)
    std = math.sqrt(variance)
    if std < 1e-12:
        return 0.0
    return (reward - mean) / std


class NormalizationHistory:
    """Bounded per-key histories of evaluation rewards.

    Args:
        clock: Unix time in seconds (injectable).
        max_keys: the most (API key, normalization key) pairs kept (oldest dropped).
        max_entries: the most rewards kept per pair.
    """

    def __init__(
        self, clock: Callable[[], float], max_keys: int = 1_000, max_entries: int = 10_000
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._max_entries = max_entries
        self._histories: OrderedDict[tuple[str, str], deque[tuple[float, float]]] = OrderedDict()

    def record(
        self, scope: str, key: str, reward: float, windows: Sequence[str] | None
    ) -> dict[str, float] | None:
        """Z-scores of ``reward`` per window (``None`` without windows), then remember it."""
        now = self._clock()
        history = self._histories.get((scope, key))
        if history is None:
            history = deque(maxlen=self._max_entries)
            self._histories[(scope, key)] = history
            while len(self._histories) > self._max_keys:
                self._histories.popitem(last=False)
        else:
            self._histories.move_to_end((scope, key))
        zscores = None
        if windows:
            snapshot = list(history)
            zscores = {window: window_zscore(reward, snapshot, window, now) for window in windows}
        history.append((now, reward))
        return zscores
