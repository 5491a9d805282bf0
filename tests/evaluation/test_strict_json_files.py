"""Every JSON file the evaluation writes is strict JSON; a spoiled response ends one episode of
an evaluation, not the run; a non-finite value of the caller's is refused before anything is
played, naming where it is."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from labs_env import AsyncLabsClient, LabsValidationError, TrajectoryRecord
from labs_env.connect import make_local_async_client
from labs_env.datasets import write_jsonl
from labs_env.evaluation import compare_policies, evaluate_policy, service_compare, summarize
from labs_env.rollout.event_loop import run_sync
from labs_env.rollout.trajectory import JsonlWriter
from labs_env.server import DEMO_API_KEY
from tests.kit.bad_values import (
    SpoilingTransport,
    spoiling_async_client,
    strict_json,
    strict_jsonl,
)
from tests.kit.scenarios import COLLECTION, TALK
from tests.kit.wire import BASE

SCENARIO = f"{COLLECTION}/{TALK}"


def test_eval_ends_only_the_spoiled_episode_and_a_rerun_completes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = evaluate_policy(
        "scripted",
        [SCENARIO],
        episodes=3,
        out_dir=out,
        client=spoiling_async_client(SpoilingTransport(spoil=1)),
        fsync=False,
    )
    assert (first.ran, first.errored) == (3, 1)
    assert strict_json(first.summary_path.read_text())["errors"]["count"] == 1
    assert len(strict_jsonl(first.trajectories)) == 2
    assert len(strict_jsonl(first.errors)) == 1
    again = evaluate_policy(
        "scripted",
        [SCENARIO],
        episodes=3,
        out_dir=out,
        client=make_local_async_client(),
        fsync=False,
    )
    assert (again.ran, again.skipped, again.errored) == (1, 2, 0)
    summary = strict_json(again.summary_path.read_text())
    assert summary["overall"]["episodes"] == 3 and summary["errors"]["count"] == 0


def _record(seed: int, rewards: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "episode_id": f"ep_{seed}",
        "collection": "c",
        "scenario": "s",
        "seed": seed,
        "initial_observation": {"role": "user", "content": "Hi"},
        "turns": [
            {
                "turn": i + 1,
                "reward": r,
                "messages": [
                    {"role": "assistant", "content": f"a{seed}.{i}"},
                    {"role": "user", "content": "ok"},
                ],
            }
            for i, r in enumerate(rewards)
        ],
        "final_reward": rewards[-1],
        **extra,
    }


def test_a_summary_of_records_with_a_non_finite_turn_reward_is_strict_json() -> None:
    records = [_record(0, [math.nan, 0.5]), _record(1, [0.2, 0.4])]
    summary = summarize(records)
    strict_json(json.dumps(summary))
    assert summary["overall"]["reward_by_turn"][0] == {"turn": 1, "mean": 0.2, "n": 1}


def test_a_non_finite_policy_setting_is_refused_before_playing(tmp_path: Path) -> None:
    with pytest.raises(LabsValidationError, match=r"policy_name\.temperature"):
        evaluate_policy(
            "scripted",
            [SCENARIO],
            episodes=1,
            out_dir=tmp_path / "run",
            policy_name={"spec": "scripted", "temperature": math.nan},
            fsync=False,
        )
    assert not (tmp_path / "run" / "trajectories.jsonl").exists()
    assert not (tmp_path / "run" / "run.json").exists()


def test_a_non_finite_tie_eps_is_refused_before_playing(tmp_path: Path) -> None:
    with pytest.raises(LabsValidationError, match="tie_eps"):
        compare_policies(
            "scripted", "random", [SCENARIO], episodes=1, out_dir=tmp_path, tie_eps=math.nan
        )
    assert not (tmp_path / "a").exists()


class _InfiniteMargin(httpx.AsyncBaseTransport):
    """A service whose /compare answers with ``margin: Infinity``."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b'{"winner": "a", "reward_a": 1.0, "reward_b": 0.0, "margin": Infinity}'
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})


def test_service_compare_with_an_infinite_margin_counts_a_failure(tmp_path: Path) -> None:
    client = AsyncLabsClient(api_key=DEMO_API_KEY, base_url=BASE, transport=_InfiniteMargin())
    records_a = [TrajectoryRecord.model_validate(_record(0, [0.9]))]
    records_b = [TrajectoryRecord.model_validate(_record(0, [0.1]))]
    out = tmp_path / "service_compare.jsonl"

    async def judge() -> dict[str, Any]:
        try:
            return await service_compare(client, records_a, records_b, out_path=out)
        finally:
            await client.aclose()

    result = run_sync(judge())
    assert (result["judged"], result["failed"]) == (0, 1)
    assert "margin" in strict_jsonl(out)[0]["error"]


def test_write_jsonl_names_a_non_finite_value(tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    with pytest.raises(LabsValidationError, match=r"rows\[1\]\.advantages\[0\]"):
        write_jsonl([{"advantages": [0.0]}, {"advantages": [math.inf]}], out)
    assert not out.exists()


def test_jsonl_writer_names_a_non_finite_value_and_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    good = TrajectoryRecord.model_validate(_record(0, [0.5]))
    bad = TrajectoryRecord.model_validate(_record(1, [0.5], extra={"temperature": math.nan}))
    with JsonlWriter(path, fsync=False) as writer:
        writer.write(good)
        with pytest.raises(LabsValidationError, match=r"record\.extra\.temperature"):
            writer.write(bad)
        writer.write(good)
    assert len(strict_jsonl(path)) == 2
