"""examples/train_reinforce.py learns: a short run's improvement over the uniform policy has a
95 % paired bootstrap interval that excludes zero (the same evaluation seeds before and after)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_reinforce.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_reinforce_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_short_run_improves_with_an_interval_that_excludes_zero() -> None:
    example = load_example()
    args = example.parse_args(
        ["--iterations", "8", "--batch", "16", "--eval-episodes", "24", "--target", "2"]
    )
    result = example.train(args)
    improvement = result["improvement"]
    assert improvement["mean"] > 0
    assert improvement["low"] > 0, improvement  # the 95 % interval excludes zero
    assert result["after"]["mean"] > result["before"]["mean"]
    assert result["iterations"] == 8 and result["scripted"] > result["after"]["mean"]
    rewards = [point["reward"] for point in result["curve"]]
    assert max(rewards[-3:]) > rewards[0]
