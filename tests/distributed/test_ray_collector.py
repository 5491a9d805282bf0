"""Distributed collection on a local Ray: same records, no loss or duplicates, one quota.

One Ray instance (2 CPUs, small object store) and one local Labs server on 127.0.0.1 serve
the whole module: the workers are separate processes, so they reach the server over loopback.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import ray

from labs_env import TrajectoryRecord
from labs_env.cli import main
from labs_env.distributed import (
    RayCollector,
    acollect_ray,
    collect_ray,
    on_driver,
    on_workers,
)
from labs_env.errors import LabsValidationError
from labs_env.policies import OpenAIChatPolicy, ScriptedPolicy
from labs_env.rollout.collection import collect_sync, episode_specs
from labs_env.rollout.policy import EpisodeContext
from labs_env.rollout.trajectory import read_trajectories
from labs_env.server import DEMO_API_KEY, LabsServer, ServerConfig, run_in_thread
from labs_env.server.accounts import Account, demo_account
from labs_env.server.wire import Response

# The workers cannot import this test module: ship its functions by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

COLLECTION, SCENARIO = "insurance-claims", "delayed-claim-call"
SMALL_KEY = "lab_small_quota"
SMALL_LIMIT = 12  # requests per 2-second window
VOLATILE = {"episode_id", "started_at", "duration_s"}
VOLATILE_TURN = {"latency_s", "request_id"}


class CountingServer(LabsServer):
    """The local server, counting response statuses per API key."""

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.statuses: dict[str, collections.Counter[int]] = collections.defaultdict(
            collections.Counter
        )
        self._count_lock = threading.Lock()

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Response:
        response = super().handle(method, path, headers, body)
        key = (headers.get("authorization") or "").removeprefix("Bearer ")
        with self._count_lock:
            self.statuses[key][response.status] += 1
        return response


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, CountingServer]]:
    accounts = (demo_account(), Account(SMALL_KEY, name="small", rate_limit_per_minute=SMALL_LIMIT))
    labs = CountingServer(ServerConfig(accounts=accounts, rate_limit_window_s=2))
    with run_in_thread(labs) as url:
        yield url, labs


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(
        num_cpus=2,
        object_store_memory=80 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


def comparable(record: TrajectoryRecord) -> dict[str, Any]:
    data = record.model_dump(exclude=VOLATILE)
    data["turns"] = [{k: v for k, v in t.items() if k not in VOLATILE_TURN} for t in data["turns"]]
    return data


def by_key(records: list[TrajectoryRecord]) -> dict[str, dict[str, Any]]:
    return {r.extra["spec_key"]: comparable(r) for r in records}


class Hold:
    """A Ray actor that holds every policy call made in one chosen worker process.

    The episodes that process plays stay in flight until it is killed: a test that kills a
    worker knows it loses episodes (no "slow enough" policy, no race with a fast machine).
    """

    def __init__(self) -> None:
        self.held_pid: int | None = None
        self.never = asyncio.Event()  # never set: a held call ends only with its process

    def hold(self, pid: int) -> None:
        self.held_pid = pid

    async def passage(self, pid: int) -> None:
        if pid == self.held_pid:
            await self.never.wait()


class HeldScripted:
    """The scripted baseline, built on each worker; waits for the :class:`Hold` first."""

    def __init__(self, hold_name: str) -> None:
        self.hold = ray.get_actor(hold_name)

    async def __call__(self, history: Any, context: EpisodeContext) -> Any:
        await self.hold.passage.remote(os.getpid())
        return ScriptedPolicy()(history, context)


@contextlib.contextmanager
def holding_worker(url: str, victim: int, max_restarts: int) -> Iterator[RayCollector]:
    """Two workers playing the scripted baseline; the episodes worker ``victim`` takes are
    held (in flight) until that worker's process dies."""
    name = f"hold-{uuid.uuid4().hex}"
    hold = ray.remote(Hold).options(name=name, num_cpus=0).remote()
    try:
        with RayCollector(
            on_workers(lambda: HeldScripted(name)),
            workers=2,
            concurrency_per_worker=2,
            api_key=DEMO_API_KEY,
            base_url=url,
            forward_api_key=True,
            actor_options={"max_restarts": max_restarts},
        ) as collector:
            pid = ray.get(collector.actors[victim].ready.remote())["pid"]
            ray.get(hold.hold.remote(pid))  # before run(): no episode of it gets through
            yield collector
    finally:
        ray.kill(hold)


def test_records_equal_the_single_process_collector(server: tuple[str, CountingServer]) -> None:
    url, _ = server
    specs = episode_specs(COLLECTION, SCENARIO, episodes=6, seed=11)
    local = collect_sync(ScriptedPolicy(), specs, api_key=DEMO_API_KEY, base_url=url)
    distributed = list(
        collect_ray(
            ScriptedPolicy(),
            specs,
            workers=2,
            concurrency_per_worker=2,
            api_key=DEMO_API_KEY,
            base_url=url,
            forward_api_key=True,
        )
    )
    assert len(distributed) == len(specs)
    assert all(r.ok and r.num_turns > 1 for r in distributed)
    assert by_key(distributed) == by_key(local)


def test_a_driver_side_policy_gives_the_same_records(server: tuple[str, CountingServer]) -> None:
    url, _ = server
    specs = episode_specs(COLLECTION, SCENARIO, episodes=4, seed=20, group_size=2)
    batches: list[int] = []
    scripted = ScriptedPolicy()
    lock = threading.Lock()  # cannot be pickled: proves the policy never leaves the driver

    def batch_policy(turns: Any) -> list[Any]:
        with lock:
            batches.append(len(turns))
        return [scripted(history, context) for history, context in turns]

    local = collect_sync(scripted, specs, api_key=DEMO_API_KEY, base_url=url)

    async def gather() -> list[TrajectoryRecord]:
        stream = acollect_ray(
            on_driver(batch_policy=batch_policy),
            specs,
            workers=2,
            concurrency_per_worker=4,
            api_key=DEMO_API_KEY,
            base_url=url,
            forward_api_key=True,
        )
        return [record async for record in stream]

    distributed = asyncio.run(gather())
    assert by_key(distributed) == by_key(local)
    assert sum(batches) == sum(r.num_turns for r in local)  # every turn asked the driver
    assert max(batches) > 1  # turns of several episodes were batched together


def test_killing_an_actor_loses_and_duplicates_nothing(
    server: tuple[str, CountingServer], tmp_path: Any
) -> None:
    url, _ = server
    specs = episode_specs(COLLECTION, SCENARIO, episodes=10, seed=40)
    out = tmp_path / "records.jsonl"
    with holding_worker(url, victim=0, max_restarts=1) as collector:
        records = []
        for record in collector.run(specs, output=out):
            if not records:  # worker 0 still holds its episodes: they are lost with it
                ray.kill(collector.actors[0], no_restart=False)  # Ray restarts it
            records.append(record)
        assert collector.wait_for_workers(timeout=30) == 2  # Ray restarted the killed one
        stats = collector.stats
    keys = [r.extra["spec_key"] for r in records]
    assert sorted(keys) == sorted(s.key for s in specs)  # each exactly once
    assert all(r.ok for r in records)  # a lost actor is never a failed or zero reward
    assert stats.workers_lost == 1 and stats.requeued >= 1
    assert stats.workers_restarted == 1
    on_disk = [line for line in out.read_text().splitlines() if line]
    assert len(on_disk) == len(specs)


def test_an_actor_out_of_restarts_leaves_its_episodes_to_the_others(
    server: tuple[str, CountingServer],
) -> None:
    url, _ = server
    specs = episode_specs(COLLECTION, SCENARIO, episodes=6, seed=50)
    # max_restarts=0: like a node that is gone for good
    with holding_worker(url, victim=1, max_restarts=0) as collector:
        records = []
        for record in collector.run(specs):
            if not records:  # worker 1 still holds its episodes: they are lost with it
                ray.kill(collector.actors[1])
            records.append(record)
        assert collector.wait_for_workers(timeout=30) == 1
        stats = collector.stats
    assert sorted(r.extra["spec_key"] for r in records) == sorted(s.key for s in specs)
    assert all(r.ok for r in records)
    assert stats.workers_lost == 1 and stats.workers_restarted == 0


def test_workers_refuse_a_key_other_than_the_drivers(
    server: tuple[str, CountingServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = server
    monkeypatch.delenv("LABS_API_KEY", raising=False)  # the workers inherit no key either
    collector = RayCollector(ScriptedPolicy(), workers=1, api_key=SMALL_KEY, base_url=url)
    with pytest.raises(LabsValidationError, match="LABS_API_KEY"):
        collector.start()
    assert collector.actors == []


def test_two_actors_share_one_quota_without_429s(server: tuple[str, CountingServer]) -> None:
    url, labs = server
    specs = episode_specs(COLLECTION, SCENARIO, episodes=4, seed=60)
    with RayCollector(
        ScriptedPolicy(),
        workers=2,
        concurrency_per_worker=4,
        api_key=SMALL_KEY,
        base_url=url,
        forward_api_key=True,
    ) as collector:
        records = list(collector.run(specs))
        quota = collector.quota()
    statuses = labs.statuses[SMALL_KEY]
    assert all(r.ok for r in records) and len(records) == len(specs)
    assert statuses[200] > 2 * SMALL_LIMIT  # the run needed several windows' quota
    assert statuses[429] == 0
    assert quota is not None and quota[0].limit == SMALL_LIMIT
    assert quota[1]["requests"] == statuses[200]  # every request went through the bucket


def test_cli_eval_on_ray_writes_the_same_run_as_in_process(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABS_API_KEY", raising=False)  # the embedded server, in every worker
    common = ["--policy", "scripted", "--scenario", f"{COLLECTION}/{SCENARIO}", "--episodes", "3"]
    assert main(["eval", *common, "--out", str(tmp_path / "one")]) == 0
    assert main(["eval", *common, "--out", str(tmp_path / "ray"), "--ray", "--workers", "2"]) == 0
    one = read_trajectories(tmp_path / "one" / "trajectories.jsonl")
    on_ray = read_trajectories(tmp_path / "ray" / "trajectories.jsonl")
    assert len(on_ray) == 3 and by_key(on_ray) == by_key(one)


def test_a_policy_that_cannot_be_pickled_is_refused_with_the_fix() -> None:
    policy = OpenAIChatPolicy("http://127.0.0.1:9/v1", "m", api_key="sk-secret-value")
    with pytest.raises(LabsValidationError) as caught:
        RayCollector(policy, workers=1)
    assert "on_workers" in str(caught.value) and "sk-secret-value" not in str(caught.value)


def test_duplicate_spec_keys_are_refused() -> None:
    spec = episode_specs(COLLECTION, SCENARIO, episodes=1)[0]
    collector = RayCollector(ScriptedPolicy(), workers=1)
    with pytest.raises(LabsValidationError, match="share the key"):
        next(collector.run([spec, spec]))


def test_importing_labs_env_does_not_import_ray() -> None:
    code = "import sys, labs_env, labs_env.rollout.collection; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
