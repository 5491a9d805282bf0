"""Time limits of :func:`~labs_env.collect`: per policy call and per episode (wall clock).

A policy that hangs (a model server that never answers, a deadlock) would otherwise hold its
collection slot forever. :class:`TimeLimits` bounds each awaited step of an episode by what is
left of the episode's limit and, for a policy call, by the per-call limit; past it the step is
cancelled and a :class:`TimeLimitError` ends the episode.

A time limit is not a failure of the service (:func:`~labs_env.errors.is_infrastructure_error`
is false): the episode ends with its partial turns and the limit in ``record.error`` (so it is
never taken for a finished episode or a result), and it is terminated on the service.

Only what yields to the event loop can be cut: an ``async`` policy, or a sync one run in the
thread pool (``sync_policy="thread"``, the default; its thread runs on, its answer is dropped).
A sync policy run ``inline`` blocks the loop and cannot be timed out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from labs_env.checks import check_number
from labs_env.errors import LabsError

__all__ = ["EpisodeTimeoutError", "PolicyTimeoutError", "TimeLimitError", "TimeLimits"]

T = TypeVar("T")


class TimeLimitError(LabsError):
    """An episode of :func:`~labs_env.collect` ran past a time limit (not a service failure)."""


class EpisodeTimeoutError(TimeLimitError):
    """The episode ran longer than ``episode_timeout`` seconds (wall clock, creation included)."""


class PolicyTimeoutError(TimeLimitError):
    """One policy call took longer than ``policy_timeout`` seconds."""


class TimeLimits:
    """The limits of one collection.

    Args:
        episode_timeout: seconds an episode may run, wall clock (``None``: no limit).
        policy_timeout: seconds one policy call may take (``None``: no limit).

    Raises:
        LabsValidationError: a limit that is not a positive finite number.

    Example:
        >>> TimeLimits(policy_timeout=30).policy_timeout
        30.0
    """

    def __init__(
        self, *, episode_timeout: float | None = None, policy_timeout: float | None = None
    ) -> None:
        self.episode_timeout = _seconds(episode_timeout, "episode_timeout")
        self.policy_timeout = _seconds(policy_timeout, "policy_timeout")

    def deadline(self) -> float | None:
        """The ``time.monotonic()`` by which an episode starting now must end."""
        return None if self.episode_timeout is None else time.monotonic() + self.episode_timeout

    async def step(
        self, step: Awaitable[T], deadline: float | None, *, turn: int, policy: bool = False
    ) -> T:
        """``await step`` within the episode's ``deadline`` (and ``policy_timeout`` for a
        policy call); past it ``step`` is cancelled.

        Raises:
            EpisodeTimeoutError / PolicyTimeoutError: the binding limit passed.
        """
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        per_call = self.policy_timeout if policy else None
        if left is None and per_call is None:
            return await step
        limit = min(x for x in (left, per_call) if x is not None)
        try:
            return await asyncio.wait_for(step, limit)
        except asyncio.TimeoutError as exc:
            if not isinstance(exc.__cause__, asyncio.CancelledError):
                raise  # the step's own timeout, not the cancellation of a limit
            if per_call is not None and (left is None or per_call <= left):
                raise PolicyTimeoutError(
                    f"the policy did not answer turn {turn + 1} within policy_timeout="
                    f"{per_call:g} s"
                ) from None
            raise EpisodeTimeoutError(
                f"the episode ran past episode_timeout={self.episode_timeout:g} s "
                f"({turn} turn(s) played)"
            ) from None


def _seconds(value: object, field: str) -> float | None:
    return None if value is None else check_number(value, field, positive=True)
