"""Evaluation charts: PNG files are written, also for empty input; missing matplotlib is clear."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest

from labs_env.errors import LabsValidationError
from labs_env.evaluation.plots import PLOT_FILES, write_plots
from labs_env.rollout.trajectory import TrajectoryRecord, TurnRecord

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _records() -> list[TrajectoryRecord]:
    records = []
    for i in range(12):
        rewards = [0.1 * (i % 4), 0.05 * i]
        records.append(
            TrajectoryRecord(
                episode_id=f"e{i}",
                collection="support",
                scenario=("refund", "billing")[i % 2],
                seed=i,
                turns=[
                    TurnRecord(
                        turn=t + 1,
                        reward=r,
                        # "decision_match" only once: a dimension with an unknown interval
                        scores={
                            "discovery": r,
                            "rubrics": 1 - r,
                            **({"decision_match": 1.0} if i == 0 else {}),
                        },
                    )
                    for t, r in enumerate(rewards)
                ],
                total_reward=sum(rewards),
                final_reward=rewards[-1],
                error="boom" if i == 11 else None,
            )
        )
    return records


def test_write_plots_writes_three_pngs(tmp_path: Path) -> None:
    written = write_plots(_records(), tmp_path / "plots")
    assert sorted(p.name for p in written) == sorted(PLOT_FILES.values())
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000


def test_write_plots_handles_no_results(tmp_path: Path) -> None:
    written = write_plots([], tmp_path)
    assert len(written) == 3 and all(p.read_bytes().startswith(PNG_SIGNATURE) for p in written)


def test_missing_matplotlib_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(LabsValidationError, match="'plots' extra"):
        write_plots(_records(), tmp_path)
    assert not list(tmp_path.iterdir())
