"""``LabsEnv``: one Labs episode at a time as a :class:`gymnasium.Env`.

``reset()`` creates an episode, ``step(action)`` submits a turn with the full history, the
Labs reward is the env reward. The protocol logic lives in :mod:`labs_env.rollout.episode` and
the I/O in the episode driver shared with the async paths (:mod:`labs_env.rollout.driver`);
this module adds seeding, scenario mixing, rendering and lifecycle.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec
from gymnasium.error import ResetNeeded

from labs_env.checks import check_flag
from labs_env.client import LabsClient
from labs_env.client.api_key import ApiKey
from labs_env.connect import make_client
from labs_env.envs.arguments import RenderMode, check_env_arguments
from labs_env.envs.env_spec import labs_spec, unshare
from labs_env.envs.registration import ENTRY_POINT, ENV_ID, VECTOR_ENTRY_POINT
from labs_env.envs.spaces import AgentAction, MessageHistory
from labs_env.errors import (
    APIError,
)
from labs_env.models import Catalog, RewardConfig
from labs_env.rollout.driver import EpisodeDriver, InlineService
from labs_env.rollout.episode import Episode, History
from labs_env.rollout.event_loop import run_inline
from labs_env.rollout.planning import (
    ALL_SCENARIOS,
    coerce_reward_config,
    plan_episode,
    scenario_choice,
)
from labs_env.rollout.policy import EpisodeContext

__all__ = ["ALL_SCENARIOS", "LabsEnv"]

_log = logging.getLogger("labs_env")


class LabsEnv(gym.Env[History, Any]):
    """A Labs scenario as a Gymnasium environment.

    Args:
        collection: collection slug. ``None``: the catalog's only collection.
        scenario: a scenario slug, a list of slugs, or ``None`` / ``"*"`` for every scenario
            of the collection; with several, each reset draws one with the env's seeded RNG.
        client: a :class:`~labs_env.LabsClient` to use (not closed by the env). ``None``: the
            env makes one (see :func:`labs_env.connect.make_client`) and closes it on ``close``.
        api_key: key for the client the env makes (default ``$LABS_API_KEY``; with no key at
            all the env plays against the embedded local server).
        base_url: service URL for the client the env makes (default ``$LABS_URL``).
        score_turns: score every turn (``False``: every turn's reward is 0; score at the end
            with ``/evaluate``, see :class:`~labs_env.wrappers.SparseFinalScoring`).
        reward_config: sent with every turn; ``None`` = the service's default scoring.
        render_mode: ``None`` or ``"ansi"`` (``render()`` returns the transcript).
        config: per-episode overrides sent on create-episode (``config.seed`` is filled in).
        validate_tool_calls: reject semantically wrong tool calls (option not offered, input
            against the tool's schema) before sending instead of letting the service penalise
            them. Structural mistakes are always rejected.

    Seeding: ``reset(seed=s)`` seeds the env's RNG, which draws the scenario (when several)
    and the episode seed sent as ``config.seed``. Against the local server that makes the
    persona's replies and the scores reproducible for the same actions; the real service's
    persona is generated fresh each episode, so only the scenario draw is reproducible there.

    Example (no ``LABS_API_KEY``: the embedded local server):
        >>> env = LabsEnv(collection="insurance-claims", scenario="delayed-claim-call")
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step("What is your claim number?")
        >>> info["turn"], terminated, truncated, 0.0 <= reward <= 1.0
        (1, False, False, True)
        >>> env.close()
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012
    _spec: EnvSpec | None = None

    def __init__(
        self,
        collection: str | None = None,
        scenario: str | Sequence[str] | None = None,
        *,
        client: LabsClient | None = None,
        api_key: str | ApiKey | None = None,
        base_url: str | None = None,
        score_turns: bool = True,
        reward_config: RewardConfig | Mapping[str, Any] | None = None,
        render_mode: RenderMode | None = None,
        config: Mapping[str, Any] | None = None,
        validate_tool_calls: bool = False,
    ) -> None:
        client, api_key = unshare(client), unshare(api_key)
        check_env_arguments(
            render_mode=render_mode,
            client=client,
            client_type=LabsClient,
            api_key=api_key,
            base_url=base_url,
            collection=collection,
            config=config,
        )
        self._scenarios = scenario_choice(scenario)
        self.collection = collection
        self.render_mode = render_mode
        self._reward_config = coerce_reward_config(reward_config)
        self._config = dict(config or {})
        key = ApiKey.resolve(api_key) if api_key is not None else None  # never kept as a str
        self._owns_client = client is None
        self._client = client if client is not None else make_client(key, base_url)
        self._driver = EpisodeDriver(
            InlineService(self._client),
            score_turns=check_flag(score_turns, "score_turns"),
            validate_tool_calls=check_flag(validate_tool_calls, "validate_tool_calls"),
        )
        self._episode: Episode | None = None
        self._closed = False
        self.observation_space = MessageHistory()
        self.action_space = AgentAction()
        # Built directly (not by gym.make), the env still declares what it is: a
        # nondeterministic env (an LLM-judged reward), remade from these arguments.
        self.spec = EnvSpec(
            id=ENV_ID,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            nondeterministic=True,
            kwargs={
                "collection": collection,
                "scenario": scenario,
                "client": client,
                "api_key": key,
                "base_url": base_url,
                "score_turns": score_turns,
                "reward_config": self._reward_config,
                "render_mode": render_mode,
                "config": dict(self._config),
                "validate_tool_calls": validate_tool_calls,
            },
        )

    # ------------------------------------------------------------------ properties

    @property
    def spec(self) -> EnvSpec | None:
        """The env's spec (``gym.make`` sets it; a directly built env makes its own)."""
        return self._spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        # Shared client, masked key, a plain reward config (see labs_env.envs.env_spec).
        self._spec = None if value is None else labs_spec(value)

    @property
    def score_turns(self) -> bool:
        """Whether episodes are created with every turn scored (applies from the next reset)."""
        return self._driver.score_turns

    @score_turns.setter
    def score_turns(self, value: bool) -> None:
        self._driver.score_turns = check_flag(value, "score_turns")

    @property
    def validate_tool_calls(self) -> bool:
        """Whether semantically wrong tool calls are rejected before sending."""
        return self._driver.validate_tool_calls

    @property
    def client(self) -> LabsClient:
        """The client the env talks through."""
        return self._client

    @property
    def episode(self) -> Episode | None:
        """The current episode's state (``None`` before the first reset)."""
        return self._episode

    @property
    def reward_config(self) -> RewardConfig | None:
        """The reward config sent with the next turn (``None``: default scoring).

        Assigning applies from the next turn of the current episode and to later episodes.
        """
        if self._episode is not None and not self._episode.done:
            return self._episode.reward_config
        return self._reward_config

    @reward_config.setter
    def reward_config(self, value: RewardConfig | Mapping[str, Any] | None) -> None:
        config = coerce_reward_config(value)
        self._reward_config = config
        if self._episode is not None:
            self._episode.reward_config = config

    def catalog(self) -> Catalog:
        """The service's catalog (fetched once, then cached)."""
        return run_inline(self._driver.catalog())

    @property
    def context(self) -> EpisodeContext:
        """What a policy may know about the current episode (fetches the catalog once)."""
        episode = self._require_episode(for_step=False)
        try:
            self.catalog()
        except APIError as exc:
            _log.warning("catalog unavailable: %s", exc)
        return self._driver.context(episode)

    # ------------------------------------------------------------------ gymnasium API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[History, dict[str, Any]]:
        """Start a new episode (an unfinished one is terminated first, best effort).

        Args:
            seed: seeds the env's RNG (scenario draw and the episode seed).
            options: one-episode overrides: ``scenario`` (a slug), ``reward_config``
                (``None`` = default scoring for this episode), ``config`` (merged over the
                env's ``config``).
        """
        self._check_open()
        super().reset(seed=seed)
        driver = self._driver
        if self.collection is None:
            self.collection = run_inline(driver.resolve_collection(None))
        if self._scenarios is None:
            self._scenarios = run_inline(driver.all_scenarios(self.collection))
        plan = plan_episode(
            self.np_random,
            collection=self.collection,
            scenarios=self._scenarios,
            reward_config=self._reward_config,
            config=self._config,
            options=options,
        )
        self._abandon_episode()
        self._episode = run_inline(driver.create(plan))
        return self._episode.observation(), self._episode.reset_info()

    def step(self, action: Any) -> tuple[History, SupportsFloat, bool, bool, dict[str, Any]]:
        """Submit one turn: the full history plus the agent's new message.

        Raises:
            gymnasium.error.ResetNeeded: before the first reset or after the episode ended.
            LabsValidationError: a malformed action (nothing was sent).
            TurnMismatchError: the service committed an earlier, seemingly lost submission;
                the episode is abandoned.
            APIError: the service failed; for connection errors the step may be retried.
        """
        self._check_open()
        episode = self._require_episode(for_step=True)
        transition = run_inline(self._driver.submit(episode, episode.build_turn(action)))
        return transition.as_tuple()

    def render(self) -> str | None:
        """The transcript (``render_mode="ansi"``), with per-turn rewards and scores."""
        if self.render_mode != "ansi":
            return None
        if self._episode is None:
            return ""
        return self._episode.transcript()

    def close(self) -> None:
        """Terminate an unfinished episode (best effort) and close a client the env made.

        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._abandon_episode()
        finally:
            if self._owns_client:
                self._client.close()
            super().close()

    # ------------------------------------------------------------------ helpers

    def _check_open(self) -> None:
        if self._closed:
            raise gym.error.ClosedEnvironmentError("the LabsEnv is closed")

    def _require_episode(self, *, for_step: bool) -> Episode:
        episode = self._episode
        if episode is None:
            raise ResetNeeded("call reset() before step()" if for_step else "no episode yet")
        if for_step and episode.done:
            reason = episode.terminal_reason or "abandoned"
            raise ResetNeeded(
                f"episode {episode.episode_id} has ended ({reason}); call reset() to start a "
                "new one"
            )
        return episode

    def _abandon_episode(self) -> None:
        if self._episode is not None:
            run_inline(self._driver.terminate(self._episode))
