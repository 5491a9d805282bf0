"""The driver side: hand episode specs to K rollout actors, stream the records back.

:class:`RayCollector` starts K :class:`~labs_env.distributed.worker.RolloutWorker` actors (and
the shared :class:`~labs_env.distributed.quota.QuotaBucket`), keeps ``concurrency_per_worker``
episodes in flight on each, and yields every finished episode's
:class:`~labs_env.TrajectoryRecord` as it arrives: the same records and JSONL as
:func:`labs_env.collect` on one machine.

Fault tolerance: the driver knows which specs each actor is playing. When an actor dies
(killed, out of memory, node lost), its unfinished episodes go back to the front of the queue
and are played by the others; Ray restarts the actor (``max_restarts`` in ``actor_options``)
and it takes work again once it answers. A record is yielded once per spec key (a late
duplicate is dropped), and a lost actor never produces a reward: after ``max_attempts`` losses
the spec comes back as a record with ``error`` set.
"""

from __future__ import annotations

import collections
import contextlib
import os
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

import ray
from ray.exceptions import RayActorError, TaskCancelledError

from labs_env.checks import check_choice, check_flag, check_int, check_optional_int
from labs_env.client.api_key import API_KEY_ENV, ApiKey
from labs_env.client.flow_control import RateLimitSnapshot
from labs_env.connect import is_embedded
from labs_env.distributed._bookkeeping import RayCollectStats, Slot, Tally, lost_record
from labs_env.distributed.placement import (
    DriverPolicy,
    PlacedPolicy,
    PolicyBroker,
    WorkerPolicy,
    check_shippable,
    serve_batch,
)
from labs_env.distributed.quota import QuotaBucket
from labs_env.distributed.worker import RolloutWorker, WorkerSettings, key_digest
from labs_env.errors import LabsValidationError
from labs_env.policies import load_policy
from labs_env.rollout.collection import SYNC_POLICY_MODES, CollectProgress, SyncPolicyMode
from labs_env.rollout.specs import EpisodeSpec
from labs_env.rollout.trajectory import JsonlWriter, TrajectoryRecord

__all__ = ["DEFAULT_ACTOR_OPTIONS", "RayCollector"]

#: Defaults for the rollout actors (merged under the caller's ``actor_options``).
DEFAULT_ACTOR_OPTIONS: dict[str, Any] = {
    "max_restarts": 1,  # Ray restarts a lost actor once; its episodes are re-queued anyway
    "max_task_retries": 0,  # the driver re-queues (on any actor) instead of Ray (same actor)
    "scheduling_strategy": "SPREAD",
}


class RayCollector:
    """K Ray actors playing episodes for this driver (reusable across :meth:`run` calls).

    Args:
        policy: a picklable policy, :func:`~labs_env.distributed.on_workers` (built on each
            worker) or :func:`~labs_env.distributed.on_driver` (kept here).
        workers: number of rollout actors.
        concurrency_per_worker: episodes in flight on each actor.
        ray_address: ``None``: join the Ray instance of ``RAY_ADDRESS`` or start a local one;
            ``"auto"``: an existing cluster; ``"ray://host:10001"``: a remote cluster.
            Ignored if Ray is already initialised in this process.
        api_key: the Labs key (default ``$LABS_API_KEY``); with no key anywhere each worker
            plays on its own embedded local server. Not sent to the workers unless
            ``forward_api_key``: they read ``$LABS_API_KEY`` from their own environment.
        base_url: the service URL (default ``$LABS_URL``); the workers must reach it.
        forward_api_key: put the driver's key into the actors' ``runtime_env`` env vars (it is
            then visible to whoever can inspect the Ray cluster's job and actor metadata).
        local_server: each worker plays on its own embedded local server, whatever the
            environment says (like ``labs-env eval --local``).
        shared_quota: pace all workers with one :class:`~labs_env.distributed.quota.QuotaBucket`
            (``False``: each worker paces itself, as K independent clients would).
        actor_options: Ray options for the rollout actors, over ``DEFAULT_ACTOR_OPTIONS``
            (``max_restarts``, ``num_cpus``, ``runtime_env``, ``resources``, ...).
        max_attempts: plays of one spec lost to dead actors before it is given up (as an
            error record).
        score_turns, validate_tool_calls, max_turns, sync_policy: as for
            :func:`labs_env.collect`.
        client_options: extra :class:`~labs_env.AsyncLabsClient` arguments for the workers.
        init_options: extra ``ray.init`` arguments when this collector starts Ray.

    Example:
        >>> from labs_env import episode_specs
        >>> from labs_env.distributed import RayCollector
        >>> specs = episode_specs("insurance-claims", "delayed-claim-call", episodes=64)
        >>> with RayCollector(lambda h, c: "Hello!", workers=2) as collector:  # doctest: +SKIP
        ...     for record in collector.run(specs, output="runs/ray.jsonl"):
        ...         print(record.extra["spec_key"], record.final_reward)
    """

    def __init__(
        self,
        policy: PlacedPolicy | str,
        *,
        workers: int = 2,
        concurrency_per_worker: int = 32,
        ray_address: str | None = None,
        api_key: str | ApiKey | None = None,
        base_url: str | None = None,
        forward_api_key: bool = False,
        local_server: bool = False,
        shared_quota: bool = True,
        actor_options: Mapping[str, Any] | None = None,
        max_attempts: int = 3,
        score_turns: bool = True,
        validate_tool_calls: bool = False,
        max_turns: int | None = None,
        sync_policy: SyncPolicyMode = "thread",
        client_options: Mapping[str, Any] | None = None,
        init_options: Mapping[str, Any] | None = None,
    ) -> None:
        check_int(workers, "workers", minimum=1)
        check_int(concurrency_per_worker, "concurrency_per_worker", minimum=1)
        check_int(max_attempts, "max_attempts", minimum=1)
        check_flag(score_turns, "score_turns")
        check_flag(validate_tool_calls, "validate_tool_calls")
        check_optional_int(max_turns, "max_turns", minimum=1)
        check_choice(sync_policy, "sync_policy", SYNC_POLICY_MODES)
        if isinstance(policy, str):
            policy = load_policy(policy)
        if not isinstance(policy, (WorkerPolicy, DriverPolicy)) and not callable(policy):
            raise LabsValidationError("policy", f"{policy!r} is not callable", "")
        # What the workers get: a driver-side policy stays here (they get only the marker).
        self._shipped = DriverPolicy() if isinstance(policy, DriverPolicy) else policy
        check_shippable(self._shipped)
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        embedded = local_server or is_embedded(key, base_url)
        if base_url is None:
            base_url = os.environ.get("LABS_URL")
        self._policy = policy
        self._workers = workers
        self._ray_address = ray_address
        self._init_options = dict(init_options or {})
        self._settings = WorkerSettings(
            embedded=embedded,
            base_url=None if embedded else base_url,
            key_digest=None if embedded or not key else key_digest(key),
            concurrency=concurrency_per_worker,
            score_turns=score_turns,
            validate_tool_calls=validate_tool_calls,
            max_turns=max_turns,
            sync_policy=sync_policy,
            client_options=tuple((client_options or {}).items()),
        )
        options = {**DEFAULT_ACTOR_OPTIONS, **dict(actor_options or {})}
        options.setdefault("max_concurrency", concurrency_per_worker + 8)
        if forward_api_key and key:
            runtime_env = dict(options.get("runtime_env") or {})
            env_vars = dict(runtime_env.get("env_vars") or {})
            env_vars[API_KEY_ENV] = key.reveal() if isinstance(key, ApiKey) else key
            options["runtime_env"] = {**runtime_env, "env_vars": env_vars}
        self._actor_options = options
        self._max_attempts = max_attempts
        self._shared_quota = shared_quota
        self._slots: list[Slot] = []
        self._bucket: Any = None
        self._broker: Any = None
        self._owns_ray = False
        self._started = False
        self._running = False
        self.stats = RayCollectStats()

    def __repr__(self) -> str:  # never shows the actor options (they may hold a key)
        return f"RayCollector(workers={self._workers}, started={self._started})"

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> RayCollector:
        """Start Ray if needed, then the actors; wait until every worker is connected."""
        if self._started:
            return self
        if not ray.is_initialized():
            ray.init(
                address=self._ray_address,
                **{"include_dashboard": False, "log_to_driver": False, **self._init_options},
            )
            self._owns_ray = True
        self._started = True
        # Helpers are named: the workers look them up by name (a handle passed as a
        # constructor argument could be gone when Ray restarts a worker).
        names: dict[str, str | None] = {"bucket": None, "broker": None}
        helper: dict[str, Any] = {"num_cpus": 0, "max_restarts": -1, "max_task_retries": -1}
        helper |= {"max_concurrency": 10_000}
        run_id = uuid.uuid4().hex[:12]
        if self._shared_quota:
            names["bucket"] = f"labs-quota-{run_id}"
            self._bucket = ray.remote(QuotaBucket).options(name=names["bucket"], **helper).remote()
        if isinstance(self._policy, DriverPolicy):
            names["broker"] = f"labs-policy-{run_id}"
            self._broker = ray.remote(PolicyBroker).options(name=names["broker"], **helper).remote()
        actor = ray.remote(RolloutWorker).options(**self._actor_options)
        handles: list[Any] = [
            actor.remote(self._shipped, self._settings, names["bucket"], names["broker"])
            for _ in range(self._workers)
        ]
        self._slots = [Slot(i, handle) for i, handle in enumerate(handles)]
        try:
            infos = ray.get([handle.ready.remote() for handle in handles])
        except ray.exceptions.RayTaskError as exc:
            self.close()
            raise exc.as_instanceof_cause() from None  # type: ignore[no-untyped-call]
        except RayActorError as exc:
            self.close()
            raise RuntimeError(
                f"the Ray rollout workers could not start ({type(exc).__name__}; cause "
                "above). If the policy's code lives in a module the workers cannot import, "
                "ship it: actor_options={'runtime_env': {'working_dir': '.'}} or "
                "ray.cloudpickle.register_pickle_by_value(module)"
            ) from exc
        except BaseException:
            self.close()
            raise
        for slot, info in zip(self._slots, infos, strict=True):
            slot.owner = info["owner"]
        self.stats.workers_alive = len(self._slots)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Terminate unfinished episodes, stop the actors (and Ray, if this started it)."""
        if not self._started:
            return
        self._started = False
        live = [slot.handle for slot in self._slots if slot.alive and slot.ping is None]
        if live:
            with contextlib.suppress(Exception):  # best effort: the actors are killed next
                ray.get([h.shutdown.remote(timeout) for h in live], timeout=timeout + 5)
        for handle in [s.handle for s in self._slots] + [self._bucket, self._broker]:
            if handle is not None:
                ray.kill(handle, no_restart=True)
        self._slots, self._bucket, self._broker = [], None, None
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def __enter__(self) -> RayCollector:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def actors(self) -> list[Any]:
        """The rollout actors' handles (e.g. to inspect or kill one)."""
        return [slot.handle for slot in self._slots]

    def wait_for_workers(self, timeout: float | None = None) -> int:
        """Wait (up to ``timeout`` seconds) for lost actors that Ray is restarting to answer;
        returns the number of actors taking work. :meth:`run` takes them back on its own."""
        pings = {slot.ping: slot for slot in self._slots if slot.ping is not None}
        if pings:
            ready, _ = ray.wait(list(pings), num_returns=len(pings), timeout=timeout)
            for ref in ready:
                self._revive(pings[ref])
        return self.stats.workers_alive

    def quota(self) -> tuple[RateLimitSnapshot, dict[str, int]] | None:
        """The shared bucket's view of the key's quota and its counts (``None``: not shared)."""
        if self._bucket is None:
            return None
        snapshot, counts = ray.get([self._bucket.snapshot.remote(), self._bucket.counts.remote()])
        return snapshot, counts

    # ----------------------------------------------------------------- collection

    def run(
        self,
        specs: Iterable[EpisodeSpec],
        *,
        group_size: int = 1,
        output: str | os.PathLike[str] | JsonlWriter | None = None,
        progress: Callable[[CollectProgress], Any] | None = None,
    ) -> Generator[TrajectoryRecord, None, None]:
        """Play every spec once; yield each record as it arrives (completion order).

        Args:
            specs: what to play (see :func:`labs_env.episode_specs`); keys must be
                unique (they identify episodes across actor losses).
            group_size: play each spec ``k`` times as a GRPO group (as in ``collect``).
            output: also append each record to this JSONL file (or :class:`JsonlWriter`)
                as soon as it arrives.
            progress: called with a :class:`~labs_env.CollectProgress` per record.

        Stopping early (``break``, an exception): call ``close()`` on the iterator (or the
        collector) to terminate the episodes still in play.
        """
        todo = [m for s in specs for m in (s.group_of(group_size) if group_size > 1 else [s])]
        seen: set[str] = set()
        for spec in todo:
            if spec.key in seen:
                raise LabsValidationError(
                    "specs", f"two specs share the key {spec.key!r}", "give them distinct seeds"
                )
            seen.add(spec.key)
        if self._running:
            raise LabsValidationError(
                "run", "this collector is already running", "finish (or close) the other run first"
            )
        self.start()
        writer = (
            output if isinstance(output, JsonlWriter) or output is None else JsonlWriter(output)
        )
        self._running = True
        try:
            yield from self._schedule(todo, writer, progress)
        finally:
            for slot in self._slots:
                for ref in slot.playing:
                    ray.cancel(ref)
                slot.playing.clear()
                slot.busy = 0
            if writer is not None and writer is not output:
                writer.close()
            self._running = False

    def _schedule(
        self,
        todo: list[EpisodeSpec],
        writer: JsonlWriter | None,
        progress: Callable[[CollectProgress], Any] | None,
    ) -> Generator[TrajectoryRecord, None, None]:
        queue = collections.deque(todo)
        attempts: collections.Counter[str] = collections.Counter()
        done: set[str] = set()
        owner_of: dict[Any, Slot] = {}
        tally = Tally(len(todo))
        take = self._take() if self._broker is not None else None
        try:
            while queue or owner_of:
                self._dispatch(queue, owner_of)
                pings = {slot.ping: slot for slot in self._slots if slot.ping is not None}
                if not owner_of and not pings:
                    raise RuntimeError("every Ray rollout worker is dead; nothing can play")
                waiting = [*owner_of, *pings, *([take] if take is not None else [])]
                ready, rest = ray.wait(waiting, num_returns=1)
                if rest:  # everything else already finished too, in one pass
                    more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                    ready += more
                for ref in ready:
                    if ref == take:
                        take = self._serve_policy(take)
                    elif ref in pings:
                        self._revive(pings[ref])
                    else:
                        slot = owner_of.pop(ref)
                        spec = slot.playing.pop(ref)
                        slot.busy -= 1
                        record = self._result(ref, slot, spec, queue, attempts)
                        if record is None:
                            continue
                        if spec.key in done:
                            self.stats.duplicates_dropped += 1
                            continue
                        done.add(spec.key)
                        self.stats.played += 1
                        if writer is not None:
                            writer.write(record)
                        if progress is not None:
                            progress(tally.add(record, len(owner_of)))
                        yield record
        finally:
            if take is not None:
                ray.cancel(take)  # the driver-side policy's pending request for turns

    def _dispatch(self, queue: collections.deque[EpisodeSpec], owner_of: dict[Any, Slot]) -> None:
        """Fill every live actor up to its concurrency, least busy first."""
        limit = self._settings.concurrency
        while queue:
            live = [s for s in self._slots if s.alive and s.ping is None and s.busy < limit]
            if not live:
                return
            slot = min(live, key=lambda s: s.busy)
            spec = queue.popleft()
            ref = slot.handle.play.remote(spec)
            slot.playing[ref] = spec
            slot.busy += 1
            owner_of[ref] = slot

    def _result(
        self,
        ref: Any,
        slot: Slot,
        spec: EpisodeSpec,
        queue: collections.deque[EpisodeSpec],
        attempts: collections.Counter[str],
    ) -> TrajectoryRecord | None:
        """The record of a finished call, or ``None`` after re-queueing a lost one."""
        try:
            record: TrajectoryRecord = ray.get(ref)
            return record
        except ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceof_cause()  # type: ignore[no-untyped-call]
            raise cause from None  # a bug in the worker, not a lost actor
        except (RayActorError, TaskCancelledError) as exc:
            if isinstance(exc, RayActorError):
                self._lost(slot)
            attempts[spec.key] += 1
            if attempts[spec.key] < self._max_attempts:
                self.stats.requeued += 1
                queue.appendleft(spec)
                return None
            return lost_record(spec, exc, attempts[spec.key])

    def _lost(self, slot: Slot) -> None:
        """An actor failed a call: stop giving it work until it answers again."""
        if not slot.alive or slot.ping is not None:
            return
        self.stats.workers_lost += 1
        self.stats.workers_alive -= 1
        if self._bucket is not None:
            self._bucket.release.remote(slot.owner)
        # resolves once Ray has restarted it; fails at once if it is out of restarts
        slot.ping = slot.handle.ready.options(max_task_retries=-1).remote()

    def _revive(self, slot: Slot) -> None:
        ping, slot.ping = slot.ping, None
        try:
            slot.owner = ray.get(ping)["owner"]
        except (RayActorError, ray.exceptions.RayTaskError):
            slot.alive = False  # out of restarts (or cannot start): leave it
            return
        self.stats.workers_restarted += 1
        self.stats.workers_alive += 1

    def _take(self) -> Any:
        assert isinstance(self._policy, DriverPolicy)
        return self._broker.take.remote(self._policy.max_batch)

    def _serve_policy(self, take: Any) -> Any:
        assert isinstance(self._policy, DriverPolicy)
        self._broker.answer.remote(serve_batch(self._policy, ray.get(take)))
        return self._take()
