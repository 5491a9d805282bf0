"""Statistics for evaluation: bootstrap intervals, paired differences, win/tie/loss, percentiles.

Everything is numpy, vectorised and seeded: the same data and seed give the same interval.
Missing values (``NaN``) are ignored everywhere, and the number of values actually used is
reported (``n``).

The default interval is the bias-corrected and accelerated (BCa) bootstrap, which corrects the
plain percentile interval for the skew that bounded rewards in [0, 1] often show; pass
``method="percentile"`` for the plain one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from labs_env.errors import LabsValidationError

__all__ = [
    "Interval",
    "WinTieLoss",
    "bootstrap_mean_ci",
    "dimension_means",
    "paired_bootstrap_diff",
    "percentiles",
    "win_tie_loss",
]

Method = Literal["bca", "percentile"]
_CHUNK_CELLS = 2_000_000  # resample matrix cells per chunk: bounded memory for large samples
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval (``NaN`` everywhere when ``n == 0``).

    Attributes:
        mean: the sample mean.
        low / high: the interval bounds.
        n: number of (non-missing) values used.
        confidence: e.g. 0.95.
    """

    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in ``[low, high]`` (``False`` when the bounds are unknown)."""
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``NaN`` becomes ``None``)."""
        return {k: _json_float(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class WinTieLoss:
    """Paired outcome counts of A against B (a tie is ``|a - b| <= eps``)."""

    wins: int
    ties: int
    losses: int

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    def to_dict(self) -> dict[str, int]:
        return {"wins": self.wins, "ties": self.ties, "losses": self.losses, "n": self.n}


def bootstrap_mean_ci(
    values: Iterable[float | None],
    *,
    confidence: float = 0.95,
    n_resamples: int = 5000,
    seed: int = 0,
    method: Method = "bca",
) -> Interval:
    """The mean of ``values`` with a bootstrap confidence interval (missing values ignored).

    With a single value the bounds are ``NaN`` (unknown); with all values equal the interval
    collapses to the mean.

    Example:
        >>> ci = bootstrap_mean_ci([0.2, 0.4, 0.6, 0.8], seed=0)
        >>> round(ci.mean, 2), ci.low < ci.mean < ci.high
        (0.5, True)
    """
    _check_args(confidence, n_resamples, method)
    data = _clean(values)
    n = int(data.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    mean = float(data.mean())
    if n == 1:  # one value says nothing about the spread
        return Interval(mean, math.nan, math.nan, n, confidence)
    if float(np.ptp(data)) == 0.0:
        return Interval(mean, mean, mean, n, confidence)
    means = _resample_means(data, n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    if method == "percentile":
        quantiles = np.array([alpha, 1.0 - alpha])
    else:
        quantiles = _bca_quantiles(data, means, mean, alpha)
    low, high = np.quantile(means, quantiles)
    return Interval(mean, float(min(low, mean)), float(max(high, mean)), n, confidence)


def paired_bootstrap_diff(
    a: Sequence[float | None],
    b: Sequence[float | None],
    *,
    confidence: float = 0.95,
    n_resamples: int = 5000,
    seed: int = 0,
    method: Method = "bca",
) -> Interval:
    """Mean of ``a[i] - b[i]`` with a paired-bootstrap interval (pairs resampled together).

    Pairs where either side is missing are dropped. A positive mean means A scored higher.

    Raises:
        LabsValidationError: ``a`` and ``b`` have different lengths.
    """
    left, right = _paired(a, b)
    return bootstrap_mean_ci(
        left - right, confidence=confidence, n_resamples=n_resamples, seed=seed, method=method
    )


def win_tie_loss(
    a: Sequence[float | None], b: Sequence[float | None], *, eps: float = 1e-3
) -> WinTieLoss:
    """How often A beat, tied or lost to B on paired values (missing pairs dropped).

    Example:
        >>> win_tie_loss([0.9, 0.5, 0.1], [0.5, 0.5, 0.3])
        WinTieLoss(wins=1, ties=1, losses=1)
    """
    if not math.isfinite(eps) or eps < 0:
        raise LabsValidationError("eps", f"must be a finite number >= 0, got {eps!r}")
    left, right = _paired(a, b)
    diff = left - right
    ties = int(np.count_nonzero(np.abs(diff) <= eps))
    wins = int(np.count_nonzero(diff > eps))
    return WinTieLoss(wins=wins, ties=ties, losses=int(diff.size) - wins - ties)


def percentiles(
    values: Iterable[float | None], qs: Sequence[float] = (50, 90, 99)
) -> dict[str, float | None]:
    """``{"p50": ..., "p90": ..., "p99": ...}`` (linear interpolation; ``None`` when empty)."""
    data = _clean(values)
    keys = [f"p{q:g}" for q in qs]
    if data.size == 0:
        return dict.fromkeys(keys)
    found = np.percentile(data, list(qs))
    return {key: float(value) for key, value in zip(keys, found, strict=True)}


def dimension_means(
    score_dicts: Iterable[Mapping[str, Any] | None],
    *,
    confidence: float = 0.95,
    n_resamples: int = 5000,
    seed: int = 0,
    method: Method = "bca",
) -> dict[str, Interval]:
    """Per-dimension mean with an interval over episodes; a dimension missing from an episode
    (or not a finite number there) is ignored for that episode, so ``n`` may differ by
    dimension. Dimensions are returned sorted by name.
    """
    columns: dict[str, list[float]] = {}
    rows = list(score_dicts)
    for row in rows:
        for key in row or {}:
            columns.setdefault(key, [])
    for row in rows:
        for key, column in columns.items():
            column.append(_as_float((row or {}).get(key)))
    return {
        key: bootstrap_mean_ci(
            columns[key],
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
            method=method,
        )
        for key in sorted(columns)
    }


# --------------------------------------------------------------------------- internals


def _resample_means(data: NDArray[np.float64], n_resamples: int, seed: int) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    n = data.size
    rows_per_chunk = max(1, _CHUNK_CELLS // n)
    out = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, rows_per_chunk):
        stop = min(n_resamples, start + rows_per_chunk)
        index = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = data[index].mean(axis=1)
    return out


def _bca_quantiles(
    data: NDArray[np.float64], means: NDArray[np.float64], mean: float, alpha: float
) -> NDArray[np.float64]:
    # Bias correction: where the observed mean sits in the bootstrap distribution (ties half).
    below = np.count_nonzero(means < mean) + 0.5 * np.count_nonzero(means == mean)
    share = min(max(below / means.size, 1.0 / means.size), 1.0 - 1.0 / means.size)
    z0 = _NORMAL.inv_cdf(share)
    # Acceleration from the jackknife means (closed form for the mean: leave-one-out).
    n = data.size
    jack = (data.sum() - data) / (n - 1)
    dev = jack.mean() - jack
    denominator = 6.0 * float(np.sum(dev**2)) ** 1.5
    accel = float(np.sum(dev**3)) / denominator if denominator > 0 else 0.0
    out = []
    for tail in (alpha, 1.0 - alpha):
        z = z0 + _NORMAL.inv_cdf(tail)
        out.append(_NORMAL.cdf(z0 + z / (1.0 - accel * z)))
    return np.array(out)


def _clean(values: Iterable[float | None]) -> NDArray[np.float64]:
    data = np.array([_as_float(v) for v in values], dtype=np.float64)
    return data[np.isfinite(data)]


def _paired(
    a: Sequence[float | None], b: Sequence[float | None]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if len(a) != len(b):
        raise LabsValidationError(
            "b",
            f"paired samples need equal lengths, got {len(a)} and {len(b)}",
            "pair the episodes by scenario and seed first",
        )
    left = np.array([_as_float(v) for v in a], dtype=np.float64)
    right = np.array([_as_float(v) for v in b], dtype=np.float64)
    keep = np.isfinite(left) & np.isfinite(right)
    return left[keep], right[keep]


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _check_args(confidence: float, n_resamples: int, method: str) -> None:
    if not 0.0 < confidence < 1.0:
        raise LabsValidationError(
            "confidence", f"must be in (0, 1), got {confidence!r}", "e.g. 0.95"
        )
    if not isinstance(n_resamples, int) or n_resamples < 100:
        raise LabsValidationError(
            "n_resamples", f"must be an int >= 100, got {n_resamples!r}", "e.g. 5000"
        )
    if method not in ("bca", "percentile"):
        raise LabsValidationError("method", f"must be 'bca' or 'percentile', not {method!r}")
