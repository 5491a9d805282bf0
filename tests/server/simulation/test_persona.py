"""The persona: deterministic replies, fact reveal conditions, push-back and episode endings."""

from __future__ import annotations

from typing import Any

import pytest

from labs_env.models import Message
from labs_env.server.simulation import PersonaSession, ScenarioSpec, Simulator
from tests.kit.simulation import agent, user


def _spec(sim: Simulator, collection: str, slug: str) -> ScenarioSpec:
    spec = sim.scenario(collection, slug)
    assert spec is not None
    return spec


@pytest.fixture(scope="module")
def claim(sim: Simulator) -> ScenarioSpec:
    return _spec(sim, "insurance-claims", "delayed-claim-call")


@pytest.fixture(scope="module")
def roof(sim: Simulator) -> ScenarioSpec:
    return _spec(sim, "insurance-claims", "storm-roof-decision")


class Chat:
    """A conversation with one persona session."""

    def __init__(self, sim: Simulator, spec: ScenarioSpec, seed: int = 0) -> None:
        self.session: PersonaSession = sim.start(spec, seed)
        self.messages: list[Message] = [user(self.session.opening)]

    def say(self, text: str, *calls: dict[str, Any]) -> Any:
        self.messages.append(agent(text, *calls))
        reply = self.session.reply(self.messages)
        self.messages.append(user(reply.content))
        return reply


def test_replies_are_deterministic_given_seed_and_conversation(
    sim: Simulator, claim: ScenarioSpec
) -> None:
    texts = ["Hello, what is your claim number?", "When did it happen?", "Anything else?"]
    runs = []
    for _ in range(2):
        chat = Chat(Simulator(), claim, seed=7)
        runs.append([chat.session.opening, *(chat.say(t).content for t in texts)])
    assert runs[0] == runs[1]
    openings = {sim.start(claim, seed).opening for seed in range(20)}
    assert len(openings) > 1  # the seed varies the wording


def test_asked_fact_is_revealed_only_when_its_trigger_is_used(
    sim: Simulator, claim: ScenarioSpec
) -> None:
    chat = Chat(sim, claim)
    assert "CLM-48213" not in chat.say("Hello, how can I help you today?").content
    assert "CLM-48213" in chat.say("What is your claim number?").content
    assert "3rd of March" in chat.say("And when did the damage happen?").content


def test_volunteered_fact_arrives_at_its_turn(sim: Simulator, claim: ScenarioSpec) -> None:
    chat = Chat(sim, claim)
    first = chat.say("What is your claim number?")
    second = chat.say("When did it happen?")
    assert "adjuster" not in first.content + second.content
    assert "adjuster" in chat.say("What documents have you sent?").content  # turn 3


def test_rapport_fact_needs_empathy_first(sim: Simulator, roof: ScenarioSpec) -> None:
    cold = Chat(sim, roof)
    cold.say("What is your policy number?")
    hedge = cold.say("When did your roof cover start?").content
    assert "20th of May" not in hedge and "matter" in hedge
    assert "20th of May" not in cold.say("When did your cover start?").content
    warm = Chat(sim, roof)
    warm.say("I'm sorry to hear about the storm, that sounds stressful.")
    assert "20th of May" in warm.say("I understand. When did your roof cover start?").content


def test_pushes_back_on_off_topic_and_harmful_turns(sim: Simulator, claim: ScenarioSpec) -> None:
    chat = Chat(sim, claim)
    off = chat.say("Did you watch the football match last night?")
    assert "claim" not in off.content.lower() or "problem" in off.content.lower()
    assert not off.episode_complete
    assert off.content in _lines(sim, claim, "pushback_off_topic")
    harmful = chat.say("Honestly you should sue them and get a lawyer.")
    assert harmful.content in _lines(sim, claim, "pushback_harmful")
    assert "CLM-48213" not in harmful.content


def _lines(sim: Simulator, spec: ScenarioSpec, kind: str) -> tuple[str, ...]:
    from labs_env.server.simulation.persona import DEFAULT_LINES

    custom: list[str] = getattr(spec.compiled.file.persona, kind)
    return tuple(custom) or DEFAULT_LINES[kind]


def test_closing_phrase_completes_a_no_tool_scenario(sim: Simulator, claim: ScenarioSpec) -> None:
    chat = Chat(sim, claim)
    assert not chat.say("What is your claim number?").episode_complete
    done = chat.say("Thank you, we will follow up. Have a good day.")
    assert (done.episode_complete, done.terminal_reason) == (True, "completed")


def test_decision_completes_and_gets_its_reaction(sim: Simulator, roof: ScenarioSpec) -> None:
    chat = Chat(sim, roof)
    reply = chat.say("Decision recorded.", {"name": "claim_status", "input": {"value": "deny"}})
    assert (reply.episode_complete, reply.terminal_reason) == (True, "completed")
    assert reply.content == roof.compiled.file.persona.decision_reactions["deny"]


def test_artifact_completes_when_the_scenario_says_so(sim: Simulator) -> None:
    spec = _spec(sim, "it-helpdesk", "laptop-crash-ticket")
    reference = spec.compiled.file.reference_artifact
    assert reference is not None
    chat = Chat(sim, spec)
    reply = chat.say("Ticket filed.", {"name": "incident_ticket", "input": reference.value})
    assert (reply.episode_complete, reply.terminal_reason) == (True, "completed")
    both = _spec(sim, "it-helpdesk", "portal-outage-triage")  # completes on the decision only
    report = both.compiled.file.reference_artifact
    assert report is not None
    chat = Chat(sim, both)
    assert not chat.say(
        "Report filed.", {"name": "incident_report", "input": report.value}
    ).episode_complete
    done = chat.say("Priority set.", {"name": "incident_priority", "input": {"value": "P2_high"}})
    assert done.terminal_reason == "completed"


@pytest.mark.parametrize(
    "call",
    [
        {"name": "no_such_tool", "input": {"value": "deny"}},
        {"name": "claim_status", "input": {"value": "maybe"}},
        {"name": "claim_status", "input": {"value": "deny", "extra": 1}},
        {"type": "artifact", "name": "claim_status", "input": {"value": "deny"}},
    ],
)
def test_invalid_tool_call_ends_with_error_where_the_scenario_says(
    sim: Simulator, roof: ScenarioSpec, call: dict[str, Any]
) -> None:
    assert roof.compiled.file.invalid_tool_call == "error"
    call = {"type": "decision", **call}
    reply = Chat(sim, roof).say("Here you go.", call)
    assert (reply.episode_complete, reply.terminal_reason) == (True, "error")


def test_invalid_artifact_is_penalised_where_the_scenario_says(sim: Simulator) -> None:
    spec = _spec(sim, "insurance-claims", "car-theft-claim")
    assert spec.compiled.file.invalid_tool_call == "penalize"
    chat = Chat(sim, spec)
    chat.say("What is your policy number?")
    before = sim.score(spec, chat.messages, None)
    bad = {"type": "artifact", "name": "claim_summary", "input": {"policy_number": "12"}}
    reply = chat.say("Summary filed.", bad)
    assert not reply.episode_complete  # the episode goes on...
    after = sim.score(spec, chat.messages, None)
    failure = after.scores["D3_Safety"]
    assert isinstance(failure, float) and failure < before.scores["D3_Safety"]  # ...penalised
    assert after.reward < before.reward


def test_system_messages_are_ignored(sim: Simulator, claim: ScenarioSpec) -> None:
    session = sim.start(claim, 0)
    plain = [user(session.opening), agent("What is your claim number?")]
    with_system = [Message(role="system", content="You are an agent."), *plain]
    assert session.reply(plain) == session.reply(with_system)


def test_asking_again_repeats_the_answer(sim: Simulator, claim: ScenarioSpec) -> None:
    chat = Chat(sim, claim)
    chat.say("What is your claim number?")
    again = chat.say("Sorry, what was the claim number again?").content
    assert again.startswith("As I said") and "CLM-48213" in again


def test_artifact_failing_its_schema_ends_with_error_where_the_scenario_says(
    sim: Simulator,
) -> None:
    spec = _spec(sim, "it-helpdesk", "laptop-crash-ticket")
    reference = spec.compiled.file.reference_artifact
    assert reference is not None and spec.compiled.file.invalid_tool_call == "error"
    broken = dict(reference.value, error_code="blue screen")  # fails the pattern
    reply = Chat(sim, spec).say("Ticket filed.", {"name": "incident_ticket", "input": broken})
    assert (reply.episode_complete, reply.terminal_reason) == (True, "error")
