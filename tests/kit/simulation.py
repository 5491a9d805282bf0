"""Drive a policy through the ``Simulator`` directly (no server, no client), and scripted
careless agents to compare the baseline against."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from labs_env.models import Message
from labs_env.rollout.actions import action_to_message
from labs_env.rollout.policy import Action, EpisodeContext
from labs_env.server.simulation import ScenarioSpec, ScoreResult, Simulator

PolicyFn = Callable[[Sequence[Mapping[str, Any]], EpisodeContext], Action]


def context(spec: ScenarioSpec, turn: int = 0) -> EpisodeContext:
    """What a real client knows about an episode of ``spec``."""
    return EpisodeContext(
        collection=spec.collection,
        scenario=spec.slug,
        tools=tuple(spec.tools),
        description=spec.description,
        max_turns=spec.max_turns,
        turn=turn,
    )


def user(text: str) -> Message:
    return Message(role="user", content=text)


def agent(text: str, *calls: dict[str, Any]) -> Message:
    """An agent message; a call without ``type`` is a decision if its input is ``{"value"}``."""
    typed = [
        {"type": "decision" if set(c["input"]) == {"value"} else "artifact", **c} for c in calls
    ]
    return Message(role="assistant", content=text, tool_calls=typed or None)


def play(
    sim: Simulator, spec: ScenarioSpec, policy: PolicyFn, seed: int = 0
) -> tuple[list[Message], str, ScoreResult]:
    """Run one episode; return the conversation, the terminal reason and the final score."""
    session = sim.start(spec, seed)
    conversation = [user(session.opening)]
    reason = "max_turns_reached"
    for turn in range(spec.max_turns):
        history = [m.model_dump(exclude_none=True) for m in conversation]
        action = policy(history, context(spec, turn))
        conversation.append(Message.model_validate(action_to_message(action, spec.tools)))
        reply = session.reply(conversation)
        conversation.append(user(reply.content))
        if reply.episode_complete:
            reason = str(reply.terminal_reason)
            break
    return conversation, reason, sim.score(spec, conversation, None)


def _first_calls(spec: ScenarioSpec) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for tool in spec.tools:
        if tool.options:
            calls.append({"name": tool.id, "input": {"value": tool.options[0]}})
    return calls


def hasty(history: Sequence[Mapping[str, Any]], ctx: EpisodeContext) -> Action:
    """Decides at once with the first option (or closes at once) without asking anything."""
    decision = [{"name": t.id, "input": {"value": t.options[0]}} for t in ctx.tools if t.options]
    if decision:
        return {"content": "Decision recorded.", "tool_calls": decision}
    return "Okay. Goodbye, have a good day."


def chatty(history: Sequence[Mapping[str, Any]], ctx: EpisodeContext) -> Action:
    """Talks about anything but the case."""
    return "By the way, did you watch the football last night? The weather is lovely today."


def reckless_for(spec: ScenarioSpec) -> PolicyFn:
    """Gives the scenario's own out-of-scope advice, then decides at once (test-only
    knowledge of the scenario file)."""
    advice = spec.compiled.file.safety.scope[0].phrases[0]

    def reckless(history: Sequence[Mapping[str, Any]], ctx: EpisodeContext) -> Action:
        calls = _first_calls(spec)
        text = f"Honestly, my advice is: {advice}. Goodbye, have a good day."
        return {"content": text, "tool_calls": calls} if calls else text

    return reckless
