"""LabsEnv against the in-process local server."""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env

from labs_env import LabsClient, LabsEnv, LabsValidationError, TurnMismatchError
from labs_env.connect import make_local_async_client, make_local_client
from labs_env.errors import (
    APIConnectionError,
    BadRequestError,
    EpisodeCompleteError,
    NotFoundError,
)
from labs_env.server import LabsServer
from labs_env.testing import instant_retries
from tests.kit.scenarios import COLLECTION, DECIDE, DECISION, TALK
from tests.kit.transports import counting_client

QUESTION = "Thanks for calling. Could you tell me your policy number and what happened?"


@pytest.fixture
def env(local_client: LabsClient) -> Iterator[LabsEnv]:
    with LabsEnv(COLLECTION, DECIDE, client=local_client) as env:
        yield env


def test_check_env_passes_on_the_env_and_via_gym_make(local_client: LabsClient) -> None:
    with LabsEnv(COLLECTION, DECIDE, client=local_client) as env:
        check_env(env)
    made = gym.make("labs_env:Labs-v0", collection=COLLECTION, scenario=DECIDE)
    check_env(made.unwrapped)
    made.close()
    shared = gym.make(
        "labs_env:Labs-v0", collection=COLLECTION, scenario=DECIDE, client=local_client
    )
    check_env(shared.unwrapped)  # remade from the spec: the client is shared, not copied
    assert shared.spec is not None
    assert shared.spec.make().unwrapped.client is local_client  # type: ignore[attr-defined]
    shared.close()


def test_reset_info_and_observation(env: LabsEnv) -> None:
    obs, info = env.reset(seed=1)
    assert obs in env.observation_space
    assert len(obs) == 1 and obs[0]["role"] == "user" and obs[0]["content"]
    assert info["episode_id"].startswith("ep_") and info["turn"] == 0
    assert (info["collection"], info["scenario"]) == (COLLECTION, DECIDE)
    assert [t["id"] for t in info["tools"]] == ["claim_status"]
    assert isinstance(info["seed"], int)
    assert info["reward_config"] is None
    assert info["request_id"].startswith("req_")


def test_step_info_fields_and_types(env: LabsEnv) -> None:
    env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(QUESTION)
    assert isinstance(reward, float) and 0.0 <= reward <= 1.0
    assert (terminated, truncated) == (False, False)
    assert [m["role"] for m in obs] == ["user", "assistant", "user"]
    assert obs[1]["content"] == QUESTION
    assert info["turn"] == 1 and info["episode_id"] == env.episode.episode_id  # type: ignore[union-attr]
    assert info["scores"] and all(isinstance(v, float) for v in info["scores"].values())
    assert any("." in key for key in info["scores"])  # nested dimensions flattened
    assert isinstance(info["score_breakdown"], dict)  # the demo key has full access
    assert info["request_id"].startswith("req_")
    assert info["scenario"] == DECIDE and "terminal_reason" not in info
    assert "tools" not in info


def test_decision_completes_and_tool_call_type_is_filled(env: LabsEnv) -> None:
    env.reset(seed=2)
    obs, _, terminated, truncated, info = env.step(DECISION)
    assert (terminated, truncated, info["terminal_reason"]) == (True, False, "completed")
    assert obs[1]["tool_calls"] == [
        {"type": "decision", "name": "claim_status", "input": {"value": "approve"}}
    ]
    with pytest.raises(ResetNeeded, match="has ended \\(completed\\)"):
        env.step(QUESTION)


def test_invalid_option_is_sent_and_ends_with_error(env: LabsEnv) -> None:
    env.reset(seed=3)
    bad = {"content": "x", "tool_calls": [{"name": "claim_status", "input": {"value": "maybe"}}]}
    _, _, terminated, truncated, info = env.step(bad)
    assert (terminated, truncated, info["terminal_reason"]) == (True, False, "error")


def test_validate_tool_calls_rejects_before_sending() -> None:
    client, transport = counting_client()
    with LabsEnv(COLLECTION, DECIDE, client=client, validate_tool_calls=True) as env:
        env.reset(seed=3)
        sent = len(transport.requests)
        bad = {"content": "x", "tool_calls": [{"name": "claim_status", "input": {"value": "?"}}]}
        with pytest.raises(LabsValidationError, match="one of"):
            env.step(bad)
        with pytest.raises(LabsValidationError, match="unknown tool id"):
            env.step({"content": "x", "tool_calls": [{"name": "nope", "input": {}}]})
        assert len(transport.requests) == sent
        _, _, terminated, _, _ = env.step(DECISION)  # the episode goes on
        assert terminated


def test_max_turns_is_truncation(local_client: LabsClient) -> None:
    with LabsEnv(COLLECTION, TALK, client=local_client) as env:
        env.reset(seed=4)
        flags = []
        for _ in range(50):
            _, _, terminated, truncated, info = env.step(QUESTION)
            flags.append((terminated, truncated))
            if terminated or truncated:
                break
        assert flags[-1] == (False, True) and info["terminal_reason"] == "max_turns_reached"
        assert all(f == (False, False) for f in flags[:-1])


def test_step_before_reset_raises_reset_needed(local_client: LabsClient) -> None:
    with LabsEnv(COLLECTION, DECIDE, client=local_client) as env, pytest.raises(ResetNeeded):
        env.step(QUESTION)


def test_seeded_env_is_reproducible_against_the_local_server() -> None:
    def play(seed: int) -> list[object]:
        with LabsEnv(
            COLLECTION, [TALK, DECIDE], client=make_local_client(server=LabsServer())
        ) as env:
            out: list[object] = []
            for episode in range(3):
                obs, info = env.reset(seed=seed) if episode == 0 else env.reset()
                out += [info["scenario"], info["seed"], obs]
                for _ in range(2):
                    obs, reward, _, _, info = env.step(QUESTION)
                    out += [obs, reward, info["scores"]]
            return out

    assert play(7) == play(7)
    assert play(7) != play(8)


def test_scenario_list_and_all_scenarios_are_drawn_with_the_env_rng(
    local_client: LabsClient,
) -> None:
    collections = local_client.catalog().collections
    every = {s.slug for c in collections if c.slug == COLLECTION for s in c.scenarios}
    assert {TALK, DECIDE} <= every
    with LabsEnv(COLLECTION, None, client=local_client) as env:
        env.reset(seed=0)
        seen = {env.reset()[1]["scenario"] for _ in range(30)}
        assert seen == every
    with LabsEnv(COLLECTION, "*", client=local_client) as env:
        assert env.reset(seed=0)[1]["scenario"] in every
    with LabsEnv(COLLECTION, [TALK, DECIDE], client=local_client) as env:
        env.reset(seed=0)
        assert {env.reset()[1]["scenario"] for _ in range(20)} == {TALK, DECIDE}
    with LabsEnv(None, DECIDE, client=local_client) as env:  # only with a one-collection catalog
        if len(collections) == 1:
            assert env.reset()[1]["collection"] == COLLECTION
        else:
            with pytest.raises(LabsValidationError, match="pass collection="):
                env.reset()


def test_reset_options_override_one_episode(env: LabsEnv) -> None:
    config = {"quality_weights": {"discovery": 1.0}, "skip_safety_gate": True}
    _, info = env.reset(options={"scenario": TALK, "reward_config": config, "config": {"seed": 5}})
    assert (info["scenario"], info["seed"]) == (TALK, 5)
    assert info["reward_config"] == config
    _, _, _, _, step_info = env.step(QUESTION)
    assert step_info["reward_config"] == config
    assert set(step_info["scores"]) >= {"discovery"} or step_info["scores"]
    _, info = env.reset()
    assert (info["scenario"], info["reward_config"]) == (DECIDE, None)
    with pytest.raises(LabsValidationError, match="unknown key"):
        env.reset(options={"senario": TALK})
    with pytest.raises(LabsValidationError, match="unknown quality_weights"):
        env.reset(options={"reward_config": {"quality_weights": {"speed": 1.0}}})


def test_reward_config_can_change_between_turns(env: LabsEnv) -> None:
    env.reset(seed=0)
    assert env.step(QUESTION)[4]["reward_config"] is None
    env.reward_config = {"quality_weights": {"rubrics": 1.0}}
    info = env.step(QUESTION)[4]
    assert info["reward_config"]["quality_weights"] == {"rubrics": 1.0}
    with pytest.raises(LabsValidationError):
        env.reward_config = {"quality_weights": {"rubrics": -1.0}}


def test_render_ansi_transcript(local_client: LabsClient) -> None:
    with LabsEnv(COLLECTION, DECIDE, client=local_client, render_mode="ansi") as env:
        assert env.render() == ""
        env.reset(seed=0)
        env.step(QUESTION)
        text = env.render()
        assert text is not None
        assert QUESTION in text and "[turn 1] reward=" in text and "persona:" in text
    with LabsEnv(COLLECTION, DECIDE, client=local_client) as env:
        env.reset(seed=0)
        assert env.render() is None
    with pytest.raises(LabsValidationError):
        LabsEnv(COLLECTION, DECIDE, client=local_client, render_mode="human")


def test_close_terminates_the_open_episode_and_is_idempotent() -> None:
    client, transport = counting_client()
    env = LabsEnv(COLLECTION, DECIDE, client=client)
    env.reset(seed=0)
    episode_id = env.episode.episode_id  # type: ignore[union-attr]
    env.step(QUESTION)
    env.close()
    env.close()
    assert transport.paths()[-1] == f"/api/v1/episodes/{episode_id}/terminate"
    assert not client.closed  # a client passed in stays open
    with pytest.raises(EpisodeCompleteError):
        client.submit_turn(episode_id, [{"role": "user", "content": "hi"}])
    with pytest.raises(gym.error.ClosedEnvironmentError):
        env.reset()


def test_close_releases_a_client_the_env_made() -> None:
    env = LabsEnv(COLLECTION, DECIDE)
    env.close()
    assert env.client.closed


def test_reset_mid_episode_terminates_the_previous_one() -> None:
    client, transport = counting_client()
    with LabsEnv(COLLECTION, DECIDE, client=client) as env:
        env.reset(seed=0)
        first = env.episode.episode_id  # type: ignore[union-attr]
        env.reset()
        assert f"/api/v1/episodes/{first}/terminate" in transport.paths()


def test_lost_response_resent_with_the_idempotency_key_is_transparent(
    lost_first_turn_server: LabsServer,
) -> None:
    client = make_local_client(server=lost_first_turn_server, retry_unsafe_turns=True)
    with instant_retries(), LabsEnv(COLLECTION, DECIDE, client=client) as env:
        env.reset(seed=0)
        _, _, _, _, info = env.step(QUESTION)
        assert info["turn"] == 1
        assert env.step(QUESTION)[4]["turn"] == 2


def test_duplicate_turn_after_a_lost_response_is_detected(
    lost_first_turn_server: LabsServer,
) -> None:
    # The service commits the first turn and the response is lost; the client resends it.
    # This service ignores Idempotency-Key and appends what it is sent, so it records the
    # resend as a second turn: the env must notice instead of forking the trajectory.
    client, _ = counting_client(
        lost_first_turn_server, appending_service=True, retry_unsafe_turns=True
    )
    with instant_retries(), LabsEnv(COLLECTION, DECIDE, client=client) as env:
        env.reset(seed=0)
        with pytest.raises(TurnMismatchError, match="reports turn 2"):
            env.step(QUESTION)
        with pytest.raises(ResetNeeded):
            env.step(QUESTION)
        env.reset()  # recovers with a fresh episode
        assert env.step(QUESTION)[4]["turn"] == 1


def test_user_retry_after_a_lost_response_is_detected(lost_first_turn_server: LabsServer) -> None:
    # Without client retries the step fails; stepping again resubmits a committed turn.
    client, _ = counting_client(lost_first_turn_server, appending_service=True, max_retries=0)
    with LabsEnv(COLLECTION, DECIDE, client=client) as env:
        env.reset(seed=0)
        with pytest.raises(APIConnectionError):
            env.step(QUESTION)
        with pytest.raises(TurnMismatchError):
            env.step(QUESTION)


def test_local_server_rejects_a_resent_full_history(lost_first_turn_server: LabsServer) -> None:
    # The local server compares the full history: the duplicate is refused, nothing forks.
    client = make_local_client(server=lost_first_turn_server, max_retries=0)
    with LabsEnv(COLLECTION, DECIDE, client=client) as env:
        env.reset(seed=0)
        with pytest.raises(APIConnectionError):
            env.step(QUESTION)
        with pytest.raises(BadRequestError, match="departs"):
            env.step(QUESTION)


def test_constructor_validation(local_client: LabsClient) -> None:
    with pytest.raises(LabsValidationError):
        LabsEnv(COLLECTION, [], client=local_client)
    with pytest.raises(LabsValidationError):
        LabsEnv(COLLECTION, "", client=local_client)
    with pytest.raises(LabsValidationError):
        LabsEnv(COLLECTION, DECIDE, client=local_client, api_key="lab_0123456789abcdef")
    with pytest.raises(LabsValidationError):
        LabsEnv(COLLECTION, DECIDE, client=local_client, reward_config={"quality_weights": {}})
    with pytest.raises(LabsValidationError, match="AsyncLabsClient"):
        LabsEnv(COLLECTION, DECIDE, client=make_local_async_client())  # type: ignore[arg-type]


def test_api_key_never_appears_in_the_spec_or_repr() -> None:
    secret = "lab_supersecretvalue1234"
    env = LabsEnv(COLLECTION, DECIDE, api_key=secret, base_url="https://labs.example")
    made = gym.make(
        "labs_env:Labs-v0", collection=COLLECTION, api_key=secret, base_url="https://labs.example"
    )
    try:
        for spec in (env.spec, made.unwrapped.spec, made.spec):
            assert spec is not None
            assert secret not in repr(spec) and secret not in str(
                spec.pprint(disable_print=True, print_all=True)
            )
        assert secret not in repr(env) and secret not in repr(env.client)
    finally:
        env.close()
        made.close()


def test_unknown_scenario_is_reported_by_the_service(local_client: LabsClient) -> None:
    with LabsEnv(COLLECTION, "no-such-scenario", client=local_client) as env:
        with pytest.raises(NotFoundError) as caught:
            env.reset()
        assert type(caught.value) is NotFoundError  # not EpisodeNotFoundError: no episode yet
        assert "404" in str(caught.value) or "not found" in str(caught.value).lower()


def test_context_for_policies(env: LabsEnv) -> None:
    with pytest.raises(ResetNeeded):
        _ = env.context
    _, info = env.reset(seed=0)
    context = env.context
    entry = env.client.catalog().scenario(COLLECTION, DECIDE)
    assert entry is not None
    assert (context.collection, context.scenario, context.episode_id) == (
        COLLECTION,
        DECIDE,
        info["episode_id"],
    )
    assert (context.description, context.max_turns) == (entry.description, entry.max_turns)
    assert [t.id for t in context.tools] == ["claim_status"] and context.seed == info["seed"]
    env.step(QUESTION)
    assert env.context.turn == 1
