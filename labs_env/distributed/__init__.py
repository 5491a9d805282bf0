"""Distributed rollout collection on Ray (the ``ray`` extra: ``pip install '.[ray]'``).

K Ray actors each run the asyncio episode loop of :func:`labs_env.collect` with their
own pooled client, fed by the driver from one queue of episode specs; records stream back to
the driver as episodes finish. One shared rate limiter (a Ray actor) keeps all actors under
the key's quota. See :class:`RayCollector` and :func:`collect_ray`.

Importing :mod:`labs_env` never imports Ray; importing this package does.

Example:
    >>> from labs_env import episode_specs
    >>> from labs_env.distributed import collect_ray
    >>> specs = episode_specs("insurance-claims", "delayed-claim-call", episodes=32)
    >>> records = list(collect_ray("scripted", specs, workers=2))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("ray") is None:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "labs_env.distributed needs Ray, which is not installed: install the 'ray' extra "
        "(pip install '.[ray]' in a checkout)"
    )

from labs_env.distributed._bookkeeping import RayCollectStats
from labs_env.distributed.collector import RayCollector
from labs_env.distributed.placement import on_driver, on_workers
from labs_env.distributed.streams import acollect_ray, collect_ray

__all__ = [
    "RayCollectStats",
    "RayCollector",
    "acollect_ray",
    "collect_ray",
    "on_driver",
    "on_workers",
]
