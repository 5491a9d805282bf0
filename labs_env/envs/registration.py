"""Gymnasium registry ids for Labs environments.

Importing :mod:`labs_env` registers ``Labs-v0`` (any collection/scenario, given as keyword
arguments), so ``gym.make("labs_env:Labs-v0", collection=..., scenario=...)`` works.
:func:`register_catalog` adds one id per scenario of a catalog:
``Labs-<collection>-<scenario>-v0`` (slugs as the catalog spells them).

Every id is registered with ``nondeterministic=True``: an LLM-judged reward is not a function
of seed and action (against the local server it is, but the id does not know the other end).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from labs_env.client import LabsClient

__all__ = ["ENV_ID", "VECTOR_ENTRY_POINT", "register_catalog", "register_envs", "scenario_env_id"]

#: The generic id: pass ``collection`` and ``scenario`` to ``gym.make``.
ENV_ID = "Labs-v0"
ENTRY_POINT = "labs_env.envs.env:LabsEnv"
#: Used by ``gym.make_vec(..., vectorization_mode="vector_entry_point")``.
VECTOR_ENTRY_POINT = "labs_env.envs.vector_env:LabsVectorEnv"


def _register(env_id: str, **kwargs: Any) -> None:
    if env_id in gym.registry:
        return
    gym.register(
        id=env_id,
        entry_point=ENTRY_POINT,
        vector_entry_point=VECTOR_ENTRY_POINT,
        nondeterministic=True,
        kwargs=kwargs,
    )


def register_envs() -> None:
    """Register ``Labs-v0`` (idempotent; called when :mod:`labs_env` is imported)."""
    _register(ENV_ID)


def scenario_env_id(collection: str, scenario: str) -> str:
    """The registry id :func:`register_catalog` gives a scenario.

    Example:
        >>> scenario_env_id("insurance", "claim-status")
        'Labs-insurance-claim-status-v0'
    """
    return f"Labs-{collection}-{scenario}-v0"


def register_catalog(client: LabsClient | None = None) -> list[str]:
    """Register one id per scenario in the catalog; return the ids (idempotent).

    Args:
        client: whose catalog to read (``None``: :func:`labs_env.connect.make_client`).
            ``gym.make(id)`` builds its own client the same way; pass ``client=...`` to
            ``gym.make`` to share one.

    Example:
        >>> ids = register_catalog()  # the embedded server's scenarios
        >>> ids[0]
        'Labs-insurance-claims-delayed-claim-call-v0'
        >>> env = gym.make(ids[0])
        >>> obs, info = env.reset(seed=0)
        >>> info["collection"], info["scenario"]
        ('insurance-claims', 'delayed-claim-call')
        >>> env.close()
    """
    if client is None:
        from labs_env.connect import make_client

        with make_client() as own:
            catalog = own.catalog()
    else:
        catalog = client.catalog()
    ids = []
    for collection in catalog.collections:
        for scenario in collection.scenarios:
            env_id = scenario_env_id(collection.slug, scenario.slug)
            _register(env_id, collection=collection.slug, scenario=scenario.slug)
            ids.append(env_id)
    return ids
