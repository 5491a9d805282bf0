"""Fault injection: make the local server slow or unreliable on purpose, reproducibly.

One seeded random draw per request decides its fate, so a test that sends the same requests
in the same order sees the same faults. Latency applies to every request; the failure kinds
apply only to the endpoints listed in :attr:`FaultConfig.endpoints` (all when ``None``).
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass

__all__ = ["ENDPOINTS", "FaultConfig", "FaultInjector", "FaultKind", "FaultPlan"]

#: Endpoint names usable in :attr:`FaultConfig.endpoints`.
ENDPOINTS: tuple[str, ...] = (
    "catalog",
    "create_episode",
    "submit_turn",
    "terminate",
    "evaluate",
    "batch_evaluate",
    "compare",
)


class FaultKind(enum.Enum):
    """What happens to one request."""

    NONE = "none"
    RATE_LIMIT = "rate_limit"  # 429 before processing
    SERVER_ERROR = "server_error"  # 500 before processing
    UNAVAILABLE = "unavailable"  # 503 before processing
    DROP = "drop"  # connection closed before processing
    LOST_RESPONSE = "lost_response"  # processed (committed), then the connection closed


@dataclass(frozen=True)
class FaultConfig:
    """What to inject. Rates are probabilities per request; their sum must be <= 1.

    Attributes:
        latency_ms: added to every response.
        latency_jitter_ms: plus a uniform random extra in ``[0, latency_jitter_ms]``.
        rate_limit_rate: share of requests answered 429 ``Rate limit exceeded``.
        rate_limit_retry_after: ``Retry-After`` seconds sent with injected 429s
            (``None``: no header, the client must back off on its own).
        server_error_rate: share answered 500 ``Internal server error``.
        unavailable_rate: share answered 503 ``Service unavailable``.
        drop_rate: share whose connection is closed before the server reads the request.
        lost_response_rate: share processed and committed whose response is then lost
            (the connection closes) -- the case idempotency keys exist for.
        endpoints: endpoint names (see :data:`ENDPOINTS`) the failures apply to;
            ``None`` = all.
        seed: seed of the fault RNG (``None``: unseeded).

    Example:
        >>> FaultConfig(lost_response_rate=0.1, endpoints=frozenset({"submit_turn"})).active
        True
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_limit_rate: float = 0.0
    rate_limit_retry_after: float | None = 1.0
    server_error_rate: float = 0.0
    unavailable_rate: float = 0.0
    drop_rate: float = 0.0
    lost_response_rate: float = 0.0
    endpoints: frozenset[str] | None = None
    seed: int | None = 0

    def __post_init__(self) -> None:
        for name in ("latency_ms", "latency_jitter_ms"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"FaultConfig.{name} must be a finite number >= 0")
        rates = self._rates()
        for name, value in rates:
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultConfig.{name} must be in [0, 1], got {value!r}")
        if sum(value for _, value in rates) > 1.0 + 1e-9:
            raise ValueError("the FaultConfig rates must add up to at most 1")
        if self.rate_limit_retry_after is not None and self.rate_limit_retry_after < 0:
            raise ValueError("FaultConfig.rate_limit_retry_after must be >= 0 or None")
        if self.endpoints is not None:
            endpoints = frozenset(self.endpoints)
            unknown = sorted(endpoints - set(ENDPOINTS))
            if unknown:
                raise ValueError(f"unknown endpoint name(s) {unknown}; use {list(ENDPOINTS)}")
            object.__setattr__(self, "endpoints", endpoints)

    def _rates(self) -> list[tuple[str, float]]:
        return [
            ("rate_limit_rate", self.rate_limit_rate),
            ("server_error_rate", self.server_error_rate),
            ("unavailable_rate", self.unavailable_rate),
            ("drop_rate", self.drop_rate),
            ("lost_response_rate", self.lost_response_rate),
        ]

    @property
    def active(self) -> bool:
        """Whether anything at all is injected."""
        return bool(self.latency_ms or self.latency_jitter_ms or self.failure_rate)

    @property
    def failure_rate(self) -> float:
        """The share of (affected) requests that fail."""
        return sum(value for _, value in self._rates())


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The fate of one request."""

    kind: FaultKind
    delay: float


_NO_FAULT = FaultPlan(FaultKind.NONE, 0.0)
_KINDS = (
    FaultKind.RATE_LIMIT,
    FaultKind.SERVER_ERROR,
    FaultKind.UNAVAILABLE,
    FaultKind.DROP,
    FaultKind.LOST_RESPONSE,
)


class FaultInjector:
    """Draws a :class:`FaultPlan` per request from a seeded RNG."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._active = config.active
        self._thresholds: list[tuple[float, FaultKind]] = []
        cumulative = 0.0
        for (_, rate), kind in zip(config._rates(), _KINDS, strict=True):
            if rate > 0:
                cumulative += rate
                self._thresholds.append((cumulative, kind))

    def plan(self, endpoint: str | None) -> FaultPlan:
        """Decide what happens to a request to ``endpoint`` (``None``: unknown route)."""
        if not self._active:
            return _NO_FAULT
        config = self.config
        delay = config.latency_ms / 1000.0
        if config.latency_jitter_ms:
            delay += self._rng.uniform(0.0, config.latency_jitter_ms) / 1000.0
        kind = FaultKind.NONE
        affected = endpoint is not None and (
            config.endpoints is None or endpoint in config.endpoints
        )
        if self._thresholds and affected:
            draw = self._rng.random()
            for threshold, candidate in self._thresholds:
                if draw < threshold:
                    kind = candidate
                    break
        return FaultPlan(kind, delay)
