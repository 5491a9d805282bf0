"""Independent-episode collection: records, groups, concurrency, errors, resume, early stop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from labs_env import APIConnectionError, LabsValidationError, TrajectoryRecord
from labs_env.rollout.collection import (
    CollectProgress,
    EpisodeSpec,
    collect,
    collect_groups,
    collect_sync,
    completed_keys,
    episode_specs,
)
from labs_env.rollout.policy import EpisodeContext
from tests.kit.scenarios import ASK, COLLECTION, DECIDE, TALK
from tests.kit.transports import ScriptedTransport, async_client


def ask(history: Any, context: EpisodeContext) -> str:
    return f"{ASK} (turn {context.turn + 1})"


def summary(records: list[TrajectoryRecord]) -> dict[str, Any]:
    return {
        r.extra["spec_key"]: (r.conversation(), [t.reward for t in r.turns], r.terminal_reason)
        for r in records
    }


def test_records_do_not_depend_on_concurrency_or_completion_order() -> None:
    specs = episode_specs(COLLECTION, [TALK, DECIDE], episodes=3, seed=5)
    one = collect_sync(ask, specs, client=async_client(), concurrency=1, max_turns=3)
    many = collect_sync(ask, specs, client=async_client(), concurrency=6, max_turns=3)
    assert [r.extra["spec_key"] for r in many] == [s.key for s in specs]  # spec order
    assert summary(one) == summary(many)
    record = many[0]
    assert record.ok and record.num_turns == 3 and record.seed == 5
    assert record.truncated and record.terminal_reason == "client_terminated"
    assert record.turns[0].messages[0]["content"].startswith(ASK)
    assert record.final_reward == record.turns[-1].reward
    assert record.total_reward == pytest.approx(sum(t.reward for t in record.turns))


def test_episodes_play_to_the_end_and_report_progress() -> None:
    seen: list[CollectProgress] = []
    specs = episode_specs(COLLECTION, TALK, episodes=2)
    records = collect_sync(ask, specs, client=async_client(), progress=seen.append)
    assert all(r.terminated or r.truncated for r in records)
    assert all(r.terminal_reason is not None for r in records)
    assert [p.finished for p in seen] == [1, 2]
    assert seen[-1].turns == sum(r.num_turns for r in records)
    assert seen[-1].mean_reward == pytest.approx(sum(r.final_reward or 0 for r in records) / 2)


def test_groups_share_scenario_and_seed_and_arrive_together() -> None:
    specs = episode_specs(COLLECTION, [TALK, DECIDE], episodes=2)

    async def main() -> list[list[TrajectoryRecord]]:
        groups = []
        async for group in collect_groups(
            ask, specs, group_size=3, client=async_client(), concurrency=5, max_turns=2
        ):
            groups.append(group)
        return groups

    groups = asyncio.run(main())
    assert len(groups) == 4
    for group in groups:
        assert [r.extra["member"] for r in group] == [0, 1, 2]
        assert len({(r.scenario, r.seed, r.extra["group"]) for r in group}) == 1
        assert len({r.episode_id for r in group}) == 3
        assert len({r.initial_observation["content"] for r in group}) == 1  # same seed


@pytest.mark.parametrize(("prefetch", "most_requests"), [(False, 4), (True, 8)])
def test_concurrency_bounds_the_episodes_in_flight(prefetch: bool, most_requests: int) -> None:
    transport = ScriptedTransport(yields=3)

    async def policy(history: Any, context: EpisodeContext) -> str:
        await asyncio.sleep(0)
        return ASK

    specs = episode_specs(COLLECTION, TALK, episodes=12)
    records = collect_sync(
        policy,
        specs,
        client=async_client(transport),
        concurrency=4,
        max_turns=2,
        prefetch=prefetch,
    )
    assert len(records) == 12 and all(r.ok for r in records)
    # creating ahead adds at most one create request per worker, never an extra episode
    assert 1 < transport.max_in_flight <= most_requests
    assert len(transport.paths("/episodes")) == 12


def kinds(transport: ScriptedTransport) -> list[str]:
    return [path.rsplit("/", 1)[-1] for _, path in transport.requests]


@pytest.mark.parametrize("limit", ["max_turns", "catalog"])
def test_the_next_episode_is_created_while_the_last_turn_is_in_flight(limit: str) -> None:
    transport = ScriptedTransport(yields=2)
    # the turn limit comes from collect(max_turns=...) or from the scenario's catalog entry
    # (DECIDE: 10 turns; the scripted agent never decides, so the service ends it there)
    max_turns = 2 if limit == "max_turns" else None
    specs = episode_specs(COLLECTION, DECIDE, episodes=2)
    records = collect_sync(
        ask, specs, client=async_client(transport), concurrency=1, max_turns=max_turns
    )
    turns = 2 if limit == "max_turns" else 10
    assert [r.num_turns for r in records] == [turns, turns] and all(r.ok for r in records)
    sequence = [k for k in kinds(transport) if k != "catalog"]
    created = [i for i, kind in enumerate(sequence) if kind == "episodes"]
    first_turns = [i for i, kind in enumerate(sequence[: created[1]]) if kind == "turns"]
    # the second episode's create went out before the first episode's last turn
    assert len(first_turns) == turns - 1
    assert sequence.count("turns") == 2 * turns and len(created) == 2
    unprefetched = ScriptedTransport()
    collect_sync(
        ask,
        specs,
        client=async_client(unprefetched),
        concurrency=1,
        max_turns=max_turns,
        prefetch=False,
    )
    plain = [k for k in kinds(unprefetched) if k != "catalog"]
    assert plain[: plain.index("episodes", 1)].count("turns") == turns  # after the last turn


def test_a_failed_create_ahead_is_the_next_episodes_error_not_the_current_ones() -> None:
    transport = ScriptedTransport(yields=1)
    creates = 0

    def second_create(request: Any) -> bool:
        nonlocal creates
        if request.url.path.endswith("/episodes"):
            creates += 1
            return creates == 2  # the one made ahead, during the first episode's last turn
        return False

    transport.fail = second_create
    specs = episode_specs(COLLECTION, DECIDE, episodes=3)
    first, second, third = collect_sync(
        ask, specs, client=async_client(transport, max_retries=0), concurrency=1, max_turns=2
    )
    assert first.ok and first.num_turns == 2
    assert not second.ok and second.num_turns == 0 and "APIConnectionError" in str(second.error)
    assert second.extra["spec_key"] == specs[1].key
    assert third.ok and third.num_turns == 2


def test_failures_become_records_with_errors_and_never_rewards() -> None:
    transport = ScriptedTransport()
    failed_episodes: list[str] = []

    def policy(history: Any, context: EpisodeContext) -> str:
        if context.scenario == DECIDE:
            failed_episodes.append(context.episode_id)
        return ASK

    specs = episode_specs(COLLECTION, [TALK, DECIDE], episodes=2)
    transport.fail = lambda request: (
        request.url.path.endswith("/turns") and any(e in request.url.path for e in failed_episodes)
    )
    records = collect_sync(policy, specs, client=async_client(transport), max_turns=2)
    bad = [r for r in records if not r.ok]
    assert {r.scenario for r in bad} == {DECIDE} and len(bad) == 2
    assert all("APIConnectionError" in (r.error or "") for r in bad)
    assert all(r.num_turns == 0 and r.final_reward is None for r in bad)
    assert all(r.extra["error_type"] == "APIConnectionError" for r in bad)
    assert len(transport.paths("/terminate")) >= 2  # failed episodes ended on the service
    assert all(r.ok for r in records if r.scenario == TALK)

    with pytest.raises(APIConnectionError):
        collect_sync(policy, specs, client=async_client(transport), on_error="raise")


def test_a_failing_policy_is_recorded_too() -> None:
    def policy(history: Any, context: EpisodeContext) -> str:
        raise TimeoutError("model server timed out")

    (record,) = collect_sync(policy, episode_specs(COLLECTION, TALK), client=async_client())
    assert not record.ok and "TimeoutError: model server timed out" in (record.error or "")


def test_async_acall_policies_and_inline_sync_policies() -> None:
    class Model:
        def __call__(self, history: Any, context: EpisodeContext) -> str:
            raise AssertionError("acall should be used")

        async def acall(self, history: Any, context: EpisodeContext) -> str:
            return ASK

    specs = episode_specs(COLLECTION, TALK)
    (record,) = collect_sync(Model(), specs, client=async_client(), max_turns=1)
    assert record.ok and record.turns[0].messages[0]["content"] == ASK
    (record,) = collect_sync(ask, specs, client=async_client(), max_turns=1, sync_policy="inline")
    assert record.ok


def test_output_file_makes_runs_resumable(tmp_path) -> None:
    path = tmp_path / "eval.jsonl"
    specs = episode_specs(COLLECTION, [TALK, DECIDE], episodes=2)
    collect_sync(ask, specs[:3], client=async_client(), max_turns=1, output=path)
    done = completed_keys(path)
    assert done == {s.key for s in specs[:3]}
    todo = [s for s in specs if s.key not in done]
    assert todo == specs[3:]
    collect_sync(ask, todo, client=async_client(), max_turns=1, output=path)
    assert completed_keys(path) == {s.key for s in specs}


def test_spec_keys_are_stable_and_distinguish_what_is_played() -> None:
    a = EpisodeSpec(COLLECTION, TALK, seed=1)
    assert a.key == EpisodeSpec(COLLECTION, TALK, seed=1).key
    assert a.key != EpisodeSpec(COLLECTION, TALK, seed=2).key
    with_config = EpisodeSpec(
        COLLECTION, TALK, seed=1, reward_config={"quality_weights": {"discovery": 1}}
    )
    assert with_config.key != a.key
    members = a.group_of(2)
    assert [m.key for m in members] == [f"{a.key}#0", f"{a.key}#1"]
    assert all(m.seed == 1 and m.group == a.key for m in members)


def test_stopping_early_cancels_and_terminates_the_unfinished_episodes() -> None:
    transport = ScriptedTransport(yields=2)

    async def main() -> None:
        # The decision scenario ends first (10 turns), the two others are mid-way then.
        specs = [EpisodeSpec(COLLECTION, DECIDE), *episode_specs(COLLECTION, TALK, episodes=11)]
        client = async_client(transport)
        async with contextlib.aclosing(collect(ask, specs, client=client, concurrency=3)) as run:
            async for _record in run:
                break
        assert asyncio.all_tasks() == {asyncio.current_task()}
        created = len(transport.paths("/episodes"))
        # the rest never started: 3 played, and 1 created ahead during the decision's last turn
        assert created == 4
        # every episode but the finished one was ended: the two in flight, the one created ahead
        assert len(transport.paths("/terminate")) == created - 1

    asyncio.run(main())


def test_a_failing_progress_callback_stops_the_collection_instead_of_hanging() -> None:
    def progress(update: CollectProgress) -> None:
        raise RuntimeError("dashboard down")

    specs = episode_specs(COLLECTION, TALK, episodes=3)
    with pytest.raises(RuntimeError, match="dashboard down"):
        collect_sync(ask, specs, client=async_client(), max_turns=1, progress=progress)


def test_a_value_that_is_not_a_policy_is_refused_before_any_episode() -> None:
    transport = ScriptedTransport()
    specs = episode_specs(COLLECTION, TALK, episodes=2)
    with pytest.raises(LabsValidationError, match="load_policy") as info:
        collect_sync("scripted", specs, client=async_client(transport))  # type: ignore[arg-type]
    assert info.value.field == "policy"
    assert not transport.requests  # nothing was sent
