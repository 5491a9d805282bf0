"""TrajectoryRecorder: what it writes, and that a killed process leaves only whole episodes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

from labs_env import (
    CurriculumWrapper,
    LabsClient,
    LabsEnv,
    LabsValidationError,
    TrajectoryRecorder,
    __version__,
    read_trajectories,
)
from labs_env.connect import make_local_client
from labs_env.errors import APIConnectionError
from labs_env.server import LabsServer
from tests.kit.scenarios import COLLECTION, DECIDE, DECISION, TALK

QUESTION = "Could you tell me what happened and when?"
REPO = Path(__file__).resolve().parents[2]


def test_records_every_field_of_a_finished_episode(
    tmp_path: Path, local_client: LabsClient
) -> None:
    path = tmp_path / "runs.jsonl"
    config = {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True}
    env = TrajectoryRecorder(
        LabsEnv(COLLECTION, DECIDE, client=local_client, reward_config=config),
        path,
        extra={"run": "t1"},
    )
    obs, info = env.reset(seed=5)
    rewards = []
    for action in (QUESTION, DECISION):
        obs, reward, _, _, _ = env.step(action)
        rewards.append(float(reward))
    env.close()
    (record,) = read_trajectories(path)
    assert record.episode_id == info["episode_id"]
    assert (record.collection, record.scenario, record.seed) == (COLLECTION, DECIDE, info["seed"])
    assert record.reward_config == config
    assert record.library_version == __version__ and record.ok
    assert record.extra == {"run": "t1"}
    assert [t.reward for t in record.turns] == rewards
    assert record.total_reward == pytest.approx(sum(rewards))
    assert record.final_reward == rewards[-1]
    assert (record.terminated, record.truncated, record.terminal_reason) == (
        True,
        False,
        "completed",
    )
    assert record.turns[-1].terminated and not record.turns[0].terminated
    assert record.turns[0].scores and record.turns[0].latency_s is not None
    assert record.turns[1].messages[0]["tool_calls"][0]["type"] == "decision"
    assert record.conversation() == list(obs)
    assert record.duration_s is not None and record.started_at is not None


def test_abandoned_and_failed_episodes_are_marked(
    tmp_path: Path, local_client: LabsClient, lost_first_turn_server: LabsServer
) -> None:
    path = tmp_path / "runs.jsonl"
    env = TrajectoryRecorder(LabsEnv(COLLECTION, TALK, client=local_client), path)
    env.reset(seed=0)
    env.reset()  # nothing played: nothing written
    env.step(QUESTION)
    with pytest.raises(LabsValidationError):
        env.step({"content": 5})  # nothing sent: the episode goes on, nothing written
    env.reset()  # one turn played: written as cut short
    env.close()
    (record,) = read_trajectories(path)
    assert (record.truncated, record.terminal_reason, record.num_turns) == (
        True,
        "client_terminated",
        1,
    )

    failing = TrajectoryRecorder(
        LabsEnv(
            COLLECTION,
            DECIDE,
            client=make_local_client(server=lost_first_turn_server, max_retries=0),
        ),
        path,
    )
    failing.reset(seed=0)
    with pytest.raises(APIConnectionError):
        failing.step(QUESTION)
    failing.close()
    records = read_trajectories(path)
    assert len(records) == 2 and not records[1].ok
    assert records[1].error is not None and "APIConnectionError" in records[1].error


def test_records_the_curriculum_phase_and_works_with_gym_make(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    env = TrajectoryRecorder(
        CurriculumWrapper.documented(
            gym.make("labs_env:Labs-v0", collection=COLLECTION, scenario=DECIDE)
        ),
        path,
    )
    env.reset(seed=0)
    env.step(DECISION)
    env.close()
    (record,) = read_trajectories(path)
    assert record.extra == {"curriculum_phase": 0, "curriculum_phase_name": "discovery"}


CHILD = textwrap.dedent(
    """
    import sys
    from labs_env import LabsEnv, TrajectoryRecorder
    env = TrajectoryRecorder(LabsEnv("insurance-claims", "storm-roof-decision"), sys.argv[1])
    decision = {"content": "Approved.",
                "tool_calls": [{"name": "claim_status", "input": {"value": "approve"}}]}
    env.reset(seed=0)
    for episode in range(3):
        env.step("What happened?")
        env.step(decision)
        env.reset()
    env.step("What happened?")  # the fourth episode is in flight
    print("mid-episode", flush=True)
    sys.stdin.read()  # wait to be killed
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_process_leaves_only_complete_episodes(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("LABS_API_KEY", None)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "mid-episode"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    records = read_trajectories(path)
    assert len(records) == 3
    for record in records:
        assert record.terminated and record.terminal_reason == "completed"
        assert record.num_turns == 2 and record.turns[-1].terminated
    assert path.read_bytes().endswith(b"\n")
