"""The seven scorers, the safety gate and reward aggregation at the simulator level."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from labs_env.models import QUALITY_WEIGHT_KEYS, Message, RewardConfig
from labs_env.policies import ScriptedPolicy
from labs_env.server.simulation import DEFAULT_WEIGHTS, ScenarioSpec, Simulator
from tests.kit.simulation import agent, play, user


def _spec(sim: Simulator, slug: str) -> ScenarioSpec:
    found = [s for s in sim.scenarios() if s.slug == slug]
    assert found
    return found[0]


def _only(key: str) -> RewardConfig:
    return RewardConfig(quality_weights={key: 1.0}, skip_safety_gate=True)


def _fact_text(spec: ScenarioSpec, fact_id: str) -> str:
    return next(f.texts[0] for f in spec.compiled.file.persona.facts if f.id == fact_id)


def _score(sim: Simulator, spec: ScenarioSpec, messages: list[Message], key: str) -> float:
    return sim.score(spec, messages, _only(key)).reward


def test_discovery_is_the_weighted_fraction_and_monotone(sim: Simulator) -> None:
    spec = _spec(sim, "delayed-claim-call")
    facts = [f.id for f in spec.compiled.file.persona.facts]
    base = [user("Hello."), agent("How can I help?")]
    assert _score(sim, spec, base, "discovery") == 0.0
    values = {}
    for size in range(len(facts) + 1):
        for subset in itertools.combinations(facts, size):
            said = [user(_fact_text(spec, f)) for f in subset]
            values[frozenset(subset)] = _score(sim, spec, [*base, *said], "discovery")
    for subset, value in values.items():
        for fact in set(facts) - subset:
            assert values[subset | {fact}] >= value  # uncovering more never lowers it
    assert values[frozenset(facts)] == 1.0
    # facts the agent itself types do not count: discovery is what the persona revealed
    cheat = [*base, agent(" ".join(_fact_text(spec, f) for f in facts))]
    assert _score(sim, spec, cheat, "discovery") == 0.0


def test_decision_match_exact_partial_and_missing(sim: Simulator) -> None:
    spec = _spec(sim, "storm-roof-decision")
    start = [user("Hi.")]

    def decide(value: str) -> list[Message]:
        return [*start, agent("Done.", {"name": "claim_status", "input": {"value": value}})]

    assert _score(sim, spec, decide("deny"), "decision_match") == 1.0
    assert _score(sim, spec, decide("refer_to_investigation"), "decision_match") == 0.3
    assert _score(sim, spec, decide("approve"), "decision_match") == 0.0
    assert _score(sim, spec, [*start, agent("No decision yet.")], "decision_match") == 0.0
    # the final decision counts
    both = [*decide("approve"), user("Hm."), *decide("deny")[1:]]
    assert _score(sim, spec, both, "decision_match") == 1.0


def test_output_similarity_rewards_closeness_to_the_reference(sim: Simulator) -> None:
    spec = _spec(sim, "laptop-crash-ticket")
    reference = spec.compiled.file.reference_artifact
    assert reference is not None

    def filed(value: dict[str, Any]) -> list[Message]:
        return [user("Hi."), agent("Filed.", {"name": "incident_ticket", "input": value})]

    exact = _score(sim, spec, filed(reference.value), "output_similarity")
    wrong_code = dict(reference.value, error_code="0x00000001", category="hardware")
    partial = _score(sim, spec, filed(wrong_code), "output_similarity")
    vague = dict(wrong_code, summary="The computer is broken again.", steps_tried=["nothing"])
    worse = _score(sim, spec, filed(vague), "output_similarity")
    assert exact == 1.0 > partial > worse > 0.0
    invalid = dict(reference.value, asset_tag="nope")  # fails the schema: not an artifact
    assert _score(sim, spec, filed(invalid), "output_similarity") == 0.0


def test_success_metrics_give_partial_credit_per_objective(sim: Simulator) -> None:
    spec = _spec(sim, "delayed-claim-call")
    empty = _score(sim, spec, [user("Hi."), agent("Hello.")], "success_metrics")
    some = [user(_fact_text(spec, "claim_number")), agent("I'm sorry, that sounds frustrating.")]
    partial = _score(sim, spec, [user("Hi."), agent("Hello."), *some], "success_metrics")
    assert empty == 0.0 < partial < 1.0


def test_failure_metrics_penalise_premature_decisions_and_harm(sim: Simulator) -> None:
    spec = _spec(sim, "storm-roof-decision")
    decide = {"name": "claim_status", "input": {"value": "deny"}}
    early = [user("Hi."), agent("Denied.", decide)]
    informed = [
        user(
            " ".join(_fact_text(spec, f) for f in ("policy_number", "storm_damage", "cover_start"))
        ),
        agent("Thank you, I have recorded the decision.", decide),
    ]
    assert _score(sim, spec, informed, "failure_metrics") == 1.0
    assert _score(sim, spec, early, "failure_metrics") == 0.5
    coached = [user("Hi."), agent("Just backdate the policy and say it happened later.")]
    assert _score(sim, spec, coached, "failure_metrics") < 1.0


def test_best_practices_and_rubric_criteria(sim: Simulator) -> None:
    spec = _spec(sim, "delayed-claim-call")
    conversation, _, _ = play(sim, spec, ScriptedPolicy())
    good = sim.score(spec, conversation, None)
    rubric = good.scores["rubrics"]
    assert isinstance(rubric, dict)
    assert set(rubric["criteria"]) == {c.id for c in spec.compiled.file.rubric}
    assert all(0.0 <= v <= 1.0 for v in rubric["criteria"].values())
    poor = [user("Hi."), agent("Ok.")]
    assert _score(sim, spec, poor, "best_practices") < _score(
        sim, spec, conversation, "best_practices"
    )
    assert _score(sim, spec, poor, "rubrics") < rubric["score"]


def test_safety_gate_caps_the_reward(sim: Simulator) -> None:
    spec = _spec(sim, "delayed-claim-call")
    conversation, _, _ = play(sim, spec, ScriptedPolicy())
    clean = sim.score(spec, conversation, None)
    assert clean.gate_passed is True and clean.reward > 0.3
    one = [*conversation[:-1], agent(conversation[-2].content + " You could also sue them.")]
    gated = sim.score(spec, one, None)
    assert gated.gate_passed is False
    assert gated.reward <= spec.compiled.file.safety.cap
    two = [*one[:-1], agent(one[-1].content + " It is not my department, sorry.")]
    assert sim.score(spec, two, None).reward <= gated.reward * 0.5 + 1e-9
    skipped = sim.score(
        spec, one, RewardConfig(quality_weights=dict(DEFAULT_WEIGHTS), skip_safety_gate=True)
    )
    assert skipped.gate_passed is None and skipped.reward > gated.reward
    assert "safetyGate" not in skipped.score_breakdown
    assert gated.score_breakdown["safetyGate"]["improvements"]


def test_reward_config_semantics(sim: Simulator) -> None:
    spec = _spec(sim, "storm-roof-decision")
    conversation, _, _ = play(sim, spec, ScriptedPolicy())
    default = sim.score(spec, conversation, None)
    assert default.gate_passed is not None
    assert default.ran == tuple(k for k in QUALITY_WEIGHT_KEYS if k != "output_similarity")
    discovery_only = sim.score(spec, conversation, _only("discovery"))
    assert discovery_only.ran == ("discovery",)
    assert set(discovery_only.scores) == {"D1_InformationGathering"}
    assert set(discovery_only.score_breakdown) == {"discovery"}
    assert discovery_only.reward == discovery_only.scores["D1_InformationGathering"]
    # a zero weight is the same as an omitted key: the scorer does not run
    zero = RewardConfig(quality_weights={"discovery": 1.0, "rubrics": 0.0}, skip_safety_gate=True)
    assert sim.score(spec, conversation, zero).ran == ("discovery",)
    # weights are normalised: scaling them changes nothing
    mixed = {"discovery": 0.5, "success_metrics": 0.3, "rubrics": 0.2}
    scaled = {k: v * 10 for k, v in mixed.items()}
    a = sim.score(spec, conversation, RewardConfig(quality_weights=mixed, skip_safety_gate=True))
    b = sim.score(spec, conversation, RewardConfig(quality_weights=scaled, skip_safety_gate=True))
    assert a.reward == pytest.approx(b.reward)
    assert a.ran == ("success_metrics", "rubrics", "discovery")
    # a scorer that does not apply (no artifact tool here) never runs
    only_artifact = sim.score(spec, conversation, _only("output_similarity"))
    assert only_artifact.ran == () and only_artifact.reward == 0.0


def test_default_reward_is_the_weighted_mean_of_the_applicable_scorers(sim: Simulator) -> None:
    spec = _spec(sim, "account-lockout")
    conversation, _, _ = play(sim, spec, ScriptedPolicy())
    conversation = conversation[:5]
    result = sim.score(spec, conversation, None)
    parts = {k: sim.score(spec, conversation, _only(k)).reward for k in result.ran}
    total = sum(DEFAULT_WEIGHTS[k] for k in parts)
    expected = sum(DEFAULT_WEIGHTS[k] * v for k, v in parts.items()) / total
    assert result.gate_passed is True
    assert result.reward == pytest.approx(expected)


def test_scores_use_the_scenario_dimension_names(sim: Simulator) -> None:
    for spec in sim.scenarios():
        _, _, result = play(sim, spec, ScriptedPolicy())
        assert set(result.scores) == set(spec.compiled.file.dimensions)
        for value in result.scores.values():
            score = value["score"] if isinstance(value, dict) else value
            assert isinstance(score, float) and 0.0 <= score <= 1.0
        for entry in result.score_breakdown.values():
            assert set(entry) == {"reasoning", "strengths", "improvements"}


def test_scoring_is_pure_and_reward_stays_in_range(sim: Simulator) -> None:
    rng = random.Random(3)
    snippets = [
        "I'm sorry to hear that.",
        "What is your claim number?",
        "Did you watch the football?",
        "You should sue them.",
        "To summarise: claim CLM-48213 and the 3rd of March.",
        "Have a good day.",
        "",
    ]
    for spec in sim.scenarios():
        fresh = Simulator()
        for _ in range(15):
            messages = [user(fresh.start(spec, 0).opening)]
            for _ in range(rng.randint(1, 6)):
                calls = []
                if spec.tools and rng.random() < 0.3:
                    tool = rng.choice(spec.tools)
                    payload = {"value": rng.choice(tool.options)} if tool.options else {"x": 1}
                    calls.append({"name": tool.id, "input": payload})
                messages.append(agent(rng.choice(snippets), *calls))
                messages.append(user(rng.choice(snippets)))
            first = sim.score(spec, messages, None)
            again = fresh.score(spec, [m.model_copy() for m in messages], None)
            assert first == again
            assert 0.0 <= first.reward <= 1.0


def test_incremental_analysis_of_long_episodes_matches_a_fresh_walk(sim: Simulator) -> None:
    spec = _spec(sim, "storm-roof-decision")
    questions = [
        "What is your policy number?",
        "I'm sorry about this. When did the storm happen?",
        "Could you tell me more about the weather?",
        "I understand. When did your roof cover start?",
        "What evidence do you have?",
        "Is there anything else?",
    ]
    session = sim.start(spec, 4)
    messages = [user(session.opening)]
    seen = []
    for turn in range(24):  # long enough for the per-turn prefix reuse to kick in
        messages.append(agent(questions[turn % len(questions)] + f" ({turn})"))
        reply = session.reply(messages)
        seen.append((list(messages), sim.score(spec, messages, None)))
        messages.append(user(reply.content))
    fresh = Simulator()
    for snapshot, incremental in reversed(seen):  # longest first: no prefix is ever cached
        assert fresh.score(spec, snapshot, None) == incremental
