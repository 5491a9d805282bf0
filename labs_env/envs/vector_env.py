"""``LabsVectorEnv``: N Labs episodes stepped concurrently on one event loop and one client.

A Gymnasium vector step submits all N turns at once through one pooled
:class:`~labs_env.AsyncLabsClient` (one connection pool, one rate limiter, one retry policy),
so a step costs one network round trip, not N, and there is one process, not N.

Which event loop runs the requests:

* ``reset()`` / ``step()`` / ``close()`` (sync) run them on a private loop on a background
  thread (``labs-env-vector``), started on first use.
* ``await areset()`` / ``await astep()`` / ``await aclose()`` run them on *your* running loop,
  so the env shares it (and a client you passed) with your own async code, e.g. an async LLM
  policy. No thread is started.

An env binds to the first kind it is used with; mixing the two raises an error. A client you
pass is used on that loop and must not be used concurrently from another loop.

Time limits: the env never calls the policy (your loop does, between steps), so it has no
policy or episode time limit of its own: bound your policy call in your loop (e.g.
``asyncio.wait_for``), cap turns with ``max_episode_steps``, or let
:func:`~labs_env.collect` run the policy with ``policy_timeout=`` / ``episode_timeout=``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from labs_env.checks import check_flag, check_number
from labs_env.client import AsyncLabsClient
from labs_env.client.api_key import ApiKey
from labs_env.connect import make_async_client
from labs_env.envs.arguments import (
    OnError,
    PerEnv,
    RenderMode,
    ResetPlan,
    check_vector_arguments,
    parse_autoreset,
    parse_on_error,
    per_env_values,
    plan_reset,
)
from labs_env.envs.loop_binding import LoopBinding
from labs_env.envs.spaces import AgentAction, MessageHistory
from labs_env.envs.vector_batch import StepResult, stack_infos, step_batch
from labs_env.envs.vector_engine import EngineSettings, Outcome, Slot, VectorEngine
from labs_env.errors import LabsError, LabsValidationError
from labs_env.models import EncodedMessages, RewardConfig
from labs_env.rollout.driver import EpisodeDriver
from labs_env.rollout.episode import History
from labs_env.rollout.event_loop import run_sync
from labs_env.rollout.planning import coerce_reward_config, scenario_choice
from labs_env.rollout.policy import EpisodeContext
from labs_env.rollout.trajectory import JsonlWriter, TrajectoryRecord

__all__ = ["LabsVectorEnv", "VectorStepError"]

_log = logging.getLogger("labs_env")


class VectorStepError(LabsError):
    """Infrastructure failures in a vector call with ``on_error="raise"``.

    Every other env completed its step; the env's state matches :attr:`result`, so a caller
    may catch this, log it and keep stepping.

    Attributes:
        errors: env index -> the exception.
        result: the batch as ``on_error="truncate"`` would have returned it.
    """

    def __init__(self, errors: Mapping[int, BaseException], result: Any) -> None:
        self.errors = dict(errors)
        self.result = result
        first = min(self.errors)
        super().__init__(
            f"{len(self.errors)} env(s) failed; env {first}: "
            f"{type(self.errors[first]).__name__}: {self.errors[first]}"
        )


class LabsVectorEnv(VectorEnv[tuple[History, ...], tuple[Any, ...], np.ndarray[Any, Any]]):
    """N Labs episodes as one :class:`gymnasium.vector.VectorEnv` (see the module docstring).

    Args:
        num_envs: number of episodes stepped together.
        collection, scenario, score_turns, config, validate_tool_calls, render_mode: as for
            :class:`~labs_env.LabsEnv`. ``scenario`` may also be a :class:`PerEnv` (env ``i``
            plays item ``i``; an item may be a list to draw from).
        client: an :class:`~labs_env.AsyncLabsClient` shared by all envs (not closed by the
            env). ``None``: the env makes one (real service with a key, else the embedded
            local server) and closes it.
        api_key, base_url: for the client the env makes.
        reward_config: one config for every env, or a :class:`PerEnv` / list of one per env.
        autoreset_mode: ``SAME_STEP`` (default: a finished env starts its next episode in the
            same step, so no step is spent on a reset — with NEXT_STEP every finished episode
            costs one LLM generation whose action is thrown away), ``NEXT_STEP`` or
            ``DISABLED`` (reset finished envs yourself with ``options={"reset_mask": ...}``).
        on_error: what an infrastructure failure (network, 5xx, lost episode) does to the env
            it hits: ``"truncate"`` ends that episode (``truncated=True``, reward 0, the error in
            ``info["error"]``; autoreset as usual), ``"replace"`` also starts a fresh episode at
            once whatever the autoreset mode, ``"raise"`` raises :class:`VectorStepError` after
            the other envs completed. Misuse (bad key, unknown scenario) and bugs always raise.
        max_concurrency: most requests in flight from this env (``None``: ``num_envs``).
        prefetch: keep one episode created ahead per env, so an autoreset costs no round trip.
        max_episode_steps: end episodes as truncated after this many turns (client side).
        record_to: append every finished episode to this JSONL file (or :class:`JsonlWriter`),
            as :class:`~labs_env.TrajectoryRecorder` does; errors are recorded, never rewards.
        record_extra: constant fields stored in each record's ``extra``.
        close_timeout: seconds ``close`` spends terminating unfinished episodes.

    Example:
        >>> import gymnasium as gym
        >>> venv = gym.make_vec("labs_env:Labs-v0", num_envs=4, collection="insurance-claims")
        >>> obs, infos = venv.reset(seed=0)
        >>> obs, rewards, terminated, truncated, infos = venv.step(["Hello"] * 4)
        >>> rewards.shape, bool(terminated.any() or truncated.any())
        ((4,), False)
        >>> venv.close()
    """

    def __init__(
        self,
        num_envs: int = 1,
        collection: str | None = None,
        scenario: str | Sequence[str] | PerEnv[Any] | None = None,
        *,
        client: AsyncLabsClient | None = None,
        api_key: str | ApiKey | None = None,
        base_url: str | None = None,
        score_turns: bool = True,
        reward_config: Any = None,
        render_mode: RenderMode | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
        on_error: OnError = "truncate",
        config: Mapping[str, Any] | None = None,
        validate_tool_calls: bool = False,
        max_concurrency: int | None = None,
        prefetch: bool = True,
        max_episode_steps: int | None = None,
        record_to: str | os.PathLike[str] | JsonlWriter | None = None,
        record_extra: Mapping[str, Any] | None = None,
        close_timeout: float = 5.0,
    ) -> None:
        check_vector_arguments(
            num_envs=num_envs,
            render_mode=render_mode,
            client=client,
            api_key=api_key,
            base_url=base_url,
            collection=collection,
            config=config,
            max_concurrency=max_concurrency,
            max_episode_steps=max_episode_steps,
        )
        self.autoreset_mode, short_mode = parse_autoreset(autoreset_mode)
        self.on_error = parse_on_error(on_error)
        scenarios = per_env_values(scenario, num_envs, "scenario", lambda v, f: scenario_choice(v))
        configs = per_env_values(
            reward_config, num_envs, "reward_config", coerce_reward_config, lists_are_per_env=True
        )
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.metadata = {
            "render_modes": ["ansi"],
            "render_fps": 1,
            "autoreset_mode": self.autoreset_mode,
        }
        self.single_observation_space = MessageHistory()
        self.single_action_space = AgentAction()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.close_timeout = check_number(close_timeout, "close_timeout")
        self._owns_client = client is None
        key = ApiKey.resolve(api_key) if api_key is not None else None
        self._client = client or make_async_client(
            key, base_url, max_connections=max_concurrency or num_envs * (2 if prefetch else 1)
        )
        self._writer: JsonlWriter | None = None
        self._owns_writer = False
        if record_to is not None:
            self._owns_writer = not isinstance(record_to, JsonlWriter)
            self._writer = (
                record_to if isinstance(record_to, JsonlWriter) else JsonlWriter(record_to)
            )
        driver = EpisodeDriver(
            self._client,
            score_turns=check_flag(score_turns, "score_turns"),
            validate_tool_calls=check_flag(validate_tool_calls, "validate_tool_calls"),
        )
        settings = EngineSettings(
            collection=collection,
            config=dict(config or {}),
            autoreset=short_mode,
            replace_on_error=self.on_error == "replace",
            prefetch=check_flag(prefetch, "prefetch"),
            record=self._writer is not None,
            record_extra=dict(record_extra or {}),
            max_episode_steps=max_episode_steps,
            max_concurrency=max_concurrency,
        )
        slots = [Slot(i, scenarios[i], configs[i]) for i in range(num_envs)]
        self._engine = VectorEngine(driver, slots, settings)
        self._binding = LoopBinding("labs-env-vector", self._engine.rebind, self._engine.exclusive)
        self._closing_task: asyncio.Task[None] | None = None
        self._was_reset = False

    # ------------------------------------------------------------------ properties

    @property
    def client(self) -> AsyncLabsClient:
        """The client all envs share."""
        return self._client

    @property
    def collection(self) -> str | None:
        """The collection (resolved from the catalog at the first reset when not given)."""
        return self._engine.collection

    def reward_configs(self) -> tuple[RewardConfig | None, ...]:
        """Each env's reward config for its next turn."""
        return tuple(
            s.episode.reward_config if s.episode and not s.episode.done else s.reward_config
            for s in self._engine.slots
        )

    def set_reward_config(
        self, value: Any, env_ids: Sequence[int] | None = None, *, current: bool = True
    ) -> None:
        """Set the reward config of some envs (all by default).

        Args:
            value: a config, a mapping, ``None`` (default scoring), or a :class:`PerEnv` with
                one value per env in ``env_ids``.
            env_ids: which envs (default: all).
            current: also apply from the next turn of each env's current episode (as
                assigning ``LabsEnv.reward_config`` does); ``False``: later episodes only.
        """
        ids = list(range(self.num_envs)) if env_ids is None else [int(i) for i in env_ids]
        configs = per_env_values(
            value, len(ids), "reward_config", coerce_reward_config, lists_are_per_env=True
        )
        for index, config in zip(ids, configs, strict=True):
            slot = self._engine.slots[index]
            slot.reward_config = config
            if current and slot.episode is not None:
                slot.episode.reward_config = config

    def context(self, index: int) -> EpisodeContext:
        """What a policy may know about env ``index``'s current episode."""
        episode = self._engine.slots[index].episode
        if episode is None:
            raise ResetNeeded(f"env {index} has no episode; call reset()")
        return self._engine.driver.context(episode)

    def contexts(self) -> tuple[EpisodeContext | None, ...]:
        """Every env's context (``None`` for an env without an episode)."""
        slots = self._engine.slots
        return tuple(self._engine.driver.context(s.episode) if s.episode else None for s in slots)

    # ------------------------------------------------------------------ loop binding

    def _check_open(self) -> None:
        if self.closed:
            raise gym.error.ClosedEnvironmentError("the LabsVectorEnv is closed")

    # ------------------------------------------------------------------ reset

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[tuple[History, ...], dict[str, Any]]:
        """Start new episodes in every env (or those in ``options["reset_mask"]``).

        Args:
            seed: an int (env ``i`` gets ``seed + i``), one seed per env, or ``None``
                (continue each env's RNG). Seeds draw the scenario and the episode seed
                exactly as :meth:`LabsEnv.reset` does.
            options: ``reset_mask`` (bool array: which envs), and for the envs reset:
                ``scenario``, ``reward_config``, ``config`` (see :meth:`LabsEnv.reset`;
                ``scenario``/``reward_config`` may be a :class:`PerEnv`).
        """
        self._check_open()
        mask, seeds, per_env = self._reset_plan(seed, options)
        outcomes = self._binding.run_sync(self._reset_all(mask, seeds, per_env))
        return self._finish_reset(mask, outcomes)

    async def areset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[tuple[History, ...], dict[str, Any]]:
        """:meth:`reset` on the running event loop."""
        self._check_open()
        self._binding.bind_async()
        mask, seeds, per_env = self._reset_plan(seed, options)
        outcomes = await self._binding.guarded(self._reset_all(mask, seeds, per_env))
        return self._finish_reset(mask, outcomes)

    def _reset_plan(
        self, seed: int | Sequence[int | None] | None, options: dict[str, Any] | None
    ) -> ResetPlan:
        plan = plan_reset(self.num_envs, seed, options)
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            super().reset(seed=int(seed))  # seeds the vector env's own np_random
        return plan

    async def _reset_all(
        self, mask: np.ndarray[Any, Any], seeds: list[int | None], per_env: list[dict[str, Any]]
    ) -> list[Outcome | None]:
        engine = self._engine
        await engine.prepare()

        async def one(slot: Slot) -> Outcome:
            seed = seeds[slot.index]
            if seed is not None:
                engine.discard_spare(slot)  # drawn from the old RNG state
                slot.rng = seeding.np_random(seed)[0]
            return await engine.reset_op(slot, **per_env[slot.index])

        chosen = [slot for slot in engine.slots if mask[slot.index]]
        results = await engine.run_batch(one(slot) for slot in chosen)
        outcomes: list[Outcome | None] = [None] * self.num_envs
        for slot, outcome in zip(chosen, results, strict=True):
            outcomes[slot.index] = outcome
        return outcomes

    def _finish_reset(
        self, mask: np.ndarray[Any, Any], outcomes: list[Outcome | None]
    ) -> tuple[tuple[History, ...], dict[str, Any]]:
        self._was_reset = True
        infos = stack_infos([o.info if o else None for o in outcomes], self.num_envs)
        obs = tuple(slot.obs for slot in self._engine.slots)
        self._settle(outcomes, (obs, infos))
        return obs, infos

    # ------------------------------------------------------------------ step

    def step(self, actions: Sequence[Any]) -> StepResult:
        """Submit one turn per env concurrently (see the class docstring for autoreset and
        errors). ``actions[i]`` is ignored for an env that resets in this step."""
        self._check_open()
        plan = self._step_plan(actions)
        return self._finish_step(self._binding.run_sync(self._step_all(plan)))

    async def astep(self, actions: Sequence[Any]) -> StepResult:
        """:meth:`step` on the running event loop."""
        self._check_open()
        self._binding.bind_async()
        plan = self._step_plan(actions)
        return self._finish_step(await self._binding.guarded(self._step_all(plan)))

    def _step_plan(self, actions: Sequence[Any]) -> list[EncodedMessages | None]:
        """Validate every action before anything is sent: the messages per env (``None``:
        this env resets instead)."""
        if not self._was_reset:
            raise ResetNeeded("call reset() before step()")
        if isinstance(actions, (str, bytes, Mapping)) or len(actions) != self.num_envs:
            raise LabsValidationError(
                "actions", f"expected a sequence of {self.num_envs} actions", "one per env"
            )
        plan: list[EncodedMessages | None] = []
        for slot, action in zip(self._engine.slots, actions, strict=True):
            if slot.autoreset or (
                slot.needs_reset and self.autoreset_mode != AutoresetMode.DISABLED
            ):
                plan.append(None)
            elif slot.needs_reset or slot.episode is None or slot.episode.done:
                raise ResetNeeded(
                    f"env {slot.index} has no running episode; reset it with "
                    "options={'reset_mask': ...} (autoreset_mode=DISABLED)"
                )
            else:
                try:
                    plan.append(slot.episode.build_turn(action))
                except LabsValidationError as exc:
                    raise LabsValidationError(
                        f"actions[{slot.index}]", exc.problem, exc.fix
                    ) from None
        return plan

    async def _step_all(self, plan: list[EncodedMessages | None]) -> list[Outcome]:
        engine = self._engine
        return await engine.run_batch(
            engine.reset_op(slot) if messages is None else engine.step(slot, messages)
            for slot, messages in zip(engine.slots, plan, strict=True)
        )

    def _finish_step(self, outcomes: list[Outcome]) -> StepResult:
        result = step_batch(outcomes, self.num_envs)
        self._settle(outcomes, result)
        return result

    def _settle(self, outcomes: Sequence[Outcome | None], result: Any) -> None:
        """Write records; raise a fatal error, or the infrastructure errors under "raise"."""
        errors: dict[int, BaseException] = {}
        fatal: BaseException | None = None
        for index, outcome in enumerate(outcomes):
            if outcome is None:
                continue
            self._write(outcome.records)
            if outcome.errors:
                errors[index] = outcome.errors[0]
            if outcome.fatal is not None and fatal is None:
                fatal = outcome.fatal
        if fatal is not None:
            raise fatal
        if errors and self.on_error == "raise":
            raise VectorStepError(errors, result) from errors[min(errors)]

    def _write(self, records: list[TrajectoryRecord]) -> None:
        if self._writer is not None:
            for record in records:
                self._writer.write(record)

    # ------------------------------------------------------------------ render / close

    def render(self) -> tuple[str, ...] | None:
        """Each env's transcript (``render_mode="ansi"``)."""
        if self.render_mode != "ansi":
            return None
        return tuple(s.episode.transcript() if s.episode else "" for s in self._engine.slots)

    def close_extras(self, **kwargs: Any) -> None:
        """Terminate unfinished episodes (best effort, bounded by ``close_timeout``), close a
        client the env made, stop the loop thread. Safe while a step is in flight."""
        binding = self._binding
        binding.closing = True
        thread, binding.thread = binding.thread, None
        if thread is not None:
            try:
                self._write(thread.run(self._shutdown(loop_stops=True)))
            except Exception as exc:
                _log.warning("LabsVectorEnv.close: %s", exc)
            finally:
                thread.stop()
        elif binding.running_elsewhere():
            _log.warning(
                "LabsVectorEnv.close() called inside its event loop: unfinished episodes are "
                "left to expire on the service; use `await venv.aclose()` to terminate them"
            )
            self._release_sync()
        else:
            self._release_sync()
        if self._owns_writer and self._writer is not None:
            self._writer.close()

    async def aclose(self) -> None:
        """:meth:`close` for the async API (terminates unfinished episodes on this loop)."""
        if self.closed:
            return
        if self._binding.thread is not None:
            self.close()
            return
        self._binding.closing = True
        try:
            if self._binding.loop is asyncio.get_running_loop():
                self._write(await self._shutdown(loop_stops=False))
        finally:
            self._release_sync()
            if self._owns_writer and self._writer is not None:
                self._writer.close()
            self.closed = True

    async def _shutdown(self, *, loop_stops: bool) -> list[TrajectoryRecord]:
        try:
            return await self._engine.shutdown(self.close_timeout)
        finally:
            if self._owns_client:
                await self._client.aclose()
            elif loop_stops:
                self._client.close_idle_connections()  # they live on the loop that stops

    def _release_sync(self) -> None:
        """Release without awaiting anything (no loop of ours is available)."""
        for slot in self._engine.slots:
            if slot.spare is not None:
                slot.spare.cancel()
                slot.spare = None
        if self._owns_client and not self._client.closed:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                run_sync(self._client.aclose())
            else:
                task = loop.create_task(self._client.aclose())  # done on the loop's next turn
                self._closing_task = task

    def __repr__(self) -> str:
        return f"LabsVectorEnv(num_envs={self.num_envs}, collection={self.collection!r})"
