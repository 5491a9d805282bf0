"""Function forms of :class:`~labs_env.distributed.RayCollector`: sync, async, and for a client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from typing import Any

from labs_env.client import AsyncLabsClient
from labs_env.connect import LOCAL_BASE_URL
from labs_env.distributed.collector import RayCollector
from labs_env.distributed.placement import PlacedPolicy
from labs_env.rollout.collection import CollectProgress
from labs_env.rollout.specs import EpisodeSpec
from labs_env.rollout.trajectory import JsonlWriter, TrajectoryRecord

__all__ = ["acollect_ray", "acollect_ray_with_client", "collect_ray"]


def collect_ray(
    policy: PlacedPolicy | str,
    specs: Iterable[EpisodeSpec],
    *,
    group_size: int = 1,
    output: str | os.PathLike[str] | JsonlWriter | None = None,
    progress: Callable[[CollectProgress], Any] | None = None,
    **options: Any,
) -> Generator[TrajectoryRecord, None, None]:
    """Play ``specs`` on a fresh :class:`RayCollector` (``options`` are its arguments:
    ``workers``, ``concurrency_per_worker``, ``ray_address``, ``actor_options``, ...); yield
    each record as it arrives, then stop the actors.

    Example:
        >>> from labs_env import episode_specs
        >>> from labs_env.distributed import collect_ray
        >>> specs = episode_specs("insurance-claims", "delayed-claim-call", episodes=32)
        >>> for record in collect_ray("scripted", specs, workers=2):  # doctest: +SKIP
        ...     print(record.final_reward)
    """
    with RayCollector(policy, **options) as collector:
        yield from collector.run(specs, group_size=group_size, output=output, progress=progress)


async def acollect_ray(
    policy: PlacedPolicy | str,
    specs: Iterable[EpisodeSpec],
    *,
    group_size: int = 1,
    output: str | os.PathLike[str] | JsonlWriter | None = None,
    progress: Callable[[CollectProgress], Any] | None = None,
    **options: Any,
) -> AsyncGenerator[TrajectoryRecord, None]:
    """:func:`collect_ray` for async code: the waiting happens in a worker thread, so the
    event loop stays free (starting Ray and the actors blocks it once, briefly)."""
    collector = RayCollector(policy, **options).start()
    records = collector.run(specs, group_size=group_size, output=output, progress=progress)
    try:
        while (record := await asyncio.to_thread(next, records, None)) is not None:
            yield record
    finally:
        await asyncio.to_thread(records.close)
        await asyncio.to_thread(collector.close)


def acollect_ray_with_client(
    policy: PlacedPolicy | str,
    specs: Iterable[EpisodeSpec],
    *,
    client: AsyncLabsClient,
    concurrency: int,
    workers: int = 2,
    ray_address: str | None = None,
    sync_policy: str = "thread",
) -> AsyncGenerator[TrajectoryRecord, None]:
    """:func:`acollect_ray` against the service ``client`` talks to (the embedded server:
    one per worker), with ``concurrency`` episodes in flight in total, split over ``workers``
    (what ``labs-env eval --ray`` and ``evaluate_policy(backend="ray")`` use)."""
    service: dict[str, Any] = (
        {"local_server": True}
        if client.base_url == LOCAL_BASE_URL
        else {"api_key": client.api_key, "base_url": client.base_url}
    )
    return acollect_ray(
        policy,
        specs,
        workers=workers,
        concurrency_per_worker=max(1, -(-concurrency // workers)),
        ray_address=ray_address,
        sync_policy=sync_policy,
        **service,
    )
