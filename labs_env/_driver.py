"""Async episode operations shared by :class:`LabsVectorEnv` and :func:`labs_env.collect`.

:class:`EpisodeDriver` wraps one :class:`~labs_env.AsyncLabsClient` and drives the sans-IO
:class:`~labs_env.episode.Episode`: create, submit a turn, terminate (best effort), with the
catalog fetched once. :func:`is_infrastructure_error` separates failures of the service or the
network (isolated per episode: truncate, replace, record) from misuse and bugs (always raised).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from labs_env.client import AsyncLabsClient
from labs_env.episode import Episode, Transition
from labs_env.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    EpisodeCompleteError,
    EpisodeNotFoundError,
    TurnMismatchError,
)
from labs_env.models import Catalog, CatalogScenario
from labs_env.planning import EpisodePlan, collection_scenarios, only_collection
from labs_env.policies.base import EpisodeContext

__all__ = ["EpisodeDriver", "is_infrastructure_error"]

_log = logging.getLogger("labs_env")
_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


def is_infrastructure_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the service or the network, not of the caller.

    Infrastructure: connection errors and timeouts, 5xx, 429 after the client's retries, a
    response of the wrong shape, a lost or expired episode, a duplicated turn. Not: a bad key
    (401), no access (403), an unknown scenario (404), a rejected request (400), a malformed
    action, any non-Labs exception (a bug) — those are raised whatever ``on_error`` says.
    """
    if isinstance(
        exc,
        (
            APIConnectionError,
            APIResponseValidationError,
            TurnMismatchError,
            EpisodeNotFoundError,
            EpisodeCompleteError,
        ),
    ):
        return True
    if isinstance(exc, APIStatusError):
        return exc.status_code >= 500 or exc.status_code in _TRANSIENT_STATUSES
    return False


class EpisodeDriver:
    """Episode I/O over one async client (all methods run on the client's event loop).

    Args:
        client: the client (shared by every episode: one pool, one rate limiter).
        score_turns: sent on create-episode.
        validate_tool_calls: passed to each :class:`Episode`.
    """

    def __init__(
        self,
        client: AsyncLabsClient,
        *,
        score_turns: bool = True,
        validate_tool_calls: bool = False,
    ) -> None:
        self.client = client
        self.score_turns = score_turns
        self.validate_tool_calls = validate_tool_calls
        self._catalog: Catalog | None = None
        self._catalog_lock: asyncio.Lock | None = None
        self._terminate_supported = True

    async def catalog(self) -> Catalog:
        """The service's catalog, fetched once."""
        if self._catalog is None:
            if self._catalog_lock is None:
                self._catalog_lock = asyncio.Lock()
            async with self._catalog_lock:
                if self._catalog is None:
                    self._catalog = await self.client.catalog()
        return self._catalog

    def cached_catalog(self) -> Catalog | None:
        """The catalog if it was fetched already."""
        return self._catalog

    async def resolve_collection(self, collection: str | None) -> str:
        """``collection``, or the catalog's only collection when ``None``."""
        if collection is not None:
            return collection
        return only_collection(await self.catalog())

    async def all_scenarios(self, collection: str) -> tuple[str, ...]:
        """Every scenario slug of ``collection`` in the catalog."""
        return collection_scenarios(await self.catalog(), collection)

    async def create(self, plan: EpisodePlan) -> Episode:
        """Create the episode ``plan`` describes."""
        created = await self.client.create_episode(
            plan.collection, plan.scenario, score_turns=self.score_turns, config=plan.config or None
        )
        return Episode.begin(plan, created, validate_tool_calls=self.validate_tool_calls)

    async def submit(self, episode: Episode, messages: list[Any]) -> Transition:
        """Submit the turn built by ``episode.build_turn`` and apply the answer.

        A lost or finished episode is marked done before the error propagates.
        """
        try:
            result = await self.client.submit_turn(
                episode.episode_id, messages, reward_config=episode.reward_config
            )
        except (EpisodeCompleteError, EpisodeNotFoundError):
            episode.mark_terminated("error")
            raise
        return episode.apply(result)

    async def terminate(self, episode: Episode) -> None:
        """End an unfinished episode on the service (best effort; errors are logged)."""
        if episode.terminal_reason is not None:
            return
        episode.mark_terminated("client_terminated")
        if not self._terminate_supported or self.client.closed:
            return
        try:
            self._terminate_supported = await self.client.terminate_episode(episode.episode_id)
        except APIError as exc:
            _log.warning("could not terminate episode %s: %s", episode.episode_id, exc)

    async def terminate_created(self, creating: asyncio.Future[Episode]) -> None:
        """End an episode created ahead and never played, once its creation is done (a failed
        creation left nothing to end)."""
        try:
            episode = await creating
        except Exception:
            return
        await self.terminate(episode)

    def context(self, episode: Episode) -> EpisodeContext:
        """The policy's view of ``episode`` (catalog description and turn limit if known)."""
        entry = self.catalog_entry(episode.collection, episode.scenario)
        return episode.context(
            description=entry.description if entry else "",
            max_turns=entry.max_turns if entry else None,
        )

    def catalog_entry(self, collection: str, scenario: str) -> CatalogScenario | None:
        """The cached catalog entry of a scenario (``None`` if unknown or not fetched)."""
        return self._catalog.scenario(collection, scenario) if self._catalog else None
