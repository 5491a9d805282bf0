"""A controllable fake simulator behind a real ``LabsServer``.

The fake simulator implements the simulator contract with trivially predictable behaviour so
the protocol layer can be tested on its own (max turns, persona endings, scoring calls):
scenario ``alpha/short`` ends after 2 turns, an agent message containing ``DONE`` (or
``BROKEN``) ends any episode, and the reward is the number of agent messages / 10.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from labs_env.models import (
    Catalog,
    CatalogCollection,
    CatalogScenario,
    Message,
    RewardConfig,
    ToolDefinition,
)
from labs_env.server import LabsServer, ServerConfig
from labs_env.server.simulation import PersonaReply, ScoreResult


@dataclass(frozen=True, eq=False)
class FakeSpec:
    collection: str
    slug: str
    name: str
    description: str
    max_turns: int
    tools: list[ToolDefinition] = field(default_factory=list)


VERDICT = ToolDefinition(
    id="verdict", type="decision", name="Verdict", mode="options", options=["yes", "no"]
)
SCENARIOS = (
    FakeSpec("alpha", "short", "Short one", "Two turns at most.", 2),
    FakeSpec("alpha", "long", "Long one", "Asks for more than the cap.", 80, [VERDICT]),
    FakeSpec("beta", "other", "Other", "In another collection.", 5),
)


class FakeSession:
    """Replies ``reply <n>`` (n = agent messages so far); ends on ``DONE`` / ``BROKEN``."""

    def __init__(self, spec: FakeSpec, seed: int) -> None:
        self.opening = f"Hello from {spec.slug} (seed {seed})"
        self.seen: list[list[Message]] = []

    def reply(self, conversation: Sequence[Message]) -> PersonaReply:
        self.seen.append(list(conversation))
        agent = [m for m in conversation if m.role == "assistant"]
        last = agent[-1].content if agent else ""
        if "DONE" in last:
            return PersonaReply("Goodbye.", True, "completed")
        if "BROKEN" in last:
            return PersonaReply("That went wrong.", True, "error")
        return PersonaReply(f"reply {len(agent)}")


class FakeSimulator:
    """The simulator contract with predictable scores: reward = agent messages / 10 (max 1)."""

    scoring_version = "fake-1.0"

    def __init__(self) -> None:
        self.sessions: list[FakeSession] = []
        self.score_calls: list[tuple[list[Message], RewardConfig | None, ScoreResult]] = []

    def collection_slugs(self) -> tuple[str, ...]:
        return ("alpha", "beta")

    def catalog(self, collections: Collection[str] | None = None) -> Catalog:
        chosen = [
            slug for slug in self.collection_slugs() if collections is None or slug in collections
        ]
        return Catalog(
            collections=[
                CatalogCollection(
                    slug=slug,
                    name=slug.title(),
                    scenarios=[
                        CatalogScenario(
                            slug=s.slug, name=s.name, max_turns=s.max_turns, tools=s.tools
                        )
                        for s in SCENARIOS
                        if s.collection == slug
                    ],
                )
                for slug in chosen
            ]
        )

    def scenario(self, collection_slug: str, scenario_slug: str) -> FakeSpec | None:
        for spec in SCENARIOS:
            if (spec.collection, spec.slug) == (collection_slug, scenario_slug):
                return spec
        return None

    def start(self, scenario: FakeSpec, seed: int) -> FakeSession:
        session = FakeSession(scenario, seed)
        self.sessions.append(session)
        return session

    def score(
        self,
        scenario: FakeSpec,
        conversation: Sequence[Message],
        reward_config: RewardConfig | None,
    ) -> ScoreResult:
        agent = sum(1 for m in conversation if m.role == "assistant")
        reward = min(1.0, agent / 10)
        ran = ("discovery", "rubrics") if reward_config is None else reward_config.active_scorers
        result = ScoreResult(
            reward=reward,
            scores={"D1_Fake": reward, "rubrics": {"score": reward, "criteria": {"c": reward}}},
            score_breakdown={
                k: {"reasoning": "fake", "strengths": [], "improvements": []} for k in ran
            },
            ran=ran,
            gate_passed=None if reward_config and reward_config.skip_safety_gate else True,
        )
        self.score_calls.append((list(conversation), reward_config, result))
        return result


class FakeLabs(NamedTuple):
    """A server over a :class:`FakeSimulator`, and that simulator (to inspect what it saw)."""

    server: LabsServer
    simulator: FakeSimulator


def make_fake_labs(**config: Any) -> FakeLabs:
    """A server over a fresh :class:`FakeSimulator` with ``ServerConfig(**config)``."""
    simulator = FakeSimulator()
    server = LabsServer(ServerConfig(**config), simulator=simulator)  # type: ignore[arg-type]
    return FakeLabs(server, simulator)
