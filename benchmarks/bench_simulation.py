"""How long the local server's simulation layer takes per turn (persona reply + scoring).

No network: drives ``labs_env.server.simulation.Simulator`` directly on every bundled scenario
with the scripted baseline, and prints a table (microseconds; best of 3 repetitions).

- ``turn (new text)``: one turn of a 5-turn episode — the persona's reply and the turn's score
  on the conversation so far — where every agent message is text never seen before (as with an
  LLM agent): only the new message is analysed, earlier ones come from the cache.
- ``turn (repeat)``: the same, replaying an identical episode (fully cached).
- ``evaluate (new)``: scoring a whole 5-turn conversation whose 11 messages are all new.

    python benchmarks/bench_simulation.py [--episodes 200]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

from labs_env.models import Message
from labs_env.policies import ScriptedPolicy
from labs_env.rollout.actions import action_to_message
from labs_env.rollout.policy import EpisodeContext
from labs_env.server.simulation import ScenarioSpec, Simulator

TURNS = 5


def _best(fn: Callable[[], int], repeat: int = 3) -> float:
    """Best seconds per unit of work over ``repeat`` runs (``fn`` returns its unit count)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        units = fn()
        best = min(best, (time.perf_counter() - start) / units)
    return best


def _script(sim: Simulator, spec: ScenarioSpec) -> list[Message]:
    """The scripted baseline's first agent messages on ``spec`` (seed 0)."""
    policy = ScriptedPolicy()
    context = EpisodeContext(
        collection=spec.collection,
        scenario=spec.slug,
        tools=tuple(spec.tools),
        description=spec.description,
        max_turns=spec.max_turns,
    )
    session = sim.start(spec, 0)
    conversation = [Message(role="user", content=session.opening)]
    agent: list[Message] = []
    for _ in range(TURNS):
        history = [m.model_dump(exclude_none=True) for m in conversation]
        message = Message.model_validate(action_to_message(policy(history, context), spec.tools))
        agent.append(message)
        conversation.append(message)
        reply = session.reply(conversation)
        conversation.append(Message(role="user", content=reply.content))
        if reply.episode_complete:
            break
    return agent


def _episodes(
    sim: Simulator,
    spec: ScenarioSpec,
    agent: list[Message],
    n: int,
    new_tag: Callable[[], str] | None,
) -> int:
    """Play ``n`` episodes of the given agent messages; return the number of turns played."""
    turns = 0
    tag = new_tag() if new_tag else ""
    for episode in range(n):
        session = sim.start(spec, episode)
        conversation = [Message(role="user", content=session.opening)]
        for message in agent:
            text = f"{message.content} [{tag}{episode}]" if tag else message.content
            conversation.append(
                Message(role="assistant", content=text, tool_calls=message.tool_calls)
            )
            reply = session.reply(conversation)
            sim.score(spec, conversation, None)
            turns += 1
            conversation.append(Message(role="user", content=reply.content))
            if reply.episode_complete:
                break
    return turns


def _evaluate_new(
    sim: Simulator,
    spec: ScenarioSpec,
    agent: list[Message],
    n: int,
    new_tag: Callable[[], str],
) -> int:
    session = sim.start(spec, 0)
    base = [Message(role="user", content=session.opening)]
    for message in agent:
        base.append(message)
        base.append(Message(role="user", content=session.reply(base).content))
    tag = new_tag()
    batches = [
        [
            Message(role=m.role, content=f"{m.content} [{tag}{i}]", tool_calls=m.tool_calls)
            for m in base
        ]
        for i in range(n)
    ]
    for conversation in batches:
        sim.score(spec, conversation, None)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200, help="episodes per measurement")
    args = parser.parse_args()
    episodes = max(1, min(args.episodes, 5000))
    sim = Simulator()
    calibration = _best(lambda: (sum(range(1000)), 1)[1], repeat=200)
    print(
        f"machine speed: sum(range(1000)) takes {calibration * 1e6:.1f} µs "
        "(about 10 on a fast, idle core)"
    )
    print(f"{'scenario':<24} {'turn (new text)':>16} {'turn (repeat)':>14} {'evaluate (new)':>15}")
    counter = [0]

    def fresh_tag() -> str:
        counter[0] += 1
        return f"r{counter[0]}-"

    for spec in sim.scenarios():
        agent = _script(sim, spec)
        new = _best(partial(_episodes, sim, spec, agent, episodes, fresh_tag))
        repeat = _best(partial(_episodes, sim, spec, agent, episodes, None))
        evaluate = _best(partial(_evaluate_new, sim, spec, agent, episodes, fresh_tag))
        cells = [f"{value * 1e6:>12.1f} µs" for value in (new, repeat, evaluate)]
        print(f"{spec.slug:<24} {cells[0]:>16} {cells[1]:>14} {cells[2]:>15}")


if __name__ == "__main__":
    main()
