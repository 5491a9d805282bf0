"""The local server's wire protocol: routing, envelope, auth, validation, catalog, create."""

from __future__ import annotations

import httpx
import pytest

from labs_env.server import DEMO_API_KEY, Account, LabsServer, demo_account
from tests.kit.fake_simulator import FakeLabs, make_fake_labs
from tests.kit.wire import create, say, turn, wire_client

LIMITED = Account("lab_team_b", name="team-b", collections=frozenset({"beta"}), access_level="full")


def _error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"message", "data"}
    assert message in body["message"]
    request_id = body["data"]["request_id"]
    assert request_id.startswith("req_")
    assert response.headers["x-request-id"] == request_id


def test_success_body_carries_request_id_and_rate_headers(http: httpx.Client) -> None:
    first = http.get("/api/v1/catalog")
    second = http.get("/api/v1/catalog")
    assert first.status_code == 200
    body = first.json()
    assert body["request_id"].startswith("req_")
    assert first.headers["x-request-id"] == body["request_id"]
    assert second.json()["request_id"] != body["request_id"]
    assert first.headers["x-ratelimit-limit"] == "1000000"
    assert int(second.headers["x-ratelimit-remaining"]) == 999_998
    assert int(first.headers["x-ratelimit-reset"]) % 60 == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer lab_wrong"},
        {"Authorization": DEMO_API_KEY},
        {"Authorization": "Basic x"},
    ],
)
def test_missing_or_invalid_key_is_401_without_rate_headers(
    headers: dict[str, str], fake_labs: FakeLabs
) -> None:
    with wire_client(fake_labs.server, api_key=None) as http:
        response = http.get("/api/v1/catalog", headers=headers)
    _error(response, 401, "Invalid or missing API key")
    assert "x-ratelimit-limit" not in response.headers


def test_unknown_path_404_and_wrong_method_405(http: httpx.Client) -> None:
    _error(http.get("/api/v1/nothing"), 404, "Not found")
    _error(http.get("/api/v1/episodes/ep_x/other"), 404, "Not found")
    wrong = http.get("/api/v1/episodes")
    _error(wrong, 405, "Method not allowed")
    assert wrong.headers["allow"] == "POST"
    assert http.get("/health").json()["status"] == "ok"


def test_invalid_json_and_unknown_fields_are_400_naming_the_field(http: httpx.Client) -> None:
    bad_json = http.post("/api/v1/episodes", content=b"{not json")
    _error(bad_json, 400, "not valid JSON")
    assert "x-ratelimit-limit" not in bad_json.headers
    typo = http.post("/api/v1/episodes", json={"collection_slug": "alpha", "scenario_slg": "short"})
    _error(typo, 400, "scenario_slg: unknown field")
    assert "scenario_slug: field required" in typo.json()["message"]
    _error(http.post("/api/v1/episodes", json=[1, 2]), 400, "JSON object")
    wrong_type = http.post(
        "/api/v1/episodes",
        json={"collection_slug": "alpha", "scenario_slug": "short", "score_turns": "maybe"},
    )
    _error(wrong_type, 400, "score_turns")


def test_catalog_lists_only_subscribed_collections() -> None:
    server, _ = make_fake_labs(accounts=(demo_account(), LIMITED))
    with wire_client(server) as http:
        assert [c["slug"] for c in http.get("/api/v1/catalog").json()["collections"]] == [
            "alpha",
            "beta",
        ]
    with wire_client(server, api_key="lab_team_b") as http:
        collections = http.get("/api/v1/catalog").json()["collections"]
    assert [c["slug"] for c in collections] == ["beta"]
    assert collections[0]["scenarios"][0]["max_turns"] == 5


def test_unsubscribed_collection_is_403_with_rate_headers() -> None:
    server, _ = make_fake_labs(accounts=(demo_account(), LIMITED))
    with wire_client(server, api_key="lab_team_b") as http:
        denied = http.post(
            "/api/v1/episodes", json={"collection_slug": "alpha", "scenario_slug": "short"}
        )
        _error(denied, 403, "No active subscription for collection")
        assert denied.headers["x-ratelimit-limit"] == "60"
        evaluate = http.post(
            "/api/v1/evaluate",
            json={"collection_slug": "alpha", "scenario_slug": "short", "messages": [say("hi")]},
        )
        _error(evaluate, 403, "No active subscription for collection")


def test_unknown_collection_or_scenario_is_404(http: httpx.Client) -> None:
    missing = {"collection_slug": "gamma", "scenario_slug": "short"}
    _error(http.post("/api/v1/episodes", json=missing), 404, "Collection not found")
    missing = {"collection_slug": "alpha", "scenario_slug": "nope"}
    _error(http.post("/api/v1/episodes", json=missing), 404, "Scenario not found")


def test_create_episode_shape(http: httpx.Client) -> None:
    body = create(http, config={"seed": 7, "unknown_option": True})
    short = create(http, scenario="short")
    assert body["episode_id"].startswith("ep_")
    assert body["episode_id"] != short["episode_id"]
    assert body["initial_observation"] == {
        "role": "assistant",
        "content": "Hello from long (seed 7)",
    }
    assert body["tools"] == [
        {
            "id": "verdict",
            "type": "decision",
            "name": "Verdict",
            "mode": "options",
            "options": ["yes", "no"],
        }
    ]
    assert short["tools"] == []


@pytest.mark.parametrize("seed", ["7", 1.5, True, [1]])
def test_create_episode_rejects_a_non_integer_seed(seed: object, http: httpx.Client) -> None:
    response = http.post(
        "/api/v1/episodes",
        json={"collection_slug": "alpha", "scenario_slug": "short", "config": {"seed": seed}},
    )
    _error(response, 400, "config.seed")


def test_absent_seed_draws_a_random_one(http: httpx.Client) -> None:
    openings = {create(http)["initial_observation"]["content"] for _ in range(5)}
    assert len(openings) == 5


def test_real_simulator_same_seed_same_episode() -> None:
    server = LabsServer()
    with wire_client(server) as http:
        catalog = http.get("/api/v1/catalog").json()
        collection = catalog["collections"][0]
        scenario = collection["scenarios"][0]["slug"]

        def play() -> list[object]:
            created = create(
                http, collection["slug"], scenario, config={"seed": 3}, score_turns=True
            )
            history = [{"role": "user", "content": created["initial_observation"]["content"]}]
            seen: list[object] = [created["initial_observation"]]
            for text in (
                "Hello, I'm sorry to hear that. What is your claim number?",
                "When did it happen?",
            ):
                history.append(say(text))
                result = turn(http, created["episode_id"], history).json()
                seen.append((result["observation"], result["reward"], result["scores"]))
                history.append({"role": "user", "content": result["observation"]["content"]})
            return seen

        assert play() == play()


def test_error_responses_never_echo_the_api_key() -> None:
    server, _ = make_fake_labs(accounts=(demo_account(rate_limit_per_minute=1),))
    with wire_client(server) as http:
        responses = [
            http.get("/api/v1/catalog"),
            http.get("/api/v1/catalog"),
            http.post("/api/v1/episodes", json={"x": 1}),
            turn(http, "ep_missing", [say("hi")]),
        ]
    with wire_client(server, api_key="lab_secret_guess") as http:
        responses.append(http.get("/api/v1/catalog"))
    for response in responses:
        assert DEMO_API_KEY not in response.text
        assert "lab_secret_guess" not in response.text
    assert DEMO_API_KEY not in repr(demo_account())
    assert DEMO_API_KEY not in repr(server)
