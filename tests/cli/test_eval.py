"""``labs-env eval``: files, resume, table, progress, policies by name, bad input exits 2."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from labs_env.cli import main
from labs_env.rollout.trajectory import read_trajectories
from tests.kit.chat_server import FakeChatServer

TALK = ["--collection", "insurance-claims", "--scenario", "delayed-claim-call"]


def _eval(out: Path, *extra: str) -> int:
    return main(["eval", "--out", str(out), *extra])


def test_eval_writes_files_and_prints_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["--policy", "scripted", "--scenario", "insurance-claims/delayed-claim-call"]
    argv += ["--scenario", "it-helpdesk/account-lockout", "--episodes", "2", "--seed", "7"]
    assert _eval(out, *argv) == 0
    captured = capsys.readouterr()
    records = read_trajectories(out / "trajectories.jsonl")
    assert sorted((r.scenario, r.seed) for r in records) == [
        ("account-lockout", 7),
        ("account-lockout", 8),
        ("delayed-claim-call", 7),
        ("delayed-claim-call", 8),
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["episodes"] == 4
    assert (out / "report.md").read_text().startswith("# Evaluation report")
    assert "4 played, 0 already done, 0 errors" in captured.out
    assert f"trajectories: {out / 'trajectories.jsonl'}" in captured.out
    table_row = next(line for line in captured.out.splitlines() if line.startswith("all "))
    assert "1.000 [1.000, 1.000]" in table_row and "completed 4" in table_row
    assert "4/4" in captured.err and "mean 1.000" in captured.err  # the progress bar

    assert _eval(out, *argv) == 0  # resume: nothing left to play
    captured = capsys.readouterr()
    assert "0 played, 4 already done" in captured.out
    assert "resuming: 4 episodes already done, 0 to play" in captured.err
    assert len(read_trajectories(out / "trajectories.jsonl")) == 4


def test_eval_all_scenarios_with_reward_config_and_plots(tmp_path: Path) -> None:
    out, plots = tmp_path / "run", tmp_path / "plots"
    argv = ["--policy", "random", "--collection", "it-helpdesk", "--episodes", "1"]
    argv += ["--reward-config", "phase1", "--concurrency", "2", "--plots", str(plots)]
    assert _eval(out, *argv) == 0
    records = read_trajectories(out / "trajectories.jsonl")
    assert sorted(r.scenario for r in records) == [
        "account-lockout",
        "laptop-crash-ticket",
        "portal-outage-triage",
    ]
    phase1 = {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True}
    assert all(r.reward_config == phase1 for r in records)
    settings = json.loads((out / "run.json").read_text())
    assert settings["policy"] == {"spec": "random", "options": {"seed": 0}}
    assert settings["reward_config"] == phase1
    assert sorted(p.name for p in plots.iterdir()) == [
        "dimension_means.png",
        "reward_by_turn.png",
        "reward_distribution.png",
    ]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in plots.iterdir())


def test_eval_rejects_another_policy_in_the_same_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert _eval(out, "--policy", "random", *TALK, "--episodes", "1") == 0
    assert _eval(out, "--policy", "random", "--option", "seed=4", *TALK, "--episodes", "1") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("labs-env eval: out_dir:") and "new output directory" in err


def test_eval_custom_policy_from_an_import_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_agents.py").write_text(
        textwrap.dedent(
            """
            class Echo:
                def __init__(self, text="Could you tell me more about the claim?"):
                    self.text = text

                async def __call__(self, history, context):
                    return self.text
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    argv = ["--policy", "my_agents:Echo", "--option", 'text="Hello there."', *TALK]
    assert _eval(out, *argv, "--episodes", "1") == 0
    (record,) = read_trajectories(out / "trajectories.jsonl")
    assert record.turns[0].messages[0] == {"role": "assistant", "content": "Hello there."}
    sys.modules.pop("my_agents", None)


def test_eval_openai_policy_against_a_fake_chat_server(
    tmp_path: Path, fake_chat: FakeChatServer
) -> None:
    fake_chat.reply({"content": "I'm sorry about the delay. What is your claim number?"})
    out = tmp_path / "run"
    argv = ["--policy", "openai", "--base-url", fake_chat.base_url, "--model", "tiny-model"]
    argv += [*TALK, "--episodes", "1", "--option", "temperature=0.5"]
    assert _eval(out, *argv) == 0
    (record,) = read_trajectories(out / "trajectories.jsonl")
    assert record.ok and record.num_turns == len(fake_chat.requests)
    assert record.turns[0].messages[0]["content"].startswith("I'm sorry about the delay.")
    body = fake_chat.requests[0]["body"]
    assert body["model"] == "tiny-model" and body["temperature"] == 0.5
    settings = json.loads((out / "run.json").read_text())["policy"]
    assert settings["options"]["model"] == "tiny-model"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--policy", "nope"], "unknown policy 'nope'"),
        (["--policy", "openai"], "needs base_url and model"),
        (["--policy", "scripted", "--model", "m"], "only apply to openai"),
        (["--policy", "scripted", "--option", "seed"], "not KEY=VALUE"),
        (["--policy", "openai", "--option", "api_key=sk-123"], "OPENAI_API_KEY"),
        (["--policy", "no_such_module_xyz:f"], "cannot import module"),
        (["--policy", "scripted", "--episodes", "0"], "--episodes"),
        (["--policy", "scripted", "--concurrency", "0"], "--concurrency"),
        (["--policy", "scripted", "--reward-config", "phase9"], "--reward-config"),
        (["--policy", "scripted", "--collection", "nope"], "unknown collection 'nope'"),
        (["--policy", "scripted", "--scenario", "nope"], "needs a collection"),
        (["--policy", "scripted", "--collection", "it-helpdesk", "--scenario", "x"], "one of"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert _eval(tmp_path / "run", *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("labs-env eval: ") and needle in err[0]
    assert "sk-123" not in err[0]
    assert not (tmp_path / "run").exists()


def test_missing_policy_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["eval"])
    assert info.value.code == 2
    assert "--policy" in capsys.readouterr().err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = capsys.readouterr().out
    assert "labs-env eval --policy openai --base-url http://localhost:8000/v1" in text
    assert "LABS_API_KEY" in text


def test_local_flag_keeps_a_run_offline_when_a_key_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LABS_API_KEY", "lab_mustnotbeused0000000001")
    monkeypatch.setenv("LABS_URL", "http://127.0.0.1:9")  # nothing listens: a leak would fail
    assert _eval(tmp_path / "run", "--policy", "scripted", *TALK, "--episodes", "1", "--local") == 0
    out = capsys.readouterr().out
    assert "(embedded local Labs server)" in out
    assert "lab_mustnotbeused" not in (tmp_path / "run" / "run.json").read_text()


def test_every_episode_failing_exits_1_and_names_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken_agent.py").write_text(
        "def act(history, context):\n    raise ConnectionError('model server unreachable')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    assert _eval(out, "--policy", "broken_agent:act", *TALK, "--episodes", "2") == 1
    captured = capsys.readouterr().out
    assert "2 errors" in captured and "most common error (2x)" in captured
    assert "model server unreachable" in captured
    assert read_trajectories(out / "trajectories.jsonl") == []
    assert len(read_trajectories(out / "errors.jsonl")) == 2
    sys.modules.pop("broken_agent", None)
