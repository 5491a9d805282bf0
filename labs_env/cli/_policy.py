"""``--policy`` and its options for ``labs-env eval`` / ``compare``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from labs_env.errors import LabsValidationError
from labs_env.policies import load_policy
from labs_env.rollout.policy import Policy

__all__ = ["PolicyChoice", "add_policy_arguments", "policy_choice"]

POLICY_HELP = "scripted | random | openai | package.module:callable"


@dataclass(frozen=True)
class PolicyChoice:
    """A policy as named on the command line, and the options it is built with.

    ``settings()`` is what a run records (and checks when it resumes); it never holds a key.
    """

    spec: str
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Policy:
        """The policy (``load_policy(spec, **options)``)."""
        return load_policy(self.spec, **self.options)

    def settings(self) -> dict[str, Any]:
        return {"spec": self.spec, "options": dict(sorted(self.options.items()))}

    @property
    def label(self) -> str:
        """A short name for tables: the spec, or ``openai:<model>``."""
        model = self.options.get("model")
        return f"{self.spec}:{model}" if self.spec == "openai" and model else self.spec


def add_policy_arguments(
    parser: argparse.ArgumentParser | Any, suffix: str = "", *, side: str = ""
) -> None:
    """Add ``--policy{suffix}``, ``--base-url{suffix}``, ``--model{suffix}``, ``--option{suffix}``.

    Args:
        suffix: e.g. ``"-a"`` for ``labs-env compare``; empty for ``eval``.
        side: words for the help text (``"A's "``).
    """
    parser.add_argument(
        f"--policy{suffix}",
        required=True,
        metavar="SPEC",
        help=f"{side}policy: {POLICY_HELP}",
    )
    parser.add_argument(
        f"--base-url{suffix}",
        default=None,
        metavar="URL",
        help=f"{side}OpenAI-compatible server for --policy{suffix} openai, "
        "e.g. http://localhost:8000/v1",
    )
    parser.add_argument(
        f"--model{suffix}", default=None, metavar="NAME", help=f"{side}model for openai"
    )
    parser.add_argument(
        f"--option{suffix}",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"{side}policy option (VALUE parsed as JSON, else a string; repeatable), "
        "e.g. temperature=0.7, seed=3",
    )


def policy_choice(
    spec: str,
    *,
    base_url: str | None,
    model: str | None,
    options: Sequence[str],
    seed: int,
    flag: str = "--option",
) -> PolicyChoice:
    """The :class:`PolicyChoice` from parsed arguments.

    ``random`` and ``scripted`` get ``seed`` unless an option sets one; ``openai`` gets
    ``base_url`` and ``model``.

    Raises:
        LabsValidationError: a malformed option, or ``--base-url``/``--model`` on a policy
            that does not take them.
    """
    parsed = _parse_options(options, flag)
    if spec in ("random", "scripted"):
        parsed.setdefault("seed", seed)
    if base_url is not None or model is not None:
        if spec != "openai" and ":" not in spec:
            raise LabsValidationError(
                "--base-url/--model", f"only apply to openai (or your own) policy, not {spec!r}"
            )
        if base_url is not None:
            parsed["base_url"] = base_url
        if model is not None:
            parsed["model"] = model
    return PolicyChoice(spec, parsed)


def _parse_options(options: Sequence[str], flag: str) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for text in options:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip().isidentifier():
            raise LabsValidationError(flag, f"{text!r} is not KEY=VALUE", f"e.g. {flag} seed=3")
        if key.strip() == "api_key":
            raise LabsValidationError(
                flag, "an API key on the command line ends up in shell history and logs",
                "set OPENAI_API_KEY instead",
            )  # fmt: skip
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        parsed[key.strip()] = value
    return parsed
