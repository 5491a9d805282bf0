"""A NaN or Infinity inside a turn response's ``scores`` ends that episode only, with a typed
response error; every file the runtime writes stays strict JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from labs_env import APIResponseValidationError, LabsEnv, LabsVectorEnv, TrajectoryRecorder
from labs_env.models import EpisodeCreated, TurnResult
from labs_env.rollout.collection import collect_sync, episode_specs
from labs_env.rollout.episode import Episode
from tests.kit.bad_values import (
    SpoilingTransport,
    spoiling_async_client,
    spoiling_client,
    strict_jsonl,
)
from tests.kit.scenarios import ASK, COLLECTION, TALK


def ask(history: object, context: object) -> str:
    return ASK


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
@pytest.mark.parametrize("field", ["scores", "score_breakdown"])
def test_a_turn_with_a_non_finite_score_is_a_response_error(token: bytes, field: str) -> None:
    body = (
        b'{"turn": 1, "observation": {"content": "hi"}, "reward": 0.5, "episode_complete": false,'
        b' "'
        + field.encode()
        + b'": {"rubrics": {"score": 0.5, "criteria": {"tone": '
        + token
        + b"}}}}"
    )
    episode = Episode(
        collection=COLLECTION,
        scenario=TALK,
        created=EpisodeCreated.model_validate(
            {"episode_id": "ep_1", "initial_observation": {"content": "Hello"}}
        ),
    )
    episode.build_turn(ASK)
    with pytest.raises(APIResponseValidationError, match=rf"{field}\.rubrics\.criteria\.tone"):
        episode.apply(TurnResult.model_validate_json(body))
    assert episode.done and episode.turn == 0 and len(episode.observation()) == 1


def test_collect_records_the_spoiled_episode_as_an_error_and_the_file_stays_strict(
    tmp_path: Path,
) -> None:
    transport = SpoilingTransport(spoil=1)
    out = tmp_path / "episodes.jsonl"
    specs = episode_specs(COLLECTION, TALK, episodes=4)
    records = collect_sync(
        ask, specs, client=spoiling_async_client(transport), max_turns=2, output=out
    )
    assert transport.spoiled == 1
    failed = [r for r in records if not r.ok]
    assert len(failed) == 1 and len(records) == 4
    assert failed[0].extra["error_type"] == "APIResponseValidationError"
    assert "scores.spoiled" in (failed[0].error or "")
    assert len(strict_jsonl(out)) == 4


def test_vector_env_truncates_only_the_spoiled_env_and_records_strict_json(
    tmp_path: Path,
) -> None:
    transport = SpoilingTransport(spoil=0)
    out = tmp_path / "vector.jsonl"
    venv = LabsVectorEnv(
        2,
        COLLECTION,
        TALK,
        client=spoiling_async_client(transport),
        record_to=out,
        prefetch=False,
        max_episode_steps=2,
    )
    try:
        venv.reset(seed=0)
        _, _, _, truncated, infos = venv.step([ASK, ASK])
        assert transport.spoiled == 1
        assert truncated.sum() == 1
        final = infos["final_info"]  # the spoiled env was reset in the same step
        errors = [e for e, has in zip(final["error"], final["_error"], strict=True) if has]
        assert len(errors) == 1 and "APIResponseValidationError" in errors[0]
        venv.step([ASK, ASK])
    finally:
        venv.close()
    lines = strict_jsonl(out)
    assert sum(1 for line in lines if line["error"]) == 1
    assert any(line["error"] is None for line in lines)


def test_trajectory_recorder_writes_the_spoiled_episode_as_an_error(tmp_path: Path) -> None:
    transport = SpoilingTransport(spoil=0)
    out = tmp_path / "recorded.jsonl"
    env = TrajectoryRecorder(
        LabsEnv(COLLECTION, TALK, client=spoiling_client(transport)), out, fsync=False
    )
    try:
        env.reset(seed=0)
        with pytest.raises(APIResponseValidationError, match=r"scores\.spoiled"):
            env.step(ASK)
        env.reset(seed=1)  # the next episode is not spoiled
        env.step(ASK)
    finally:
        env.close()
    lines = strict_jsonl(out)
    assert [line["error"] is not None for line in lines] == [True, False]
