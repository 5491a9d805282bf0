"""Episode I/O, written once for every runtime: :class:`LabsEnv`, :class:`LabsVectorEnv`,
:func:`labs_env.collect` and the Ray workers.

:class:`EpisodeDriver` drives the sans-IO :class:`~labs_env.rollout.episode.Episode` over an
:class:`EpisodeService` — create, submit a turn, terminate (best effort) — with the catalog
fetched once. The service is an :class:`~labs_env.AsyncLabsClient`, or a sync
:class:`~labs_env.LabsClient` seen through :class:`InlineService`, whose calls never suspend, so
the sync env runs the same coroutines with :func:`~labs_env.rollout.event_loop.run_inline`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from labs_env.client import AsyncLabsClient, LabsClient
from labs_env.errors import APIError, EpisodeCompleteError, EpisodeNotFoundError
from labs_env.models import (
    Catalog,
    CatalogScenario,
    EncodedMessages,
    EpisodeCreated,
    RewardConfig,
    TurnResult,
)
from labs_env.rollout.episode import Episode, Transition
from labs_env.rollout.planning import EpisodePlan, collection_scenarios, only_collection
from labs_env.rollout.policy import EpisodeContext

__all__ = ["EpisodeDriver", "EpisodeService", "InlineService"]

_log = logging.getLogger("labs_env")


class InlineService:
    """A sync :class:`~labs_env.LabsClient` with the async client's calls that the driver
    makes: each blocks inline, so the coroutine never suspends (run it with ``run_inline``)."""

    def __init__(self, client: LabsClient) -> None:
        self.client = client

    @property
    def closed(self) -> bool:
        return self.client.closed

    async def catalog(self) -> Catalog:
        return self.client.catalog()

    async def create_episode(
        self, collection: str, scenario: str, *, score_turns: bool, config: dict[str, Any] | None
    ) -> EpisodeCreated:
        return self.client.create_episode(
            collection, scenario, score_turns=score_turns, config=config
        )

    async def submit_turn(
        self, episode_id: str, messages: EncodedMessages, *, reward_config: RewardConfig | None
    ) -> TurnResult:
        return self.client.submit_turn(episode_id, messages, reward_config=reward_config)

    async def terminate_episode(self, episode_id: str) -> bool:
        return self.client.terminate_episode(episode_id)


#: What the driver talks through: the async client, or a sync one made to look like it.
EpisodeService = AsyncLabsClient | InlineService


class EpisodeDriver:
    """Episode I/O over one service (an async client, or a sync one through
    :class:`InlineService`); with an async client all methods run on its event loop.

    Args:
        client: the service (shared by every episode: one pool, one rate limiter).
        score_turns: sent on create-episode.
        validate_tool_calls: passed to each :class:`Episode`.
    """

    def __init__(
        self,
        client: EpisodeService,
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

    async def submit(self, episode: Episode, messages: EncodedMessages) -> Transition:
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
