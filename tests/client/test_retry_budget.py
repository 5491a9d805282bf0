"""The retry budget: one token bucket of retries shared by all calls of a client."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from labs_env import AsyncLabsClient, InternalServerError, LabsValidationError, RetryPolicy
from labs_env.client.retry import RetryBudget
from labs_env.testing import instant_retries
from tests.kit.clock import FakeClock
from tests.kit.scripted_http import CREATED, KEY, Script, call, error, make_client, ok


def test_budget_allows_a_reserve_plus_a_ratio_of_recent_successes() -> None:
    clock = FakeClock(1000.0)
    budget = RetryBudget(ratio=0.5, min_per_second=0.2, ttl=10.0, clock=clock)
    assert [budget.try_withdraw() for _ in range(3)] == [True, True, False]  # reserve 0.2 * 10
    for _ in range(4):
        budget.deposit()  # 4 successes earn 2 retries
    assert [budget.try_withdraw() for _ in range(3)] == [True, True, False]
    assert budget.available == 0.0


def test_budget_forgets_successes_and_retries_older_than_the_ttl() -> None:
    clock = FakeClock(1000.0)
    budget = RetryBudget(ratio=1.0, min_per_second=0.0, ttl=10.0, clock=clock)
    for _ in range(3):
        budget.deposit()
    clock.now += 5.0
    assert budget.try_withdraw() and budget.try_withdraw()
    clock.now += 6.0  # the successes expired; so did nothing else
    assert not budget.try_withdraw()
    budget.deposit()
    clock.now += 4.0  # the retries (11 s old) expired too: a fresh success counts in full
    assert budget.available == 1.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"retry_budget_ratio": -0.1}, "RetryPolicy.retry_budget_ratio"),
        ({"retry_budget_ttl": 0.0}, "RetryPolicy.retry_budget_ttl"),
        ({"retry_budget_min_per_second": float("nan")}, "RetryPolicy.retry_budget_min_per_second"),
    ],
)
def test_bad_budget_settings_are_rejected(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(LabsValidationError) as info:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def _small_budget(**overrides: float | None) -> RetryPolicy:
    settings: dict[str, float | None] = {
        "retry_budget_ratio": 0.5,
        "retry_budget_min_per_second": 0.5,
        "retry_budget_ttl": 10.0,  # a reserve of 5 retries
    }
    settings.update(overrides)
    return RetryPolicy(**settings)  # type: ignore[arg-type]


def test_a_5xx_storm_across_concurrent_calls_is_bounded_by_the_budget() -> None:
    script = Script(error(503, "overloaded"))
    calls = 40

    async def storm() -> list[object]:
        async with AsyncLabsClient(
            api_key=KEY,
            base_url="https://labs.example",
            transport=httpx.MockTransport(script),
            max_retries=3,
            retry_policy=_small_budget(),
        ) as client:
            return await asyncio.gather(
                *(client.create_episode("col", "scn") for _ in range(calls)),
                return_exceptions=True,
            )

    with instant_retries() as waits:
        outcomes = asyncio.run(storm())
    assert all(isinstance(o, InternalServerError) for o in outcomes)
    # 40 first attempts + the 5 retries of the reserve, not 40 * (1 + 3) = 160 requests
    assert len(script.requests) == calls + 5
    assert len(waits) == 5


def test_the_budget_is_shared_by_sequential_calls_and_refilled_by_successes(kind: str) -> None:
    script = Script(error(500, "boom"))
    client = make_client(kind, script, max_retries=3, retry_policy=_small_budget())
    assert client.retry_budget is not None
    with instant_retries():
        for _ in range(3):  # 3 calls: 3 + 3 retries, then 1 + 2 retries (reserve spent)
            with pytest.raises(InternalServerError):
                call(client, "create_episode", "col", "scn")
        assert len(script.requests) == 3 + 5
        with pytest.raises(InternalServerError):  # budget spent: no retry at all
            call(client, "create_episode", "col", "scn")
        assert len(script.requests) == 9
        script.items = [ok(CREATED)]
        for _ in range(4):  # 4 successes earn 0.5 retries each
            call(client, "create_episode", "col", "scn")
        script.items = [error(500, "boom")]
        with pytest.raises(InternalServerError):
            call(client, "create_episode", "col", "scn")
    assert len(script.requests) == 9 + 4 + 1 + 2


def test_budget_can_be_disabled(kind: str) -> None:
    script = Script(error(503, "overloaded"))
    policy = _small_budget(retry_budget_ratio=None)
    client = make_client(kind, script, max_retries=2, retry_policy=policy)
    assert client.retry_budget is None
    with instant_retries():
        for _ in range(4):
            with pytest.raises(InternalServerError):
                call(client, "create_episode", "col", "scn")
    assert len(script.requests) == 4 * 3
