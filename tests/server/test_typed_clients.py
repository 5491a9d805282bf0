"""The local server driven by the typed clients (sync and async) through LocalTransport."""

from __future__ import annotations

import asyncio

import pytest

from labs_env import AsyncLabsClient, LabsClient, Message
from labs_env.errors import EpisodeCompleteError, EpisodeNotFoundError, RateLimitError
from labs_env.server import DEMO_API_KEY, FaultConfig, LocalTransport, demo_account
from labs_env.testing import instant_retries
from tests.kit.fake_simulator import FakeLabs, make_fake_labs
from tests.kit.wire import BASE


def test_sync_client_plays_an_episode_and_maps_errors(fake_labs: FakeLabs) -> None:
    transport = LocalTransport(fake_labs.server)
    with LabsClient(api_key=DEMO_API_KEY, base_url=BASE, transport=transport) as labs:
        assert [c.slug for c in labs.catalog().collections] == ["alpha", "beta"]
        created = labs.create_episode("alpha", "short", score_turns=True, config={"seed": 2})
        history = [Message(role="user", content=created.initial_observation.content)]
        history.append(Message(role="assistant", content="first"))
        first = labs.submit_turn(created.episode_id, history)
        assert (first.turn, first.reward, first.episode_complete) == (1, 0.1, False)
        history += [Message(role="user", content=first.observation.content)]
        history += [Message(role="assistant", content="second")]
        last = labs.submit_turn(created.episode_id, history)
        assert last.terminal_reason == "max_turns_reached"
        with pytest.raises(EpisodeCompleteError):
            labs.submit_turn(created.episode_id, [Message(role="assistant", content="third")])
        with pytest.raises(EpisodeNotFoundError):
            labs.submit_turn("ep_missing", [Message(role="assistant", content="x")])
        assert labs.evaluate("alpha", "long", history).reward == pytest.approx(0.2)
        assert labs.compare("alpha", "long", history, history[:2]).winner == "a"
        other = labs.create_episode("alpha", "long")
        assert labs.terminate_episode(other.episode_id) is True


def test_async_client_over_a_lossy_server_records_each_turn_once() -> None:
    faults = FaultConfig(lost_response_rate=0.5, endpoints=frozenset({"submit_turn"}), seed=4)
    server, simulator = make_fake_labs(faults=faults)

    async def play() -> list[int]:
        transport = LocalTransport(server)
        async with AsyncLabsClient(
            api_key=DEMO_API_KEY,
            base_url=BASE,
            transport=transport,
            max_retries=20,
            retry_unsafe_turns=True,
        ) as labs:
            created = await labs.create_episode("alpha", "long")
            turns = []
            for index in range(6):
                message = Message(role="assistant", content=f"m{index}")
                turns.append((await labs.submit_turn(created.episode_id, [message])).turn)
            return turns

    with instant_retries() as waits:
        turns = asyncio.run(play())
    assert turns == [1, 2, 3, 4, 5, 6]
    assert waits  # some responses were lost and retried with the same Idempotency-Key
    assert len(simulator.sessions[0].seen) == 6


def test_client_sees_the_server_rate_limit() -> None:
    server, _ = make_fake_labs(accounts=(demo_account(rate_limit_per_minute=1),))
    with (
        instant_retries(),
        LabsClient(
            api_key=DEMO_API_KEY, base_url=BASE, transport=LocalTransport(server), max_retries=0
        ) as labs,
    ):
        labs.catalog()
        with pytest.raises(RateLimitError) as caught:
            labs.catalog()
    assert caught.value.reset_at is not None and caught.value.reset_at % 60 == 0
