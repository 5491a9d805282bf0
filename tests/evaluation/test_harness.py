"""The evaluation harness: runs on the collection API, resumes, keeps errors apart, compares."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from labs_env.connect import make_local_async_client, make_local_client
from labs_env.errors import LabsValidationError
from labs_env.evaluation import (
    EvalProgress,
    aevaluate_policy,
    compare_policies,
    evaluate_policy,
    resolve_scenarios,
)
from labs_env.models import Catalog
from labs_env.policies import ScriptedPolicy
from labs_env.rollout.policy import EpisodeContext
from labs_env.rollout.time_limits import TimeLimits
from labs_env.rollout.trajectory import read_trajectories
from labs_env.server import FaultConfig, LabsServer, ServerConfig

TALK = "insurance-claims/delayed-claim-call"
DECIDE = "insurance-claims/storm-roof-decision"
LOCKOUT = "it-helpdesk/account-lockout"


def _keys(path: Path) -> list[str]:
    return [str(r.extra["spec_key"]) for r in read_trajectories(path)]


def test_writes_records_summary_and_report(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    result = evaluate_policy(
        "scripted",
        [TALK, ("it-helpdesk", "account-lockout")],
        episodes=3,
        seed=5,
        out_dir=tmp_path / "run",
        progress=lambda state: seen.append((state.done, state.total)),
        fsync=False,
    )
    records = read_trajectories(result.trajectories)
    assert len(records) == 6 and all(r.ok for r in records)
    assert sorted((r.collection, r.scenario, r.seed) for r in records) == sorted(
        (c, s, seed) for c, s in [TALK.split("/"), LOCKOUT.split("/")] for seed in (5, 6, 7)
    )
    assert all(r.extra["policy"] == "scripted" for r in records)
    assert seen[0] == (0, 6) and seen[-1] == (6, 6) and len(seen) == 7
    summary = json.loads(result.summary_path.read_text())
    assert summary == result.summary
    assert summary["overall"]["episodes"] == 6 and summary["errors"]["count"] == 0
    assert set(summary["scenarios"]) == {TALK, LOCKOUT}
    assert "# Evaluation report" in result.report_path.read_text()
    assert not result.errors.exists()  # created only when an episode fails
    assert (result.ran, result.skipped, result.errored) == (6, 0, 0)


def test_rerun_skips_finished_episodes_and_extends(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = evaluate_policy("random", [DECIDE], episodes=2, out_dir=out, fsync=False)
    keys = _keys(first.trajectories)
    again = evaluate_policy("random", [DECIDE], episodes=2, out_dir=out, fsync=False)
    assert (again.ran, again.skipped) == (0, 2)
    assert _keys(out / "trajectories.jsonl") == keys
    more = evaluate_policy("random", [DECIDE], episodes=4, out_dir=out, fsync=False)
    assert (more.ran, more.skipped) == (2, 2)
    seeds = sorted(r.seed for r in read_trajectories(out / "trajectories.jsonl"))
    assert seeds == [0, 1, 2, 3] and more.summary["overall"]["episodes"] == 4


def test_a_directory_refuses_another_policy_or_reward_config(tmp_path: Path) -> None:
    out = tmp_path / "run"
    evaluate_policy("scripted", [TALK], episodes=1, out_dir=out, fsync=False)
    with pytest.raises(LabsValidationError, match="policy"):
        evaluate_policy("random", [TALK], episodes=1, out_dir=out, fsync=False)
    phase1 = {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True}
    with pytest.raises(LabsValidationError, match="reward_config"):
        evaluate_policy(
            "scripted", [TALK], episodes=1, reward_config=phase1, out_dir=out, fsync=False
        )
    assert len(read_trajectories(out / "trajectories.jsonl")) == 1


class FlakyPolicy:
    """The scripted baseline, failing on odd seeds while ``broken``."""

    def __init__(self) -> None:
        self.inner = ScriptedPolicy()
        self.broken = True

    def __call__(self, history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> Any:
        if self.broken and (context.seed or 0) % 2:
            raise RuntimeError(f"model server down (seed {context.seed})")
        return self.inner(history, context)


def test_errors_are_kept_apart_and_retried_on_rerun(tmp_path: Path) -> None:
    out, policy = tmp_path / "run", FlakyPolicy()
    first = evaluate_policy(
        policy, [TALK], episodes=4, out_dir=out, policy_name="flaky", fsync=False
    )
    assert sorted(r.seed for r in read_trajectories(first.trajectories)) == [0, 2]
    failed = read_trajectories(first.errors)
    assert sorted(r.seed for r in failed) == [1, 3] and all(r.error for r in failed)
    assert first.errored == 2
    assert first.summary["overall"]["episodes"] == 2  # errors never averaged in
    assert first.summary["errors"]["count"] == 2
    assert "model server down" in next(iter(first.summary["errors"]["messages"]))
    policy.broken = False
    second = evaluate_policy(
        policy, [TALK], episodes=4, out_dir=out, policy_name="flaky", fsync=False
    )
    assert (second.ran, second.skipped, second.errored) == (2, 2, 0)
    assert sorted(r.seed for r in read_trajectories(out / "trajectories.jsonl")) == [0, 1, 2, 3]
    assert second.summary["errors"]["count"] == 0  # resolved errors are not reported
    assert second.summary["overall"]["episodes"] == 4


def test_service_faults_become_error_records(tmp_path: Path) -> None:
    faults = FaultConfig(server_error_rate=0.15, endpoints=frozenset({"submit_turn"}), seed=3)
    server = LabsServer(ServerConfig(faults=faults))

    async def run() -> Any:
        async with make_local_async_client(server=server, max_retries=0) as client:
            return await aevaluate_policy(
                "scripted",
                [TALK, LOCKOUT],
                episodes=4,
                concurrency=1,
                out_dir=tmp_path,
                client=client,
            )

    result = asyncio.run(run())
    good, bad = read_trajectories(result.trajectories), read_trajectories(result.errors)
    assert good and bad and len(good) + len(bad) == 8
    assert all(r.ok for r in good) and all("InternalServerError" in (r.error or "") for r in bad)
    assert result.summary["overall"]["episodes"] == len(good)
    assert result.summary["errors"]["count"] == len(bad)
    assert "InternalServerError" in result.report_path.read_text()


def test_async_policy_and_bad_arguments(tmp_path: Path) -> None:
    async def polite(history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> str:
        await asyncio.sleep(0)
        return "I'm sorry to hear that. Could you tell me your claim number?"

    result = evaluate_policy(polite, [TALK], episodes=2, out_dir=tmp_path / "a", fsync=False)
    assert result.summary["overall"]["episodes"] == 2
    assert read_trajectories(result.trajectories)[0].extra["policy"].endswith(".polite")
    for kwargs, field in [
        ({"scenarios": ["no-slash"]}, "scenarios"),
        ({"scenarios": ["insurance-claims/nope"]}, "scenario"),
        ({"episodes": 0}, "episodes"),
        ({"concurrency": 0}, "concurrency"),
        ({"reward_config": {"quality_weights": {"vibes": 1}}}, "reward_config"),
        ({"client": make_local_client()}, "client"),
    ]:
        call: dict[str, Any] = {"scenarios": [TALK], "out_dir": tmp_path / "b", **kwargs}
        with pytest.raises(LabsValidationError) as info:
            evaluate_policy("scripted", **call)
        assert info.value.field == field
    assert not (tmp_path / "b" / "trajectories.jsonl").exists()


def test_resolve_scenarios() -> None:
    catalog = Catalog.model_validate(
        {
            "collections": [
                {"slug": "c1", "name": "C1", "scenarios": [{"slug": "x", "name": "X"}]},
                {"slug": "c2", "name": "C2", "scenarios": [{"slug": "y", "name": "Y"}]},
            ]
        }
    )
    assert resolve_scenarios(catalog) == [("c1", "x"), ("c2", "y")]
    assert resolve_scenarios(catalog, "c2", ["all"]) == [("c2", "y")]
    assert resolve_scenarios(catalog, None, ["c2/y", "c1/x", "c2/y"]) == [("c2", "y"), ("c1", "x")]
    with pytest.raises(LabsValidationError, match="needs a collection"):
        resolve_scenarios(catalog, None, ["x"])
    with pytest.raises(LabsValidationError, match=r"one of \['x'\]"):
        resolve_scenarios(catalog, "c1", ["y"])
    with pytest.raises(LabsValidationError, match="unknown collection"):
        resolve_scenarios(catalog, "c3")


def test_compare_policies_pairs_episodes_and_asks_the_service(tmp_path: Path) -> None:
    labels = []
    result = compare_policies(
        "scripted",
        "random",
        [DECIDE],
        episodes=3,
        out_dir=tmp_path,
        progress=lambda label, state: labels.append(label),
        labels=("scripted", "random"),
        use_service_compare=True,
        fsync=False,
    )
    comparison = json.loads(result.json_path.read_text())
    assert comparison["overall"]["pairs"] == 3
    assert comparison["overall"]["win_tie_loss"] == {"wins": 3, "ties": 0, "losses": 0, "n": 3}
    assert comparison["overall"]["diff"]["mean"] > 0.3
    service = comparison["service_compare"]
    assert service["judged"] == 3 and service["service"]["a"] == 3 and service["agreement"] == 1.0
    rows = [
        json.loads(line) for line in (tmp_path / "service_compare.jsonl").read_text().splitlines()
    ]
    assert [row["swapped"] for row in rows] == [False, True, False]
    assert all(row["service"] == "a" for row in rows)  # swapped answers mapped back
    assert set(labels) == {"scripted", "random"}
    report = result.report_path.read_text()
    assert "service /compare" in report and "scripted − random" in report
    assert {p.name for p in tmp_path.iterdir()} >= {"a", "b", "compare.json", "compare.md"}


def test_progress_label() -> None:
    state = EvalProgress(total=3)
    assert state.mean_reward is None and "mean –" in state.label()


def test_an_interrupted_run_keeps_what_finished_and_resumes(tmp_path: Path) -> None:
    server = LabsServer()

    def stop_after_three(state: EvalProgress) -> None:
        if state.done == 3:
            raise KeyboardInterrupt

    async def run(episodes: int, progress: Any = None) -> Any:
        async with make_local_async_client(server=server) as client:
            return await aevaluate_policy(
                "scripted", [TALK], episodes=episodes, concurrency=2, out_dir=tmp_path,
                client=client, progress=progress, fsync=False,
            )  # fmt: skip

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run(10, stop_after_three))
    assert len(read_trajectories(tmp_path / "trajectories.jsonl")) == 3
    assert json.loads((tmp_path / "summary.json").read_text())["overall"]["episodes"] == 3
    # Episodes take turns on the loop even against the in-process server: the interrupt came
    # while a few episodes were in flight, not after all ten had been played.
    assert len(server.episodes) < 10
    rerun = asyncio.run(run(10))
    assert (rerun.ran, rerun.skipped) == (7, 3)
    assert rerun.summary["overall"]["episodes"] == 10


def test_a_policy_that_hangs_is_cut_by_the_time_limits_and_played_again(tmp_path: Path) -> None:
    out = tmp_path / "run"
    hung = asyncio.Event()  # never set: the model server does not answer

    async def hangs(history: Sequence[Mapping[str, Any]], context: EpisodeContext) -> str:
        await hung.wait()
        raise AssertionError("unreachable")  # pragma: no cover

    limits = TimeLimits(policy_timeout=0.05, episode_timeout=None)
    first = evaluate_policy(
        hangs,
        [TALK],
        episodes=2,
        out_dir=out,
        policy_name="hangs",
        time_limits=limits,
        stop_after_failures=None,
        fsync=False,
    )
    failed = read_trajectories(first.errors)
    assert (first.ran, first.errored) == (2, 2)
    assert all(r.extra["error_type"] == "PolicyTimeoutError" for r in failed)
    assert first.summary["overall"]["episodes"] == 0  # an error is never a result
    again = evaluate_policy(
        ScriptedPolicy(), [TALK], episodes=2, out_dir=out, policy_name="hangs", fsync=False
    )
    assert (again.ran, again.skipped, again.errored) == (2, 0, 0)  # timed-out episodes replay
    with pytest.raises(LabsValidationError, match="Ray"):
        evaluate_policy(
            "scripted", [TALK], out_dir=tmp_path / "ray", backend="ray", time_limits=limits
        )
