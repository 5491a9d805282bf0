"""LabsVectorEnv failure isolation (on_error), recording, and clean shutdown mid-flight."""

from __future__ import annotations

import asyncio
import threading

import gymnasium as gym
import pytest
from gymnasium.vector import AutoresetMode

from labs_env import AsyncLabsClient, NotFoundError, read_trajectories
from labs_env.envs import LabsVectorEnv, VectorStepError
from labs_env.server import DEMO_API_KEY, LabsServer, run_in_thread
from labs_env.testing import instant_retries
from tests.kit.scenarios import ASK, COLLECTION, TALK
from tests.kit.transports import ScriptedTransport, async_client, client_sockets, for_episode
from tests.kit.waiting import until, wait_until


def scripted_venv(num_envs: int = 3, **kwargs: object) -> tuple[LabsVectorEnv, ScriptedTransport]:
    transport = ScriptedTransport()
    venv = LabsVectorEnv(
        num_envs,
        collection=COLLECTION,
        scenario=TALK,
        client=async_client(transport),
        **kwargs,  # type: ignore[arg-type]
    )
    return venv, transport


def test_truncate_ends_only_the_failing_episode_with_the_error_in_info_and_records(
    tmp_path,
) -> None:
    venv, transport = scripted_venv(record_to=tmp_path / "runs.jsonl")
    _, infos = venv.reset(seed=0)
    victim = infos["episode_id"][1]
    venv.step([ASK] * 3)
    transport.fail = for_episode(victim)
    obs, rewards, terminated, truncated, infos = venv.step([ASK] * 3)
    assert truncated.tolist() == [False, True, False]
    assert not terminated.any()
    assert rewards[1] == 0.0 and rewards[0] > 0 and rewards[2] > 0
    final = infos["final_info"]  # SAME_STEP: the failed episode's last info
    assert final["_error"].tolist() == [False, True, False]
    assert "APIConnectionError" in final["error"][1]
    assert final["error_type"][1] == "APIConnectionError"
    assert len(obs[1]) == 1 and infos["episode_id"][1] != victim  # already replaced
    assert len(obs[0]) == 5 and len(obs[2]) == 5
    assert "error" not in infos  # the fresh episode started fine
    obs, *_ = venv.step([ASK] * 3)  # the batch goes on
    assert [len(o) for o in obs] == [7, 3, 7]
    assert transport.paths(f"/episodes/{victim}/terminate")  # ended on the service too
    venv.close()
    records = read_trajectories(tmp_path / "runs.jsonl")
    failed = [r for r in records if not r.ok]
    assert [r.episode_id for r in failed] == [victim]
    assert failed[0].truncated and failed[0].num_turns == 1  # the failed turn is no reward
    assert {r.terminal_reason for r in records if r.ok} == {"client_terminated"}  # closed


def test_raise_reports_the_failure_after_the_others_completed() -> None:
    venv, transport = scripted_venv(on_error="raise", autoreset_mode=AutoresetMode.NEXT_STEP)
    _, infos = venv.reset(seed=0)
    transport.fail = for_episode(infos["episode_id"][2])
    with pytest.raises(VectorStepError) as caught:
        venv.step([ASK] * 3)
    assert list(caught.value.errors) == [2]
    obs, rewards, _, truncated, step_infos = caught.value.result
    assert truncated.tolist() == [False, False, True]
    assert rewards[0] > 0 and step_infos["error_type"][2] == "APIConnectionError"
    assert [len(o) for o in obs] == [3, 3, 1]
    transport.fail = lambda request: False
    obs, rewards, _, truncated, _ = venv.step([ASK, ASK, None])  # env 2 resets (NEXT_STEP)
    assert [len(o) for o in obs] == [5, 5, 1] and rewards[2] == 0.0
    venv.close()


def test_replace_starts_a_fresh_episode_at_once_even_in_next_step_mode() -> None:
    venv, transport = scripted_venv(on_error="replace", autoreset_mode=AutoresetMode.NEXT_STEP)
    _, infos = venv.reset(seed=0)
    victim = infos["episode_id"][0]
    transport.fail = for_episode(victim)
    obs, _, _, truncated, infos = venv.step([ASK] * 3)
    assert truncated.tolist() == [True, False, False]
    assert len(obs[0]) == 1 and infos["episode_id"][0] != victim
    assert infos["final_info"]["error_type"][0] == "APIConnectionError"
    obs, *_ = venv.step([ASK] * 3)  # env 0 plays its replacement, no reset step wasted
    assert [len(o) for o in obs] == [3, 5, 5]
    venv.close()


def test_a_failed_autoreset_leaves_the_env_empty_until_it_resets_next_step() -> None:
    venv, transport = scripted_venv(2, prefetch=False)
    _, infos = venv.reset(seed=0)
    transport.fail = lambda r: (
        r.url.path.endswith("/turns") and infos["episode_id"][0] in r.url.path
    )
    original = transport.fail
    transport.fail = lambda r: original(r) or r.url.path.endswith("/episodes")
    with instant_retries():
        obs, _, _, truncated, step_infos = venv.step([ASK, ASK])
    assert truncated.tolist() == [True, False]
    assert obs[0] == () and step_infos["_error"].tolist() == [True, False]  # reset failed
    transport.fail = lambda request: False
    obs, rewards, _, _, step_infos = venv.step([ASK, ASK])
    assert len(obs[0]) == 1 and rewards[0] == 0.0 and step_infos["turn"][0] == 0
    venv.close()


def test_misuse_errors_are_raised_whatever_on_error_says() -> None:
    venv = LabsVectorEnv(
        2, collection=COLLECTION, scenario="no-such-scenario", client=async_client()
    )
    with pytest.raises(NotFoundError):
        venv.reset(seed=0)
    venv.close()


def test_close_during_a_step_cancels_it_and_terminates_the_episodes() -> None:
    before = set(threading.enumerate())
    venv, transport = scripted_venv(close_timeout=5.0)
    _, infos = venv.reset(seed=0)
    transport.hold = lambda request: request.url.path.endswith("/turns")
    failures: list[BaseException] = []

    def stepper() -> None:
        try:
            venv.step([ASK] * 3)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=stepper)
    thread.start()
    wait_until(lambda: len(transport.paths("/turns")) >= 3)  # every env's turn is held
    venv.close()
    thread.join(5)
    assert not thread.is_alive()
    assert len(failures) == 1 and isinstance(failures[0], gym.error.ClosedEnvironmentError)
    terminated = {path.split("/")[-2] for path in transport.paths("/terminate")}
    assert set(infos["episode_id"]) <= terminated
    assert set(threading.enumerate()) == before
    venv.close()  # idempotent


def test_async_close_while_a_step_is_in_flight_leaks_no_tasks() -> None:
    async def main() -> None:
        venv, transport = scripted_venv(2)
        await venv.areset(seed=0)
        transport.hold = lambda request: request.url.path.endswith("/turns")
        step = asyncio.ensure_future(venv.astep([ASK, ASK]))
        await until(lambda: len(transport.paths("/turns")) >= 2)  # both turns are held
        await venv.aclose()
        with pytest.raises(gym.error.ClosedEnvironmentError):
            await step
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert len(transport.paths("/terminate")) >= 2

    asyncio.run(main())


def test_closing_over_real_sockets_releases_every_connection_and_the_thread() -> None:
    before = set(threading.enumerate())
    with run_in_thread(LabsServer()) as url:
        server_threads = set(threading.enumerate()) - before
        port = int(url.rsplit(":", 1)[1])
        owned = LabsVectorEnv(
            4, collection=COLLECTION, scenario=TALK, api_key=DEMO_API_KEY, base_url=url
        )
        owned.reset(seed=0)
        owned.step([ASK] * 4)
        assert client_sockets(port) > 0
        owned.close()
        assert client_sockets(port) == 0
        assert set(threading.enumerate()) - before == server_threads
        # A lent client loses only the connections opened on the env's loop; it stays usable.
        client = AsyncLabsClient(api_key=DEMO_API_KEY, base_url=url)
        venv = LabsVectorEnv(4, collection=COLLECTION, scenario=TALK, client=client)
        venv.reset(seed=0)
        venv.step([ASK] * 4)
        venv.close()
        assert client_sockets(port) == 0 and not client.closed
        assert asyncio.run(client.catalog()).collections
        asyncio.run(client.aclose())
        assert set(threading.enumerate()) - before == server_threads
