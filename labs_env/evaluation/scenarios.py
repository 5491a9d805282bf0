"""Naming the scenarios of an evaluation: ``"collection/scenario"``, pairs, or the catalog."""

from __future__ import annotations

from collections.abc import Sequence

from labs_env.errors import LabsValidationError
from labs_env.models import Catalog

__all__ = ["ScenarioRef", "normalise_scenarios", "resolve_scenarios"]

#: A scenario as ``"collection/scenario"`` or ``(collection, scenario)``.
ScenarioRef = str | tuple[str, str]


def resolve_scenarios(
    catalog: Catalog, collection: str | None = None, scenarios: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """``(collection, scenario)`` pairs from a catalog, a collection and scenario names.

    ``scenarios`` ``None``, empty or ``["all"]`` means every scenario (of ``collection``, or
    of every collection when it is ``None``). A name may be ``"collection/scenario"``.

    Raises:
        LabsValidationError: an unknown collection or scenario (the message lists the known).
    """
    known = {(c.slug, s.slug) for c in catalog.collections for s in c.scenarios}
    collections = [c.slug for c in catalog.collections]
    if collection is not None and collection not in collections:
        raise LabsValidationError(
            "collection", f"unknown collection {collection!r}", f"one of {collections}"
        )
    if not scenarios or list(scenarios) == ["all"]:
        return [
            (c.slug, s.slug)
            for c in catalog.collections
            if collection is None or c.slug == collection
            for s in c.scenarios
        ]
    pairs: list[tuple[str, str]] = []
    for name in scenarios:
        if "/" in name:
            slug_c, _, slug_s = name.partition("/")
        elif collection is not None:
            slug_c, slug_s = collection, name
        elif len(collections) == 1:
            slug_c, slug_s = collections[0], name
        else:
            raise LabsValidationError(
                "scenario", f"{name!r} needs a collection", "pass --collection or 'collection/name'"
            )
        if (slug_c, slug_s) not in known:
            names = sorted(s for c, s in known if c == slug_c)
            raise LabsValidationError(
                "scenario", f"unknown scenario {slug_c}/{slug_s}", f"one of {names}"
            )
        if (slug_c, slug_s) not in pairs:
            pairs.append((slug_c, slug_s))
    return pairs


def normalise_scenarios(scenarios: Sequence[ScenarioRef]) -> list[tuple[str, str]]:
    """``(collection, scenario)`` pairs from ``"collection/scenario"`` strings or pairs
    (duplicates dropped, order kept).

    Raises:
        LabsValidationError: a malformed entry, or none at all.
    """
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    pairs: list[tuple[str, str]] = []
    for ref in scenarios:
        if isinstance(ref, str):
            collection, sep, scenario = ref.partition("/")
        elif isinstance(ref, tuple) and len(ref) == 2:
            collection, scenario = ref
            sep = "/"
        else:
            collection = scenario = sep = ""
        if not sep or not collection or not scenario:
            raise LabsValidationError(
                "scenarios",
                f"{ref!r} is not 'collection/scenario'",
                "pass e.g. ['insurance-claims/delayed-claim-call'] (resolve_scenarios helps)",
            )
        if (collection, scenario) not in pairs:
            pairs.append((collection, scenario))
    if not pairs:
        raise LabsValidationError("scenarios", "empty", "pass at least one scenario")
    return pairs
