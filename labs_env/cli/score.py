"""``labs-env score``: score stored conversations with the service's evaluator.

FILE is JSONL: trajectory records (as ``labs-env eval`` and the recorder write them) or items
{"collection_slug": ..., "scenario_slug": ..., "messages": [...], "id": ...}. Items go to
/batch/evaluate (100 per request; /evaluate for a single item, or for every item when
--reward-config is given). Rows that cannot be scored (bad JSON, invalid messages, episodes
with an infrastructure error, items the service failed) go to a separate errors file and are
never in the scored data.

Examples:
  labs-env score runs/eval/trajectories.jsonl                 # -> trajectories.scored.jsonl
  labs-env score conversations.jsonl --out scored.jsonl --errors failed.jsonl
  labs-env score conversations.jsonl --reward-config phase2
  labs-env score conversations.jsonl --normalization-key run-42 --window 7d --window 100n
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from labs_env.cli._common import (
    add_service_arguments,
    add_service_command,
    open_client,
    parse_reward_config,
    service_label,
)
from labs_env.cli._progress import ProgressBar
from labs_env.datasets import write_jsonl
from labs_env.errors import LabsValidationError
from labs_env.evaluation.scoring import ScoreItem, read_items, score_items
from labs_env.models import BatchEvaluateItem

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``score`` subcommand."""
    parser = add_service_command(
        subparsers,
        "score",
        "score stored conversations (/batch/evaluate); failed items kept apart",
        __doc__,
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="JSONL of trajectories or items")
    parser.add_argument(
        "--out", type=Path, default=None, help="scored JSONL (default: FILE.scored.jsonl)"
    )
    parser.add_argument(
        "--errors", type=Path, default=None, help="error JSONL (default: OUT.errors.jsonl)"
    )
    parser.add_argument(
        "--reward-config",
        default=None,
        metavar="JSON|phase1|phase2|phase3",
        help="score with this config (sent with /evaluate, one request per item)",
    )
    parser.add_argument("--normalization-key", default=None, help="for every item without one")
    parser.add_argument(
        "--window",
        action="append",
        default=None,
        metavar="W",
        help="normalization window, e.g. 7d, 4w, 3m, 100n (repeatable; needs the key)",
    )
    add_service_arguments(parser)
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise LabsValidationError("FILE", f"{path} is not a file", "pass a JSONL file")
    out: Path = args.out or path.with_name(path.name.removesuffix(".jsonl") + ".scored.jsonl")
    errors_path: Path = args.errors or out.with_name(
        out.name.removesuffix(".jsonl") + ".errors.jsonl"
    )
    if len({path.resolve(), out.resolve(), errors_path.resolve()}) < 3:
        raise LabsValidationError("--out", "FILE, --out and --errors must differ", "")
    reward_config = parse_reward_config(args.reward_config)
    items = read_items(path)
    if not items:
        raise LabsValidationError("FILE", f"{path} has no rows", "one JSON object per line")
    if args.normalization_key or args.window:
        items = _with_normalization(items, args.normalization_key, args.window)
    with (
        open_client(args) as client,
        ProgressBar(len(items), label="items") as bar,
    ):
        result = score_items(client, items, reward_config=reward_config, on_progress=bar.advance)
    write_jsonl(result.scored, out)
    if result.errors:
        write_jsonl(result.errors, errors_path)
    elif errors_path.exists():
        errors_path.unlink()  # a stale file from an earlier run would mislead
    rewards = [row["reward"] for row in result.scored]
    mean = f", mean reward {statistics.fmean(rewards):.3f}" if rewards else ""
    print(f"scored {len(result.scored)} of {len(items)} rows{mean} ({service_label(args)})")
    print(f"  scored rows: {out}")
    if result.errors:
        print(f"  {len(result.errors)} errors (not in the data): {errors_path}")
        for row in result.errors[:3]:
            print(f"    line {row['line']}: {row['error'][:160]}")
    return 0 if result.scored or not result.errors else 1


def _with_normalization(
    items: list[ScoreItem], key: str | None, windows: list[str] | None
) -> list[ScoreItem]:
    """Apply ``--normalization-key/--window`` to items that set no key of their own."""
    fixed = []
    for entry in items:
        item = entry.item
        if item is not None and item.normalization_key is None:
            try:
                item = BatchEvaluateItem.model_validate(
                    {
                        **item.model_dump(exclude_none=True),
                        "normalization_key": key,
                        "normalization_windows": windows,
                    }
                )
            except ValidationError as exc:
                problem = "; ".join(str(err["msg"]) for err in exc.errors())
                raise LabsValidationError(
                    "--window", problem, "e.g. --normalization-key run-1 --window 7d"
                ) from None
            entry = replace(entry, item=item)
        fixed.append(entry)
    return fixed
