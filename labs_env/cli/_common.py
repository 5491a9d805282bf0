"""Helpers shared by the ``labs-env`` subcommands: service choice, reward configs, tables."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labs_env.client import LabsClient
from labs_env.client.api_key import API_KEY_ENV
from labs_env.connect import make_client, make_local_client
from labs_env.errors import LabsValidationError
from labs_env.models import RewardConfig
from labs_env.rollout.planning import coerce_reward_config
from labs_env.wrappers.curriculum_schedule import DOCUMENTED_CURRICULUM

__all__ = [
    "NAMED_REWARD_CONFIGS",
    "SERVICE_EPILOG",
    "add_service_arguments",
    "add_service_command",
    "fmt",
    "format_table",
    "open_client",
    "parse_reward_config",
    "service_label",
]

#: ``--reward-config`` names: the phases of the Labs documentation's curriculum
#: (:data:`~labs_env.wrappers.DOCUMENTED_CURRICULUM`; ``phase3`` is the service's default
#: scoring, i.e. no reward config).
NAMED_REWARD_CONFIGS: dict[str, RewardConfig | None] = {
    **{f"phase{i}": phase.reward_config for i, phase in enumerate(DOCUMENTED_CURRICULUM, 1)},
    "default": None,
}

SERVICE_EPILOG = (
    "Service: the embedded local Labs server (offline) unless LABS_API_KEY is set, then\n"
    "the real service at LABS_URL (default https://labs.tacitintelligence.co);\n"
    "--local forces the embedded server."
)


def add_service_command(subparsers: Any, name: str, help: str, doc: str | None) -> Any:
    """Add subcommand ``name`` that talks to a service: ``doc`` as its description, verbatim,
    and :data:`SERVICE_EPILOG` under its help. Returns the new parser."""
    return subparsers.add_parser(
        name,
        help=help,
        description=doc,
        epilog=SERVICE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """``--local``: use the embedded server even when ``LABS_API_KEY`` is set."""
    parser.add_argument(
        "--local",
        action="store_true",
        help="use the embedded local Labs server even when LABS_API_KEY is set",
    )


def open_client(args: argparse.Namespace, **kwargs: Any) -> LabsClient:
    """The client the command talks to: local with ``--local`` or no key, else the service."""
    if getattr(args, "local", False):
        return make_local_client(**kwargs)
    return make_client(**kwargs)


def service_label(args: argparse.Namespace) -> str:
    """Where requests go, for the command's output (never the key)."""
    if getattr(args, "local", False) or not os.environ.get(API_KEY_ENV):
        return "embedded local Labs server"
    return os.environ.get("LABS_URL") or "the Labs service"


def parse_reward_config(text: str | None) -> RewardConfig | None:
    """``--reward-config``: a phase name, inline JSON, or the path of a JSON file.

    Raises:
        LabsValidationError: not a name, not JSON, or not a valid reward config.

    Example:
        >>> parse_reward_config("phase1").active_scorers
        ('discovery',)
        >>> parse_reward_config("phase3") is None
        True
    """
    if text is None:
        return None
    value = text.strip()
    if value in NAMED_REWARD_CONFIGS:
        named = NAMED_REWARD_CONFIGS[value]
        return None if named is None else named.model_copy(deep=True)
    fix = f"pass JSON, a JSON file, or one of {sorted(NAMED_REWARD_CONFIGS)}"
    if not value.startswith("{") and Path(value).is_file():
        value = Path(value).read_text(encoding="utf-8")
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise LabsValidationError("--reward-config", f"not JSON ({exc.msg})", fix) from None
    if data is None:
        return None
    return coerce_reward_config(data, "--reward-config")


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with a rule under the header, columns padded to fit."""
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table cell (``–`` when missing)."""
    return "–" if value is None else f"{value:.{digits}f}"
