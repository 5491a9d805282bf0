"""Episodes on the local server: turns, history forms, limits, expiry, terminate, idempotency."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from labs_env.models import MAX_MESSAGE_CHARS
from labs_env.server import Account, demo_account
from tests.kit.clock import FakeClock
from tests.kit.fake_simulator import FakeLabs, make_fake_labs
from tests.kit.wire import create, say, turn, wire_client


def _error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert message in response.json()["message"]


def _persona(content: str, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": content}


def test_turns_are_one_indexed_and_persona_labelled_assistant(http: httpx.Client) -> None:
    episode = create(http)["episode_id"]
    first = turn(http, episode, [say("one")]).json()
    second = turn(http, episode, [say("two")]).json()
    assert (first["turn"], second["turn"]) == (1, 2)
    assert first["observation"] == {"role": "assistant", "content": "reply 1"}
    assert first["episode_complete"] is False
    assert "terminal_reason" not in first
    assert first["request_id"].startswith("req_")


def _play(form: str, persona_role: str = "user", system: bool = False) -> tuple[list[Any], Any]:
    server, simulator = make_fake_labs()
    results = []
    with wire_client(server) as http:
        created = create(http, config={"seed": 1}, score_turns=True)
        episode = created["episode_id"]
        history = [_persona(created["initial_observation"]["content"], persona_role)]
        if system:
            history.insert(0, {"role": "system", "content": "You are a careful agent."})
        for text in ("first", "second", "third"):
            history.append(say(text))
            # "echo": new messages preceded by the persona's latest reply, as the service sent it
            echo = [_persona(history[-2]["content"], "assistant"), say(text)]
            body = {"full": history, "new": [say(text)], "echo": echo}[form]
            response = turn(http, episode, body)
            assert response.status_code == 200, response.text
            result = response.json()
            results.append({k: v for k, v in result.items() if k != "request_id"})
            history.append(_persona(result["observation"]["content"], persona_role))
    return results, simulator.sessions[0].seen


@pytest.mark.parametrize(
    ("persona_role", "system"), [("user", False), ("assistant", False), ("user", True)]
)
def test_full_history_and_new_messages_only_are_equivalent(persona_role: str, system: bool) -> None:
    new_only, seen_new_only = _play("new")
    full, seen_full = _play("full", persona_role, system)
    echoed, seen_echoed = _play("echo")
    assert full == new_only == echoed
    assert seen_full == seen_new_only == seen_echoed
    # The persona saw the client-form history: persona `user`, agent `assistant`.
    assert [m.role for m in seen_full[-1]] == ["user", "assistant"] * 3
    assert [r["reward"] for r in full] == [0.1, 0.2, 0.3]


def test_a_history_that_departs_from_the_stored_one_is_400(http: httpx.Client) -> None:
    created = create(http)
    episode = created["episode_id"]
    opening = _persona(created["initial_observation"]["content"])
    turn(http, episode, [opening, say("one")])
    edited = [opening, say("one, edited"), _persona("reply 1"), say("two")]
    _error(turn(http, episode, edited), 400, "messages[1] departs")
    stale = [opening, say("one")]
    _error(turn(http, episode, stale), 400, "departs")
    repeated = [opening, say("one"), _persona("reply 1")]
    _error(turn(http, episode, repeated), 400, "no new message")
    # The episode was not advanced by the rejected bodies.
    assert turn(http, episode, [say("two")]).json()["turn"] == 2


def test_max_turns_ends_the_episode_then_turns_are_refused(http: httpx.Client) -> None:
    episode = create(http, scenario="short")["episode_id"]
    assert turn(http, episode, [say("a")]).json()["episode_complete"] is False
    last = turn(http, episode, [say("b")]).json()
    _error(turn(http, episode, [say("c")]), 400, "Episode already complete")
    assert last["turn"] == 2
    assert last["episode_complete"] is True
    assert last["terminal_reason"] == "max_turns_reached"


def test_turns_are_capped_at_fifty_even_when_the_scenario_allows_more(http: httpx.Client) -> None:
    episode = create(http, scenario="long")["episode_id"]
    results = [turn(http, episode, [say(f"m{i}")]).json() for i in range(50)]
    assert [r["episode_complete"] for r in results] == [False] * 49 + [True]
    assert results[-1]["terminal_reason"] == "max_turns_reached"


@pytest.mark.parametrize(("text", "reason"), [("DONE, goodbye", "completed"), ("BROKEN", "error")])
def test_the_persona_ends_the_episode(text: str, reason: str, http: httpx.Client) -> None:
    episode = create(http)["episode_id"]
    result = turn(http, episode, [say(text)]).json()
    assert (result["episode_complete"], result["terminal_reason"]) == (True, reason)


def test_message_length_limit(http: httpx.Client) -> None:
    created = create(http)
    episode = created["episode_id"]
    opening = _persona(created["initial_observation"]["content"])
    ok = turn(http, episode, [opening, say("x" * MAX_MESSAGE_CHARS)])
    assert ok.status_code == 200
    too_long = [opening, say("x" * MAX_MESSAGE_CHARS), _persona("reply 1"), say("y" * 10_001)]
    _error(turn(http, episode, too_long), 400, "messages[3].content")
    _error(
        turn(http, episode, [say("ok"), {"role": "robot", "content": "?"}]),
        400,
        "messages[1].role",
    )


def test_turn_envelope_validation(http: httpx.Client) -> None:
    episode = create(http)["episode_id"]
    url = f"/api/v1/episodes/{episode}/turns"
    _error(http.post(url, json={"id": "ep_other", "messages": [say("x")]}), 400, "id: must equal")
    _error(http.post(url, json={"messages": [say("x")]}), 400, "id: field required")
    _error(http.post(url, json={"id": episode, "messages": []}), 400, "messages")
    _error(
        http.post(url, json={"id": episode, "messages": [say("x")], "extra": 1}),
        400,
        "extra: unknown field",
    )
    bad_config = {
        "id": episode,
        "messages": [say("x")],
        "reward_config": {"quality_weights": {"discovry": 1}},
    }
    _error(http.post(url, json=bad_config), 400, "reward_config.quality_weights")
    assert turn(http, episode, [say("x")]).json()["turn"] == 1


def test_unknown_episode_is_404(http: httpx.Client) -> None:
    _error(turn(http, "ep_nope", [say("x")]), 404, "Episode not found")
    _error(http.post("/api/v1/episodes/ep_nope/terminate"), 404, "Episode not found")


def test_episodes_belong_to_the_key_that_created_them() -> None:
    other = Account("lab_other", name="other")
    server, _ = make_fake_labs(accounts=(demo_account(), other))
    with wire_client(server) as http:
        episode = create(http)["episode_id"]
    with wire_client(server, api_key="lab_other") as http:
        _error(turn(http, episode, [say("x")]), 404, "Episode not found")


def test_score_turns_false_gives_zero_reward_and_skips_scoring(
    fake_labs: FakeLabs, http: httpx.Client
) -> None:
    episode = create(http)["episode_id"]
    result = turn(http, episode, [say("x")]).json()
    assert result["reward"] == 0.0
    assert "scores" not in result and "score_breakdown" not in result
    assert fake_labs.simulator.score_calls == []


def test_scored_turns_see_the_persona_reply_too(fake_labs: FakeLabs, http: httpx.Client) -> None:
    episode = create(http, score_turns=True)["episode_id"]
    result = turn(http, episode, [say("x")]).json()
    conversation = fake_labs.simulator.score_calls[0][0]
    assert [m.content for m in conversation][-2:] == ["x", "reply 1"]
    assert result["scores"]["D1_Fake"] == 0.1


def test_episodes_expire_after_24_hours_of_inactivity() -> None:
    clock = FakeClock()
    server, _ = make_fake_labs(clock=clock)
    with wire_client(server) as http:
        episode = create(http)["episode_id"]
        clock.advance(23 * 3600)
        assert turn(http, episode, [say("still here")]).status_code == 200
        clock.advance(23 * 3600)  # 46 h after creation, 23 h after the last turn
        assert turn(http, episode, [say("and again")]).status_code == 200
        clock.advance(24 * 3600 + 1)
        _error(turn(http, episode, [say("too late")]), 404, "Episode not found")
    assert len(server.episodes) == 0


def test_memory_is_bounded_by_max_episodes() -> None:
    server, _ = make_fake_labs(max_episodes=3)
    with wire_client(server) as http:
        ids = [create(http)["episode_id"] for _ in range(5)]
        _error(turn(http, ids[0], [say("x")]), 404, "Episode not found")
        assert turn(http, ids[-1], [say("x")]).status_code == 200
    assert len(server.episodes) == 3


def test_terminate(http: httpx.Client) -> None:
    episode = create(http)["episode_id"]
    turn(http, episode, [say("x")])
    ended = http.post(f"/api/v1/episodes/{episode}/terminate")
    assert ended.status_code == 200
    body = ended.json()
    assert body["episode_id"] == episode
    assert (body["episode_complete"], body["terminal_reason"]) == (True, "client_terminated")
    _error(turn(http, episode, [say("y")]), 400, "Episode already complete")
    # Terminating an ended episode is not an error; it reports how the episode ended.
    done = create(http, scenario="short")["episode_id"]
    turn(http, done, [say("DONE")])
    again = http.post(f"/api/v1/episodes/{done}/terminate", json={"id": done})
    assert again.json()["terminal_reason"] == "completed"
    wrong = http.post(f"/api/v1/episodes/{done}/terminate", json={"id": "ep_other"})
    _error(wrong, 400, "id: must equal")


def test_idempotent_replay_does_not_advance_the_episode(
    fake_labs: FakeLabs, http: httpx.Client
) -> None:
    episode = create(http, score_turns=True)["episode_id"]
    key = {"Idempotency-Key": "turn-1"}
    first = http.post(
        f"/api/v1/episodes/{episode}/turns",
        json={"id": episode, "messages": [say("x")]},
        headers=key,
    )
    replay = http.post(
        f"/api/v1/episodes/{episode}/turns",
        json={"id": episode, "messages": [say("x")]},
        headers=key,
    )
    assert replay.status_code == 200
    assert replay.content == first.content
    assert replay.headers["x-request-id"] == first.headers["x-request-id"]
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(fake_labs.simulator.sessions[0].seen) == 1  # the persona replied once
    assert turn(http, episode, [say("y")]).json()["turn"] == 2
    different = http.post(
        f"/api/v1/episodes/{episode}/turns",
        json={"id": episode, "messages": [say("z")]},
        headers=key,
    )
    _error(different, 400, "Idempotency-Key")
    # An error answer is replayed too (a retried request never gets a second effect).
    missing = {"Idempotency-Key": "missing-episode"}
    gone = http.post(
        "/api/v1/episodes/ep_gone/turns",
        json={"id": "ep_gone", "messages": [say("x")]},
        headers=missing,
    )
    again = http.post(
        "/api/v1/episodes/ep_gone/turns",
        json={"id": "ep_gone", "messages": [say("x")]},
        headers=missing,
    )
    assert gone.status_code == again.status_code == 404
    assert again.headers["idempotent-replayed"] == "true"


def test_idempotency_keys_are_scoped_per_api_key_and_bounded() -> None:
    other = Account("lab_other", name="other")
    server, _ = make_fake_labs(accounts=(demo_account(), other), idempotency_max_entries=2)
    body = {"collection_slug": "alpha", "scenario_slug": "long"}
    with wire_client(server) as mine, wire_client(server, api_key="lab_other") as theirs:
        created = mine.post("/api/v1/episodes", json=body, headers={"Idempotency-Key": "k"})
        other_key = theirs.post("/api/v1/episodes", json=body, headers={"Idempotency-Key": "k"})
        assert other_key.json()["episode_id"] != created.json()["episode_id"]
        for key in ("k2", "k3"):
            mine.post("/api/v1/episodes", json=body, headers={"Idempotency-Key": key})
        # "k" was evicted (at most 2 entries): the same key now creates a new episode.
        fresh = mine.post("/api/v1/episodes", json=body, headers={"Idempotency-Key": "k"})
        assert fresh.json()["episode_id"] != created.json()["episode_id"]


def test_idempotent_replay_of_the_final_turn_is_not_episode_already_complete(
    http: httpx.Client,
) -> None:
    episode = create(http, scenario="short")["episode_id"]
    turn(http, episode, [say("a")])
    key = {"Idempotency-Key": "last"}
    body = {"id": episode, "messages": [say("b")]}
    url = f"/api/v1/episodes/{episode}/turns"
    first = http.post(url, json=body, headers=key)
    replay = http.post(url, json=body, headers=key)
    assert first.json()["terminal_reason"] == "max_turns_reached"
    assert replay.status_code == 200 and replay.content == first.content
