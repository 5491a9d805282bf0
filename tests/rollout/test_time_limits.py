"""``collect``'s time limits: a policy call or an episode that runs too long ends that episode
(truncated, the limit in ``error``, its partial turns kept but never a result), the episode is
terminated on the service, and the other episodes go on.

No test waits for a limit to pass on a clock: a hung policy waits for an event that never
fires, and the limits are tiny."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from labs_env import LabsValidationError
from labs_env.errors import is_infrastructure_error
from labs_env.rollout.collection import collect_groups, collect_sync, episode_specs
from labs_env.rollout.policy import EpisodeContext
from labs_env.rollout.time_limits import EpisodeTimeoutError, PolicyTimeoutError
from tests.kit.scenarios import ASK, COLLECTION, TALK
from tests.kit.transports import ScriptedTransport, async_client

LIMIT = 0.05


class HangsOnce:
    """An async policy that never answers turn ``turn`` (0-based) of the episode with seed
    ``seed``; it answers every other call at once."""

    def __init__(self, seed: int, turn: int) -> None:
        self.seed, self.turn = seed, turn
        self.never = asyncio.Event()

    async def __call__(self, history: Any, context: EpisodeContext) -> str:
        if (context.seed, context.turn) == (self.seed, self.turn):
            await self.never.wait()
        return ASK


def _collect(policy: HangsOnce, episodes: int, **limits: Any) -> tuple[list[Any], int]:
    """The records of ``episodes`` episodes, and how many terminate requests were sent."""
    transport = ScriptedTransport()
    specs = episode_specs(COLLECTION, TALK, episodes=episodes)
    records = collect_sync(policy, specs, client=async_client(transport), **limits)
    return records, len(transport.paths("/terminate"))


def test_a_hung_policy_call_ends_its_episode_only() -> None:
    records, terminated = _collect(HangsOnce(seed=1, turn=1), 3, max_turns=3, policy_timeout=LIMIT)
    by_seed = {r.seed: r for r in records}
    hung = by_seed[1]
    assert not hung.ok and hung.truncated and hung.extra["error_type"] == "PolicyTimeoutError"
    assert "policy_timeout" in (hung.error or "")
    assert hung.num_turns == 1  # the turn played before the hang is kept
    assert by_seed[0].ok and by_seed[2].ok and by_seed[2].num_turns == 3
    assert terminated >= 1  # ended on the service


def test_an_episode_past_its_wall_clock_limit_is_ended() -> None:
    records, terminated = _collect(HangsOnce(seed=0, turn=2), 2, max_turns=4, episode_timeout=LIMIT)
    slow, other = sorted(records, key=lambda r: r.seed or 0)
    assert not slow.ok and slow.extra["error_type"] == "EpisodeTimeoutError"
    assert slow.truncated and slow.num_turns == 2 and "episode_timeout" in (slow.error or "")
    assert other.ok and other.num_turns == 4
    assert terminated >= 1


def test_a_time_limit_raises_with_on_error_raise_and_is_not_an_infrastructure_error() -> None:
    specs = episode_specs(COLLECTION, TALK)
    with pytest.raises(PolicyTimeoutError) as caught:
        collect_sync(
            HangsOnce(seed=0, turn=0),
            specs,
            client=async_client(),
            policy_timeout=LIMIT,
            on_error="raise",
        )
    assert not is_infrastructure_error(caught.value)
    assert not is_infrastructure_error(EpisodeTimeoutError("x"))


def test_groups_take_the_time_limits_too() -> None:
    async def run() -> list[list[Any]]:
        specs = episode_specs(COLLECTION, TALK)
        stream = collect_groups(
            HangsOnce(seed=0, turn=0),
            specs,
            client=async_client(),
            group_size=2,
            policy_timeout=LIMIT,
        )
        return [group async for group in stream]

    (group,) = asyncio.run(run())
    assert [r.extra["error_type"] for r in group] == ["PolicyTimeoutError"] * 2


@pytest.mark.parametrize("name", ["policy_timeout", "episode_timeout"])
@pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf, "5", True])
def test_time_limits_must_be_positive_finite_numbers(name: str, value: object) -> None:
    specs = episode_specs(COLLECTION, TALK)
    with pytest.raises(LabsValidationError, match=name):
        collect_sync(lambda h, c: ASK, specs, client=async_client(), **{name: value})


def test_a_policy_s_own_timeout_error_is_not_taken_for_a_limit() -> None:
    async def gives_up(history: Any, context: EpisodeContext) -> str:
        raise TimeoutError("the policy's own model call timed out")

    specs = episode_specs(COLLECTION, TALK)
    (record,) = collect_sync(gives_up, specs, client=async_client(), policy_timeout=60.0)
    assert record.extra["error_type"] == "TimeoutError"
