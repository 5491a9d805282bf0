"""``labs-env export``: trajectory JSONL to training data (SFT, DPO or GRPO JSONL).

Examples:
  labs-env export runs/episodes.jsonl --format sft --min-reward 0.7 --out data/sft.jsonl
  labs-env export runs/a.jsonl runs/b.jsonl --format dpo --min-margin 0.2 --out data/dpo.jsonl
  labs-env export runs/episodes.jsonl --format grpo --out data/grpo.jsonl --hf-dataset data/grpo

Episodes with an infrastructure error are never exported. An episode's reward is its final
turn's reward.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from labs_env.datasets import dpo_pairs, grpo_groups, sft_examples, to_hf_dataset, write_jsonl
from labs_env.errors import LabsValidationError
from labs_env.rollout.trajectory import TrajectoryRecord, read_trajectories

__all__ = ["register", "run_export"]

#: What DPO and GRPO rows are made of, for an export that found none.
_NEEDS = {
    "dpo": (
        "a pair is two episodes of the same scenario and seed whose rewards differ by at "
        "least --min-margin",
        "export trajectories that play each scenario and seed more than once (both sides of "
        "labs-env compare, or collect(..., group_size=k)), or lower --min-margin",
    ),
    "grpo": (
        "a group is at least --min-group-size episodes of one scenario and seed (or one group_id)",
        "play each spec several times (collect(..., group_size=k)) or export several runs' "
        "trajectories together, or lower --min-group-size",
    ),
}


def register(subparsers: Any) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export",
        help="turn trajectory JSONL into SFT / DPO / GRPO training data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="trajectory JSONL file(s)")
    parser.add_argument("--format", required=True, choices=("sft", "dpo", "grpo"))
    parser.add_argument("--out", required=True, type=Path, help="output JSONL file")
    parser.add_argument(
        "--min-reward", type=float, default=0.5, help="sft: keep episodes with reward >= this"
    )
    parser.add_argument(
        "--min-margin", type=float, default=0.1, help="dpo: minimum chosen-rejected margin"
    )
    parser.add_argument(
        "--pairing",
        choices=("best_worst", "all"),
        default="best_worst",
        help="dpo: one pair per scenario+seed group, or every pair above the margin",
    )
    parser.add_argument("--min-group-size", type=int, default=2, help="grpo: smallest group kept")
    parser.add_argument(
        "--tool-call-format",
        choices=("openai", "labs"),
        default="openai",
        help="tool calls as chat-template function calls (default) or Labs calls",
    )
    parser.add_argument("--system-prompt", default=None, help="prepend this system message")
    parser.add_argument(
        "--hf-dataset",
        type=Path,
        default=None,
        metavar="DIR",
        help="also save a Hugging Face dataset there (needs the 'datasets' package)",
    )
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    print(run_export(args), file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace) -> str:
    """Do the export described by the parsed arguments; return the summary line."""
    records: list[TrajectoryRecord] = []
    for path in args.inputs:
        if not path.is_file():
            raise LabsValidationError("inputs", f"{path} is not a file", "pass trajectory JSONL")
        records.extend(read_trajectories(path))
    common = {"tool_call_format": args.tool_call_format, "system_prompt": args.system_prompt}
    if args.format == "sft":
        rows = sft_examples(records, min_reward=args.min_reward, **common)
    elif args.format == "dpo":
        rows = dpo_pairs(records, min_margin=args.min_margin, pairing=args.pairing, **common)
    else:
        rows = grpo_groups(records, min_size=args.min_group_size, **common)
    if not rows and args.format in _NEEDS:
        problem, fix = _NEEDS[args.format]
        usable = sum(1 for r in records if r.ok)
        raise LabsValidationError(
            "--format", f"no {args.format} rows from {usable} usable episodes: {problem}", fix
        )
    if args.hf_dataset is not None:
        to_hf_dataset(rows).save_to_disk(str(args.hf_dataset))
    count = write_jsonl(rows, args.out)
    errored = sum(1 for r in records if not r.ok)
    return (
        f"wrote {count} {args.format} rows to {args.out} from {len(records)} episodes "
        f"({errored} with errors skipped)"
    )
