"""The rollout actor: plays the episodes the driver hands it, on its own asyncio loop.

Each :class:`RolloutWorker` (an async Ray actor) owns one pooled
:class:`~labs_env.AsyncLabsClient` and plays at most ``concurrency`` episodes at once with the
same episode loop as :func:`labs_env.collect`; each :meth:`RolloutWorker.play` call
returns that episode's :class:`~labs_env.TrajectoryRecord`. The driver decides what each
worker plays (and re-queues what a lost worker was playing), so a worker holds no state the
run depends on: a restarted worker simply takes new episodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from dataclasses import dataclass
from typing import Any

from labs_env.client import AsyncLabsClient
from labs_env.client.api_key import API_KEY_ENV, ApiKey
from labs_env.connect import make_async_client, make_local_async_client
from labs_env.distributed.placement import (
    BrokerPolicy,
    DriverPolicy,
    PlacedPolicy,
    WorkerPolicy,
)
from labs_env.distributed.quota import SharedFlowControl
from labs_env.errors import LabsValidationError
from labs_env.rollout.collection import EpisodeFailed, EpisodeRun, Lane
from labs_env.rollout.driver import EpisodeDriver
from labs_env.rollout.policy import is_policy
from labs_env.rollout.specs import EpisodeSpec
from labs_env.rollout.trajectory import TrajectoryRecord

__all__ = ["RolloutWorker", "WorkerSettings", "key_digest"]


@dataclass(frozen=True)
class WorkerSettings:
    """How every worker plays (sent to the actors; holds no secret).

    Attributes:
        embedded: no API key anywhere: each worker plays on its own embedded local server.
        base_url: the service URL (``None``: the client's default).
        concurrency: episodes in flight per worker.
        score_turns, validate_tool_calls, max_turns, sync_policy: as for
            :func:`labs_env.collect`.
        client_options: extra :class:`~labs_env.AsyncLabsClient` arguments (``timeout``, ...).
        key_digest: :func:`key_digest` of the driver's key: a worker whose own
            ``$LABS_API_KEY`` differs refuses to play (the key itself is never sent).
    """

    embedded: bool
    base_url: str | None
    concurrency: int
    score_turns: bool = True
    validate_tool_calls: bool = False
    max_turns: int | None = None
    sync_policy: str = "thread"
    client_options: tuple[tuple[str, Any], ...] = ()
    key_digest: str | None = None


def key_digest(key: str | ApiKey) -> str:
    """A short one-way digest of an API key, to check two processes hold the same key."""
    text = key.reveal() if isinstance(key, ApiKey) else key
    return hashlib.sha256(b"labs-env-key-check:" + text.strip().encode()).hexdigest()[:16]


class RolloutWorker:
    """Plays episodes for the driver (run it as an async Ray actor).

    Args:
        policy: the policy itself, a :class:`WorkerPolicy` (built here) or a
            :class:`DriverPolicy` (answered through ``broker``).
        settings: see :class:`WorkerSettings`.
        bucket: the name of the shared :class:`~labs_env.distributed.quota.QuotaBucket`
            actor, or ``None`` for a private per-worker rate limiter.
        broker: the name of the :class:`~labs_env.distributed.placement.PolicyBroker` actor
            of a driver-side policy.
    """

    def __init__(
        self,
        policy: PlacedPolicy,
        settings: WorkerSettings,
        bucket: str | None = None,
        broker: str | None = None,
    ) -> None:
        import ray

        self.owner = uuid.uuid4().hex  # this incarnation (a restart gets a new one)
        if isinstance(policy, DriverPolicy):
            if broker is None:
                raise LabsValidationError("broker", "a driver-side policy needs its broker", "")
            policy = BrokerPolicy(ray.get_actor(broker))
        self._policy = policy  # a WorkerPolicy is built in ready(): its errors reach the driver
        self._settings = settings
        self._bucket = ray.get_actor(bucket) if bucket is not None else None
        self._run: EpisodeRun | None = None
        self._client: AsyncLabsClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._start_lock = asyncio.Lock()
        self._gate: SharedFlowControl | None = None

    async def ready(self) -> dict[str, Any]:
        """Connect (once) and report who this is: ``{"owner", "pid", "node"}``."""
        await self._started()
        import ray

        return {
            "owner": self.owner,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
        }

    async def play(self, spec: EpisodeSpec) -> TrajectoryRecord:
        """Play one episode; a failure of the service, network or policy is the record's
        ``error`` (never a reward)."""
        run = await self._started()
        assert self._slots is not None
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            async with self._slots:
                try:
                    return await run.play(spec, None, Lane())
                except EpisodeFailed as failed:
                    return failed.record
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def shutdown(self, timeout: float = 5.0) -> int:
        """Cancel the episodes in play, terminate them on the service, close the client.

        Returns the number of episodes terminated.
        """
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        terminated = 0
        if self._run is not None:
            unfinished = list(self._run.running.values())
            if unfinished:
                driver = self._run.driver
                await asyncio.wait(
                    [asyncio.ensure_future(driver.terminate(e)) for e in unfinished],
                    timeout=timeout,
                )
                terminated = len(unfinished)
            if self._run.executor is not None:
                self._run.executor.shutdown(wait=False, cancel_futures=True)
        if self._gate is not None:
            with contextlib.suppress(Exception):
                await self._gate.flush()  # before the driver stops the bucket
        if self._client is not None:
            await self._client.aclose()
        aclose = getattr(self._policy, "aclose", None)
        if asyncio.iscoroutinefunction(aclose):
            with contextlib.suppress(Exception):
                await aclose()
        return terminated

    async def _started(self) -> EpisodeRun:
        async with self._start_lock:
            if self._run is None:
                self._run = await self._start()
        return self._run

    async def _start(self) -> EpisodeRun:
        settings = self._settings
        if isinstance(self._policy, WorkerPolicy):
            self._policy = self._policy.build()
        options: dict[str, Any] = dict(settings.client_options)
        options["max_connections"] = settings.concurrency
        if self._bucket is not None:
            self._gate = SharedFlowControl(self._bucket, self.owner)
            options["flow_control"] = self._gate
        if settings.embedded:
            client = make_local_async_client(**options)
        else:
            own_key = os.environ.get(API_KEY_ENV)
            if not own_key:
                raise LabsValidationError(
                    "api_key",
                    f"the Ray worker has no {API_KEY_ENV} in its environment",
                    f"set {API_KEY_ENV} on the cluster (runtime_env env_vars) or pass "
                    "forward_api_key=True",
                )
            if settings.key_digest is not None and key_digest(own_key) != settings.key_digest:
                raise LabsValidationError(
                    "api_key",
                    f"the Ray worker's {API_KEY_ENV} is not the driver's key",
                    "set the same key on the cluster, or pass forward_api_key=True",
                )
            client = make_async_client(None, settings.base_url, **options)
        driver = EpisodeDriver(
            client,
            score_turns=settings.score_turns,
            validate_tool_calls=settings.validate_tool_calls,
        )
        with contextlib.suppress(Exception):
            await driver.catalog()  # descriptions and turn limits for the policy's context
        executor = None
        if settings.sync_policy == "thread":
            from labs_env.rollout.policy import is_async_policy

            if not is_async_policy(self._policy):
                import concurrent.futures

                executor = concurrent.futures.ThreadPoolExecutor(
                    min(settings.concurrency, 32), "labs-policy"
                )
        self._client = client
        self._slots = asyncio.Semaphore(settings.concurrency)
        if not is_policy(self._policy):  # built in ready(); a driver's policy is a BrokerPolicy
            raise TypeError(f"not a policy: {type(self._policy).__name__}")
        return EpisodeRun(
            self._policy,
            driver,
            iter(()),  # specs arrive one by one from the driver's queue: no creating ahead
            0,
            max_turns=settings.max_turns,
            prefetch=False,
            sync_policy=settings.sync_policy,
            executor=executor,
            progress=None,
        )
