"""LabsEnv overhead on the embedded local server: env.step vs the raw client call.

Prints a table of per-turn wall time (median of repetitions) for
- ``client.submit_turn`` with a hand-built full history (what the env must do anyway), and
- ``env.step`` (validation, history, observation copies, info, scores flattening),
over whole episodes of a fixed script. Bounded: a few hundred turns, in process, no sockets.
Then the client-side bookkeeping alone, with no server: ``Episode.build_turn`` + ``apply``
per turn over 20-turn episodes with canned answers (what every env-step of ``LabsVectorEnv``
and every turn of ``collect`` pays on top of the HTTP exchange).

    python benchmarks/bench_env.py
"""

from __future__ import annotations

import statistics
import time
import timeit

from labs_env import LabsEnv
from labs_env.connect import make_local_client
from labs_env.models import EpisodeCreated, Observation, TurnResult
from labs_env.rollout.episode import Episode
from labs_env.server import LabsServer

COLLECTION, SCENARIO = "insurance-claims", "delayed-claim-call"
QUESTIONS = ["Could you tell me your claim number?", "When did it happen?"] * 4
REPETITIONS, EPISODES = 5, 10


def raw_client_turns() -> float:
    client = make_local_client(server=LabsServer())
    turns, started = 0, time.perf_counter()
    for episode in range(EPISODES):
        created = client.create_episode(
            COLLECTION, SCENARIO, score_turns=True, config={"seed": episode}
        )
        history = [{"role": "user", "content": created.initial_observation.content}]
        for question in QUESTIONS:
            history.append({"role": "assistant", "content": question})
            result = client.submit_turn(created.episode_id, history)
            history.append({"role": "user", "content": result.observation.content})
            turns += 1
            if result.episode_complete:
                break
    client.close()
    return (time.perf_counter() - started) / turns


def env_turns() -> float:
    env = LabsEnv(COLLECTION, SCENARIO, client=make_local_client(server=LabsServer()))
    turns, started = 0, time.perf_counter()
    for episode in range(EPISODES):
        env.reset(seed=episode)
        for question in QUESTIONS:
            _, _, terminated, truncated, _ = env.step(question)
            turns += 1
            if terminated or truncated:
                break
    env.close()
    return (time.perf_counter() - started) / turns


def bookkeeping_per_turn() -> float:
    """``build_turn`` + ``apply`` per turn, best of 7 repetitions (seconds)."""
    created = EpisodeCreated.model_validate(
        {"episode_id": "ep_1", "initial_observation": {"content": "My claim is late. " * 5}}
    )
    scores = {"D1_InformationGathering": 0.8, "rubrics": {"score": 0.7, "criteria": {"a": 0.8}}}
    results = [
        TurnResult(
            turn=turn,
            observation=Observation(role="assistant", content="Thanks for checking in. " * 4),
            reward=0.5,
            episode_complete=False,
            scores=scores,
        )
        for turn in range(1, 21)
    ]

    def episode() -> None:
        state = Episode(collection=COLLECTION, scenario=SCENARIO, created=created)
        for result in results:
            state.build_turn(QUESTIONS[0])
            state.apply(result)

    return min(timeit.repeat(episode, number=300, repeat=7)) / 300 / len(results)


def main() -> None:
    rows = []
    for name, fn in (("client.submit_turn", raw_client_turns), ("LabsEnv.step", env_turns)):
        fn()  # warm up
        rows.append((name, statistics.median(fn() for _ in range(REPETITIONS))))
    base = rows[0][1]
    print(f"{'path':22s} {'ms per turn':>12s} {'ratio':>7s}")
    for name, seconds in rows:
        print(f"{name:22s} {seconds * 1000:12.3f} {seconds / base:7.2f}")
    print(
        f"\nEpisode.build_turn + apply, no server: {bookkeeping_per_turn() * 1e6:.1f} µs per turn"
    )


if __name__ == "__main__":
    main()
