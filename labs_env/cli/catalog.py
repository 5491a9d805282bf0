"""``labs-env catalog``: the collections and scenarios you can play, with their tools.

Examples:
  labs-env catalog                       # a readable listing
  labs-env catalog --json > catalog.json # the catalog as JSON (for scripts)
  labs-env catalog --collection it-helpdesk
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from labs_env.cli._common import add_service_arguments, add_service_command, open_client
from labs_env.errors import LabsValidationError
from labs_env.models import Catalog, CatalogCollection, ToolDefinition
from labs_env.rollout.strict_json import dumps

__all__ = ["register", "render_catalog"]


def register(subparsers: Any) -> None:
    """Add the ``catalog`` subcommand."""
    parser = add_service_command(
        subparsers, "catalog", "list collections and scenarios with their tools", __doc__
    )
    parser.add_argument("--json", action="store_true", help="print the catalog as JSON")
    parser.add_argument("--collection", default=None, help="only this collection")
    add_service_arguments(parser)
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        catalog = client.catalog()
    collections = catalog.collections
    if args.collection is not None:
        collections = [c for c in collections if c.slug == args.collection]
        if not collections:
            known = [c.slug for c in catalog.collections]
            raise LabsValidationError(
                "--collection", f"unknown collection {args.collection!r}", f"one of {known}"
            )
    if args.json:
        data = Catalog(collections=collections).model_dump(mode="json", exclude={"request_id"})
        sys.stdout.write(dumps(data, "catalog", indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_catalog(collections))
    return 0


def render_catalog(collections: list[CatalogCollection]) -> str:
    """The catalog as indented text: collection, scenarios (turn limit), tools."""
    lines: list[str] = []
    for collection in collections:
        lines.append(f"{collection.slug}  ({collection.name})")
        if collection.description:
            lines.append(f"  {collection.description}")
        for scenario in collection.scenarios:
            limit = f"max {scenario.max_turns} turns" if scenario.max_turns else "no turn limit"
            lines.append(f"  - {scenario.slug}  ({scenario.name}; {limit})")
            if scenario.description:
                lines.append(f"      {scenario.description}")
            if not scenario.tools:
                lines.append("      tools: none")
            for tool in scenario.tools:
                lines.append(f"      tool {_describe_tool(tool)}")
        lines.append("")
    return "\n".join(lines)


def _describe_tool(tool: ToolDefinition) -> str:
    if tool.mode == "options":
        return f"{tool.id} [decision]: {' | '.join(tool.options or [])}"
    if tool.mode == "json_schema":
        properties = (tool.json_schema or {}).get("properties")
        fields = ", ".join(properties) if isinstance(properties, dict) else "see schema"
        return f"{tool.id} [artifact]: {{{fields}}}"
    return f"{tool.id} [{tool.mode}]"
