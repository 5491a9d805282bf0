"""The simulator: scenario catalogue, persona sessions and reward aggregation."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labs_env.models import (
    Catalog,
    CatalogCollection,
    CatalogScenario,
    Message,
    RewardConfig,
    ToolDefinition,
)
from labs_env.server.simulation.analysis import Analysis, Analyzer
from labs_env.server.simulation.bounded_cache import BoundedCache
from labs_env.server.simulation.compiled import CompiledScenario
from labs_env.server.simulation.gate import apply_gate, check_gate, gate_breakdown
from labs_env.server.simulation.loader import (
    BUNDLED_DIR,
    ScenarioError,
    applicable_scorers,
    load_file,
    scenario_paths,
)
from labs_env.server.simulation.persona import PersonaSession
from labs_env.server.simulation.scorers import SCORERS, ScorerOutput

__all__ = ["DEFAULT_WEIGHTS", "SCORING_VERSION", "ScenarioSpec", "ScoreResult", "Simulator"]

SCORING_VERSION = "local-1.0"

#: Weights used when a turn or evaluation sends no ``reward_config`` (normalised over the
#: scorers that apply to the scenario).
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "success_metrics": 0.20,
    "failure_metrics": 0.15,
    "best_practices": 0.10,
    "rubrics": 0.15,
    "discovery": 0.20,
    "output_similarity": 0.10,
    "decision_match": 0.10,
}

#: ``score_breakdown`` keys (camelCase, as in the service's example) by scorer key.
BREAKDOWN_KEYS: Mapping[str, str] = {
    "success_metrics": "successMetrics",
    "failure_metrics": "failureMetrics",
    "best_practices": "bestPractices",
    "rubrics": "rubrics",
    "discovery": "discovery",
    "output_similarity": "outputSimilarity",
    "decision_match": "decisionMatch",
}


@dataclass(frozen=True, eq=False)
class ScenarioSpec:
    """A loaded scenario: its catalog attributes plus the compiled definition.

    ``analyzer`` analyses the scenario's conversations for its persona sessions and its
    scoring; ``score_cache`` holds its score results by (analysis state, weights, gate) —
    scoring is pure.
    """

    collection: str
    slug: str
    name: str
    description: str
    max_turns: int
    tools: list[ToolDefinition]
    difficulty: str
    compiled: CompiledScenario = field(repr=False)
    applicable: tuple[str, ...] = field(repr=False)
    analyzer: Analyzer = field(repr=False)
    score_cache: BoundedCache[Hashable, ScoreResult] = field(
        init=False, repr=False, default_factory=lambda: BoundedCache(4096)
    )


@dataclass(frozen=True)
class ScoreResult:
    """The scored conversation: reward, dimension scores, breakdown, scorers run, gate.

    Results are cached and shared between equal conversations: treat ``scores`` and
    ``score_breakdown`` as read-only (copy before changing them). ``memo`` is free for
    consumers to cache what they derive from a result (e.g. its serialised form).
    """

    reward: float
    scores: dict[str, object]
    score_breakdown: dict[str, object]
    ran: tuple[str, ...]
    gate_passed: bool | None
    memo: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


def _tool_definitions(compiled: CompiledScenario) -> list[ToolDefinition]:
    return [ToolDefinition.model_validate(t.model_dump()) for t in compiled.file.tools]


class Simulator:
    """Loads scenario files and simulates the service's persona and scoring.

    Example:
        >>> sim = Simulator()
        >>> spec = sim.scenario("insurance-claims", "delayed-claim-call")
        >>> session = sim.start(spec, seed=0)
        >>> isinstance(session.opening, str)
        True
    """

    scoring_version: str = SCORING_VERSION

    def __init__(self, scenario_dirs: Sequence[Path] | None = None) -> None:
        directories = [BUNDLED_DIR] if scenario_dirs is None else [Path(d) for d in scenario_dirs]
        paths = scenario_paths(directories)
        if not paths:
            raise ScenarioError(directories[0], "(directory)", "contains no *.json files")
        self._specs: dict[tuple[str, str], ScenarioSpec] = {}
        self._collections: dict[str, CatalogCollection] = {}
        for path in paths:
            self._add(path)

    def _add(self, path: Path) -> None:
        file = load_file(path)
        info = file.collection
        known = self._collections.get(info.slug)
        if known is None:
            known = CatalogCollection(slug=info.slug, name=info.name, description=info.description)
            self._collections[info.slug] = known
        elif (known.name, known.description) != (info.name, info.description):
            raise ScenarioError(path, "collection", f"differs from another {info.slug!r} file")
        key = (info.slug, file.scenario.slug)
        if key in self._specs:
            raise ScenarioError(path, "scenario.slug", f"duplicate scenario {key[1]!r}")
        compiled = CompiledScenario(file)
        tools = _tool_definitions(compiled)
        spec = ScenarioSpec(
            collection=info.slug,
            slug=file.scenario.slug,
            name=file.scenario.name,
            description=file.scenario.description,
            max_turns=file.scenario.max_turns,
            tools=tools,
            difficulty=file.scenario.difficulty,
            compiled=compiled,
            applicable=applicable_scorers(file),
            analyzer=Analyzer(compiled),
        )
        self._specs[key] = spec
        known.scenarios.append(
            CatalogScenario(
                slug=spec.slug,
                name=spec.name,
                description=spec.description,
                max_turns=spec.max_turns,
                tools=tools,
            )
        )

    def collection_slugs(self) -> tuple[str, ...]:
        """Slugs of every loaded collection, in load order."""
        return tuple(self._collections)

    def scenarios(self) -> tuple[ScenarioSpec, ...]:
        """Every loaded scenario, in load order."""
        return tuple(self._specs.values())

    def catalog(self, collections: Collection[str] | None = None) -> Catalog:
        """The catalog of the given collection slugs (``None`` = all); ``request_id`` unset."""
        chosen = [
            c.model_copy(deep=True)
            for slug, c in self._collections.items()
            if collections is None or slug in collections
        ]
        return Catalog(collections=chosen)

    def scenario(self, collection_slug: str, scenario_slug: str) -> ScenarioSpec | None:
        """The scenario with these slugs, or ``None``."""
        return self._specs.get((collection_slug, scenario_slug))

    def start(self, scenario: ScenarioSpec, seed: int) -> PersonaSession:
        """A persona session for one episode, deterministic given ``seed``."""
        return PersonaSession(scenario.analyzer, seed)

    def score(
        self,
        scenario: ScenarioSpec,
        conversation: Sequence[Message],
        reward_config: RewardConfig | None,
    ) -> ScoreResult:
        """Score a client-form conversation (pure: same input, same output).

        ``reward_config`` ``None`` = :data:`DEFAULT_WEIGHTS` with the safety gate on; otherwise
        omitted keys weigh 0 and only scorers with weight > 0 run. Scorers that do not apply to
        the scenario (no decision tool → no ``decision_match``; no artifact tool → no
        ``output_similarity``) never run; the weights are normalised over those that do.
        """
        analysis = scenario.analyzer.analyze(conversation)
        if reward_config is None:
            config_key: Hashable = None
        else:
            config_key = (
                tuple(sorted(reward_config.quality_weights.items())),
                reward_config.skip_safety_gate,
            )
        key = (analysis.state_key(), config_key)
        cache = scenario.score_cache
        cached = cache.get(key)
        if cached is None:
            cached = cache.put(key, self._score(scenario, analysis, reward_config))
        return cached

    @staticmethod
    def _score(
        scenario: ScenarioSpec, analysis: Analysis, reward_config: RewardConfig | None
    ) -> ScoreResult:
        compiled = scenario.compiled
        weights = DEFAULT_WEIGHTS if reward_config is None else reward_config.quality_weights
        active = tuple(k for k in scenario.applicable if weights.get(k, 0.0) > 0)
        outputs = {key: SCORERS[key](compiled, analysis) for key in active}
        total = sum(weights[k] for k in active)
        reward = sum(weights[k] * outputs[k].score for k in active) / total if total else 0.0
        breakdown: dict[str, object] = {
            BREAKDOWN_KEYS[k]: {
                "reasoning": out.reasoning,
                "strengths": list(out.strengths),
                "improvements": list(out.improvements),
            }
            for k, out in outputs.items()
        }
        gate_passed: bool | None = None
        if reward_config is None or not reward_config.skip_safety_gate:
            gate = check_gate(compiled, analysis)
            gate_passed = gate.passed
            reward = apply_gate(compiled, gate, reward)
            breakdown["safetyGate"] = gate_breakdown(compiled, gate)
        return ScoreResult(
            reward=min(1.0, max(0.0, reward)),
            scores=_dimension_scores(compiled, outputs),
            score_breakdown=breakdown,
            ran=active,
            gate_passed=gate_passed,
        )


def _dimension_scores(
    compiled: CompiledScenario, outputs: Mapping[str, ScorerOutput]
) -> dict[str, object]:
    scores: dict[str, object] = {}
    for name, feeders in compiled.file.dimensions.items():
        ran = [outputs[s] for s in feeders if s in outputs]
        if not ran:
            continue
        value = round(sum(o.score for o in ran) / len(ran), 4)
        rubric = outputs.get("rubrics") if "rubrics" in feeders else None
        if rubric is not None and rubric.criteria is not None:
            criteria = {k: round(v, 4) for k, v in rubric.criteria.items()}
            scores[name] = {"score": value, "criteria": criteria}
        else:
            scores[name] = value
    return scores
