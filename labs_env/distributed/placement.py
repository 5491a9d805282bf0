"""Where the policy runs: shipped to the workers, built on them, or kept on the driver.

- A picklable policy (a function, :class:`~labs_env.policies.ScriptedPolicy`, ...) is sent to
  every worker as is.
- :func:`on_workers` builds the policy on each worker from a factory and its options: the way
  to run an :class:`~labs_env.policies.OpenAIChatPolicy` (which refuses to be pickled, so its
  key is never written out) against a vLLM endpoint. Its key comes from the workers'
  environment (``OPENAI_API_KEY``), e.g. ``actor_options={"runtime_env": {"env_vars": ...}}``.
- :func:`on_driver` keeps the policy in the driver process: workers send each turn's
  ``(history, context)`` to a broker actor, the driver takes them in batches, computes the
  actions (one call per request, or one ``batch_policy`` call per batch, e.g. a local model
  generating for many episodes at once) and sends them back.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labs_env.checks import check_int
from labs_env.errors import LabsValidationError
from labs_env.rollout.policy import Action, EpisodeContext, Policy

__all__ = [
    "BrokerPolicy",
    "DriverPolicy",
    "PlacedPolicy",
    "PolicyBroker",
    "WorkerPolicy",
    "check_shippable",
    "on_driver",
    "on_workers",
    "serve_batch",
]

#: One request from a worker: ``(request id, history, context)``.
PolicyRequest = tuple[int, list[dict[str, Any]], EpisodeContext]
#: One answer: ``(request id, action, error text)``; the action is ``None`` on error.
PolicyAnswer = tuple[int, Action | None, str | None]
BatchPolicy = Callable[[Sequence[tuple[list[dict[str, Any]], EpisodeContext]]], Sequence[Action]]


@dataclass(frozen=True)
class WorkerPolicy:
    """A policy built on each worker: ``factory(*args, **kwargs)`` (see :func:`on_workers`)."""

    factory: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        return self.factory(*self.args, **self.kwargs)


@dataclass(frozen=True)
class DriverPolicy:
    """A policy kept on the driver (see :func:`on_driver`); the workers get an empty one as
    the marker that they must ask the driver."""

    policy: Policy | None = None
    batch_policy: BatchPolicy | None = None
    max_batch: int = 64


#: A policy and where it runs: shipped as is, built on the workers, or kept on the driver.
PlacedPolicy = Policy | WorkerPolicy | DriverPolicy


def on_workers(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> WorkerPolicy:
    """Build the policy on each worker with ``factory(*args, **kwargs)``.

    The factory and its options are pickled and sent to the workers: pass secrets through the
    workers' environment (e.g. ``OPENAI_API_KEY`` in ``actor_options["runtime_env"]``), not
    as options.

    Example:
        >>> from labs_env.policies import OpenAIChatPolicy
        >>> policy = on_workers(OpenAIChatPolicy, base_url="http://gpu-node:8000/v1",
        ...                     model="Qwen/Qwen2.5-7B-Instruct")  # key: $OPENAI_API_KEY there
    """
    if not callable(factory):
        raise LabsValidationError("on_workers", f"{factory!r} is not callable", "pass a class")
    return WorkerPolicy(factory, args, dict(kwargs))


def on_driver(
    policy: Policy | None = None, *, batch_policy: BatchPolicy | None = None, max_batch: int = 64
) -> DriverPolicy:
    """Keep the policy in the driver process; the workers ask it for every action.

    Args:
        policy: ``policy(history, context) -> action`` (sync or async), called once per turn.
        batch_policy: instead, ``batch_policy([(history, context), ...]) -> [action, ...]``,
            called with up to ``max_batch`` pending turns of any episodes at once.
        max_batch: the most turns handed to the driver at once.
    """
    if (policy is None) == (batch_policy is None):
        raise LabsValidationError(
            "on_driver", "needs exactly one of policy and batch_policy", "pass one of them"
        )
    check_int(max_batch, "max_batch", minimum=1)
    return DriverPolicy(policy, batch_policy, max_batch)


def check_shippable(policy: PlacedPolicy) -> None:
    """Raise a clear error when a policy cannot be sent to the workers."""
    import ray.cloudpickle

    try:
        ray.cloudpickle.dumps(policy)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise LabsValidationError(
            "policy",
            f"{type(policy).__name__} cannot be sent to the Ray workers ({exc})",
            "build it on each worker with on_workers(Factory, **options) (secrets from the "
            "workers' environment), or keep it on the driver with on_driver(policy)",
        ) from None


class PolicyBroker:
    """Turns waiting for a driver-side policy (run it as an async Ray actor)."""

    def __init__(self) -> None:
        self._ids = itertools.count()
        self._queue: list[PolicyRequest] = []
        self._waiting: dict[int, asyncio.Future[Action]] = {}
        self._arrived = asyncio.Event()

    async def act(self, history: list[dict[str, Any]], context: EpisodeContext) -> Action:
        """Called by a worker: wait for the driver's action for this turn."""
        request_id = next(self._ids)
        future: asyncio.Future[Action] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        self._queue.append((request_id, history, context))
        self._arrived.set()
        try:
            return await future
        finally:
            self._waiting.pop(request_id, None)

    async def take(self, max_items: int) -> list[PolicyRequest]:
        """Called by the driver: wait for pending turns; take up to ``max_items``."""
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        batch, self._queue = self._queue[:max_items], self._queue[max_items:]
        return batch

    async def answer(self, answers: list[PolicyAnswer]) -> None:
        """Called by the driver: deliver actions (or errors) to the waiting workers."""
        for request_id, action, error in answers:
            future = self._waiting.get(request_id)
            if future is None or future.done():
                continue  # the episode was cancelled meanwhile
            if error is not None:
                future.set_exception(RuntimeError(f"driver-side policy failed: {error}"))
            else:
                future.set_result(action)  # type: ignore[arg-type]


class BrokerPolicy:
    """The workers' stand-in for a driver-side policy: asks the broker actor."""

    def __init__(self, broker: Any) -> None:
        self._broker = broker

    async def __call__(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> Any:
        return await self._broker.act.remote([dict(m) for m in history], context)


def serve_batch(place: DriverPolicy, requests: list[PolicyRequest]) -> list[PolicyAnswer]:
    """Compute the driver-side actions of one batch (errors become answers, not crashes)."""
    from labs_env.rollout.policy import call_policy

    if place.batch_policy is not None:
        try:
            actions = list(place.batch_policy([(h, c) for _, h, c in requests]))
            if len(actions) != len(requests):
                raise ValueError(f"returned {len(actions)} actions for {len(requests)} turns")
        except Exception as exc:
            return [(rid, None, f"{type(exc).__name__}: {exc}") for rid, _, _ in requests]
        return [(rid, action, None) for (rid, _, _), action in zip(requests, actions, strict=True)]
    answers: list[PolicyAnswer] = []
    for request_id, history, context in requests:
        try:
            answers.append((request_id, call_policy(place.policy, history, context), None))
        except Exception as exc:
            answers.append((request_id, None, f"{type(exc).__name__}: {exc}"))
    return answers
