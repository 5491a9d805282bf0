"""The vector env's async engine: per-env slots, concurrent steps and resets, prefetched
episodes, background clean-up. Loop-agnostic: it runs on whichever loop awaits it.

Every per-env operation returns an :class:`Outcome` and never raises: failures are captured
(``error`` for infrastructure failures, ``fatal`` for misuse and bugs), so one env's failure
never disturbs the others' steps. The facade in :mod:`labs_env.envs.vector_env` turns outcomes into
Gymnasium batches and applies ``on_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium.utils import seeding

from labs_env.errors import is_infrastructure_error
from labs_env.models import EncodedMessages, RewardConfig
from labs_env.rollout.driver import EpisodeDriver
from labs_env.rollout.episode import Episode, History
from labs_env.rollout.planning import EpisodePlan, plan_episode
from labs_env.rollout.recording import RecordBuilder, error_text
from labs_env.rollout.trajectory import TrajectoryRecord

__all__ = ["EngineSettings", "Outcome", "Slot", "VectorEngine"]

_log = logging.getLogger("labs_env")


@dataclass
class Slot:
    """One env of the batch."""

    index: int
    scenarios: tuple[str, ...] | None
    reward_config: RewardConfig | None
    rng: np.random.Generator | None = None
    episode: Episode | None = None
    builder: RecordBuilder | None = None
    obs: History = ()
    needs_reset: bool = True  # no usable episode: never reset, or a reset failed
    autoreset: bool = False  # NEXT_STEP: this env resets at its next step
    spare: asyncio.Task[Episode] | None = None

    def random(self) -> np.random.Generator:
        if self.rng is None:
            self.rng, _ = seeding.np_random()
        return self.rng


@dataclass
class Outcome:
    """What one env produced in one vector call."""

    obs: History
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    final: tuple[History, dict[str, Any]] | None = None
    errors: list[BaseException] = field(default_factory=list)
    fatal: BaseException | None = None
    records: list[TrajectoryRecord] = field(default_factory=list)


@dataclass(frozen=True)
class EngineSettings:
    """Behaviour shared by all slots."""

    collection: str | None
    config: Mapping[str, Any]
    autoreset: str  # "same", "next" or "disabled"
    replace_on_error: bool
    prefetch: bool
    record: bool
    record_extra: Mapping[str, Any]
    max_episode_steps: int | None
    max_concurrency: int | None


def _error_info(exc: BaseException, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {**(base or {}), "error": error_text(exc), "error_type": type(exc).__name__}


def _base_info(episode: Episode) -> dict[str, Any]:
    return {
        "episode_id": episode.episode_id,
        "turn": episode.turn,
        "collection": episode.collection,
        "scenario": episode.scenario,
    }


class VectorEngine:
    """Slots plus the async operations on them (see the module docstring)."""

    def __init__(self, driver: EpisodeDriver, slots: list[Slot], settings: EngineSettings):
        self.driver = driver
        self.slots = slots
        self.settings = settings
        self.collection = settings.collection
        self._background: set[asyncio.Task[Any]] = set()
        self._semaphore: asyncio.Semaphore | None = None
        self._prepared = False
        self._current: asyncio.Task[Any] | None = None
        self._prefetch_due: list[Slot] = []  # see run_batch

    # ------------------------------------------------------------------ loop binding

    def rebind(self) -> None:
        """Forget loop-bound objects (the previous loop is gone)."""
        self._semaphore = None
        self._background.clear()
        self._prefetch_due.clear()
        for slot in self.slots:
            slot.spare = None

    async def exclusive(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run one reset/step, remembered so that :meth:`shutdown` can cancel it."""
        self._current = asyncio.current_task()
        try:
            return await coro
        finally:
            self._current = None

    async def run_batch(self, operations: Iterable[Awaitable[Outcome]]) -> list[Outcome]:
        """Run one vector call's per-env operations concurrently.

        The episodes to prefetch (owed by earlier calls) are created right after this call's
        requests went out: their round trip overlaps this call's wait, and their answers come
        back after this call's, so they never lengthen a step.
        """
        batch = asyncio.gather(*operations)
        asyncio.get_running_loop().call_soon(self._send_prefetches)
        return list(await batch)

    def _send_prefetches(self) -> None:
        due, self._prefetch_due = self._prefetch_due, []
        for slot in due:
            if slot.spare is None and slot.episode is not None:
                slot.spare = asyncio.ensure_future(self._create(self._plan(slot)))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _bounded(self, awaitable: Awaitable[Any]) -> Any:
        limit = self.settings.max_concurrency
        if limit is None:
            return await awaitable
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(limit)
        async with self._semaphore:
            return await awaitable

    # ------------------------------------------------------------------ episodes

    async def prepare(self) -> None:
        """Fetch the catalog once (descriptions for contexts; collection/scenario lookup)."""
        if self._prepared:
            return
        needed = self.collection is None or any(s.scenarios is None for s in self.slots)
        try:
            await self.driver.catalog()
        except Exception as exc:
            if needed:
                raise
            _log.warning("catalog unavailable (contexts lack descriptions): %s", exc)
        self.collection = await self.driver.resolve_collection(self.collection)
        for slot in self.slots:
            if slot.scenarios is None:
                slot.scenarios = await self.driver.all_scenarios(self.collection)
        self._prepared = True

    def _plan(self, slot: Slot, options: Mapping[str, Any] | None = None) -> EpisodePlan:
        """Draw the slot's next episode exactly as :meth:`LabsEnv.reset` does."""
        assert self.collection is not None and slot.scenarios is not None
        return plan_episode(
            slot.random(),
            collection=self.collection,
            scenarios=slot.scenarios,
            reward_config=slot.reward_config,
            config=self.settings.config,
            options=options,
        )

    async def _create(self, plan: EpisodePlan) -> Episode:
        episode: Episode = await self._bounded(self.driver.create(plan))
        return episode

    def _prefetch(self, slot: Slot) -> None:
        if self.settings.prefetch and slot.spare is None:
            self._prefetch_due.append(slot)  # sent by the next run_batch

    def discard_spare(self, slot: Slot) -> None:
        """Drop a prefetched episode (terminated on the service once it exists)."""
        spare, slot.spare = slot.spare, None
        if spare is not None:
            self._spawn(self.driver.terminate_created(spare))

    def _finish_record(self, slot: Slot, out: Outcome, **how: Any) -> None:
        builder, slot.builder = slot.builder, None
        if (
            builder is not None
            and not builder.finished
            and (builder.record.turns or how.get("error") is not None)
        ):
            out.records.append(builder.finish(**how))

    def abandon(self, slot: Slot, out: Outcome) -> None:
        """Cut the slot's unfinished episode short (recorded; terminated in the background)."""
        episode, slot.episode = slot.episode, None
        if episode is not None and not episode.done:
            self._finish_record(slot, out, truncated=True)
            self._spawn(self.driver.terminate(episode))
        slot.builder = None

    async def start(self, slot: Slot, out: Outcome, **options: Any) -> None:
        """Start a new episode in ``slot``: ``out.obs``/``out.info`` become its reset result.

        ``options``: ``scenario``, ``reward_config``, ``config`` for this episode. Uses the
        prefetched episode when there are none (the next draw from the slot's defaults). A
        failure sets ``out.errors`` (or ``out.fatal``) and leaves the slot needing a reset.
        """
        self.abandon(slot, out)
        slot.autoreset = False
        try:
            episode: Episode | None = None
            if not options and slot.spare is not None:
                spare, slot.spare = slot.spare, None
                try:
                    episode = await spare
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the prefetch failed: create one now
                    _log.info("prefetched episode unavailable (%s); creating one", exc)
            else:
                self.discard_spare(slot)
            if episode is None:
                episode = await self._create(self._plan(slot, options))
            else:
                episode.reward_config = slot.reward_config  # the default may have changed
        except Exception as exc:
            slot.needs_reset = True
            slot.obs = ()
            self._fail(out, exc, _error_info(exc))
            return
        slot.episode = episode
        slot.needs_reset = False
        slot.obs = episode.observation()
        if self.settings.record:
            slot.builder = RecordBuilder.for_episode(episode, self.settings.record_extra)
        out.obs, out.info = slot.obs, episode.reset_info()
        self._prefetch(slot)

    def _fail(self, out: Outcome, exc: BaseException, info: dict[str, Any]) -> None:
        if is_infrastructure_error(exc):
            out.errors.append(exc)
        elif out.fatal is None:
            out.fatal = exc
        out.info = info

    async def step(self, slot: Slot, messages: EncodedMessages) -> Outcome:
        """Submit ``messages`` (built by ``episode.build_turn``) for ``slot`` and autoreset."""
        episode = slot.episode
        assert episode is not None
        out = Outcome(slot.obs)
        started = time.perf_counter()
        try:
            submit = self.driver.submit(episode, messages)
            transition = await (
                submit if self.settings.max_concurrency is None else self._bounded(submit)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_infrastructure_error(exc):  # misuse or bug: the step may be retried
                out.fatal = exc
                out.info = _error_info(exc, _base_info(episode))
                return out
            out.errors.append(exc)
            out.truncated = True
            out.info = _error_info(exc, _base_info(episode))
            self._finish_record(slot, out, error=exc)
            self._end_remotely(slot)
        else:
            obs, reward, terminated, truncated, info = transition.as_tuple()
            if slot.builder is not None:
                slot.builder.add_turn(transition, time.perf_counter() - started)
            limit = self.settings.max_episode_steps
            if limit is not None and not (terminated or truncated) and episode.turn >= limit:
                truncated = True
                self._end_remotely(slot)
            out.obs, out.reward, out.terminated, out.truncated, out.info = (
                obs,
                reward,
                terminated,
                truncated,
                info,
            )
            slot.obs = obs
            if terminated or truncated:
                self._finish_record(slot, out, truncated=truncated)
        if out.terminated or out.truncated:
            await self._after_end(slot, out)
        return out

    def _end_remotely(self, slot: Slot) -> None:
        episode, slot.episode = slot.episode, None
        if episode is not None:
            self._spawn(self.driver.terminate(episode))

    async def _after_end(self, slot: Slot, out: Outcome) -> None:
        mode = self.settings.autoreset
        replace = bool(out.errors) and self.settings.replace_on_error
        if mode == "same" or replace:
            final = (out.obs, out.info)
            fresh = Outcome(())
            await self.start(slot, fresh)
            out.obs, out.info, out.final = fresh.obs, fresh.info, final
            out.errors += fresh.errors
            out.records += fresh.records
            out.fatal = out.fatal or fresh.fatal
        elif mode == "next":
            slot.autoreset = True
        else:  # disabled: the caller resets it
            slot.needs_reset = True

    async def reset_op(self, slot: Slot, **options: Any) -> Outcome:
        """A reset inside a step (NEXT_STEP autoreset, or recovery after a failed reset)."""
        out = Outcome(())
        await self.start(slot, out, **options)
        return out

    # ------------------------------------------------------------------ shutdown

    async def shutdown(self, timeout: float) -> list[TrajectoryRecord]:
        """Terminate unfinished and prefetched episodes (bounded by ``timeout``); return the
        records of episodes cut short."""
        current = self._current
        if current is not None and current is not asyncio.current_task() and not current.done():
            current.cancel()  # a step in flight: its episodes are abandoned below
            await asyncio.wait([current])
        out = Outcome(())
        self._prefetch_due.clear()
        for slot in self.slots:
            self.abandon(slot, out)
            self.discard_spare(slot)
        if self._background:
            _, pending = await asyncio.wait(set(self._background), timeout=timeout)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
        return out.records
