"""``labs-env score``: stored conversations scored by the evaluator; failed rows kept apart."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labs_env.cli import main
from labs_env.cli._common import parse_reward_config
from labs_env.connect import make_local_client
from labs_env.policies import load_policy
from labs_env.rollout.trajectory import JsonlWriter, TrajectoryRecord, read_trajectories

COLLECTION = "insurance-claims"
TALK = "delayed-claim-call"
OPENING = {"role": "user", "content": "My claim payout is six weeks late."}
REPLY = {"role": "assistant", "content": "I'm sorry. What is your claim number?"}


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text(
        "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
        encoding="utf-8",
    )
    return path


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _item(item_id: str, scenario: str = TALK, **overrides: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "collection_slug": COLLECTION,
        "scenario_slug": scenario,
        "messages": [OPENING, REPLY],
        **overrides,
    }


def test_items_scored_and_errors_kept_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _jsonl(
        tmp_path / "items.jsonl",
        [
            _item("good"),
            _item("unknown-scenario", scenario="no-such-scenario"),
            "{not json",
            {"id": "no-scenario", "collection_slug": COLLECTION, "messages": [OPENING]},
            _item("bad-role", messages=[{"role": "robot", "content": "beep"}]),
            _item("good-2", messages=[OPENING]),
        ],
    )
    assert main(["score", str(source)]) == 0
    scored = _read(tmp_path / "items.scored.jsonl")
    errors = _read(tmp_path / "items.scored.errors.jsonl")
    assert [row["id"] for row in scored] == ["good", "good-2"]
    assert all(0.0 <= row["reward"] <= 1.0 and row["messages"] for row in scored)
    with make_local_client() as client:
        expected = client.evaluate(COLLECTION, TALK, [OPENING, REPLY]).reward
    assert scored[0]["reward"] == pytest.approx(expected)
    assert [(row["id"], row["line"]) for row in errors] == [
        ("unknown-scenario", 2),
        ("line-3", 3),
        ("no-scenario", 4),
        ("bad-role", 5),
    ]
    assert all(row["error"] and "reward" not in row for row in errors)
    out = capsys.readouterr().out
    assert "scored 2 of 6 rows" in out and "4 errors (not in the data)" in out


def test_trajectories_scored_with_their_final_reward(
    tmp_path: Path, record_episodes: Callable[..., list[TrajectoryRecord]]
) -> None:
    path = tmp_path / "episodes.jsonl"
    record_episodes(load_policy("scripted"), path, collection=COLLECTION, scenario=TALK, episodes=2)
    with JsonlWriter(path, fsync=False) as writer:  # an episode cut by an infrastructure error
        writer.write(
            TrajectoryRecord(
                episode_id="ep_broken",
                collection=COLLECTION,
                scenario=TALK,
                initial_observation=OPENING,
                error="APIConnectionError: connection reset",
            )
        )
    records = read_trajectories(path)
    out = tmp_path / "scored.jsonl"
    assert main(["score", str(path), "--out", str(out)]) == 0
    scored = _read(out)
    # The service scores the whole conversation each turn: /evaluate of the final transcript
    # is the final turn's reward.
    assert [(r["episode_id"], r["reward"]) for r in scored] == [
        (r.episode_id, pytest.approx(r.final_reward)) for r in records[:2]
    ]
    assert scored[0]["messages"] == [
        {k: v for k, v in m.items() if v is not None} for m in records[0].conversation()
    ]
    errors = _read(tmp_path / "scored.errors.jsonl")
    assert [e["id"] for e in errors] == ["ep_broken"]
    assert "infrastructure error" in errors[0]["error"]


def test_reward_config_scores_with_evaluate(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "items.jsonl", [_item("a"), _item("b", messages=[OPENING])])
    assert main(["score", str(source), "--reward-config", "phase1"]) == 0
    scored = _read(tmp_path / "items.scored.jsonl")
    config = parse_reward_config("phase1")
    with make_local_client() as client:
        expected = [
            client.evaluate(COLLECTION, TALK, m, reward_config=config).reward
            for m in ([OPENING, REPLY], [OPENING])
        ]
        default = client.evaluate(COLLECTION, TALK, [OPENING, REPLY]).reward
    assert [row["reward"] for row in scored] == pytest.approx(expected)
    assert expected[0] != pytest.approx(default)  # the config really changed the scoring


def test_normalization_fields_are_sent(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "items.jsonl", [_item("a"), _item("b")])
    argv = ["score", str(source), "--normalization-key", "run-1", "--window", "5n"]
    assert main(argv) == 0
    assert all("normalized" in row for row in _read(tmp_path / "items.scored.jsonl"))


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--reward-config", "{bad json"], "--reward-config"),
        (["--reward-config", '{"quality_weights": {"vibes": 1}}'], "vibes"),
        (["--window", "7x"], "--window"),
        (["--window", "7d"], "normalization_key"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    source = _jsonl(tmp_path / "items.jsonl", [_item("a")])
    assert main(["score", str(source), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("labs-env score:") and needle in err[0]
    assert not (tmp_path / "items.scored.jsonl").exists()


def test_missing_or_empty_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(tmp_path / "missing.jsonl")]) == 2
    assert "is not a file" in capsys.readouterr().err
    assert main(["score", str(_jsonl(tmp_path / "empty.jsonl", []))]) == 2
    assert "no rows" in capsys.readouterr().err


def test_all_rows_failing_exits_1(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "items.jsonl", [_item("x", scenario="nope"), "[1, 2]"])
    assert main(["score", str(source)]) == 1
    assert _read(tmp_path / "items.scored.jsonl") == []
    assert len(_read(tmp_path / "items.scored.errors.jsonl")) == 2


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    assert "labs-env score conversations.jsonl --out scored.jsonl" in capsys.readouterr().out
