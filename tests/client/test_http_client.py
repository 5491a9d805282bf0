"""Bring your own HTTP stack: ``http_client=`` takes a caller-owned ``httpx.Client`` /
``httpx.AsyncClient``. The Labs client adds the base URL, key, user agent, timeout and
idempotency key to every request, never closes the caller's client, and refuses an
``http_client`` together with ``transport=``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from labs_env import AsyncLabsClient, LabsClient, LabsValidationError
from labs_env.testing import instant_retries
from tests.kit.scripted_http import BASE, CREATED, KEY, MESSAGES, TURN, Script, error, ok


def own_client(kind: str, script: Script, **kwargs: Any) -> httpx.Client | httpx.AsyncClient:
    transport: Any = httpx.MockTransport(script)
    cls = httpx.Client if kind == "sync" else httpx.AsyncClient
    return cls(transport=transport, **kwargs)


def run(kind: str, http: Any, calls: list[tuple[str, tuple[Any, ...]]], **kwargs: Any) -> list[Any]:
    """Make the calls through a Labs client on ``http``, closing the Labs client after."""
    kwargs = {"api_key": KEY, "base_url": BASE, "http_client": http, **kwargs}
    if kind == "sync":
        with LabsClient(**kwargs) as client:
            return [getattr(client, name)(*args) for name, args in calls]

    async def main() -> list[Any]:
        async with AsyncLabsClient(**kwargs) as client:
            return [await getattr(client, name)(*args) for name, args in calls]

    return asyncio.run(main())


def test_requests_carry_url_key_agent_and_idempotency_key(kind: str) -> None:
    script = Script(ok(CREATED), ok(TURN))
    http = own_client(kind, script, base_url="https://ignored.example", headers={"X-Mine": "1"})
    created, turn = run(
        kind, http, [("create_episode", ("c", "s")), ("submit_turn", ("ep_1", MESSAGES))]
    )
    assert created.episode_id == "ep_1" and turn.turn == 1
    first, second = script.requests
    assert str(first.url) == f"{BASE}/api/v1/episodes"
    assert str(second.url) == f"{BASE}/api/v1/episodes/ep_1/turns"
    for request in script.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["user-agent"].startswith("labs-env/")
        assert request.headers["x-mine"] == "1"  # the caller's own defaults stay
        assert len(request.headers["idempotency-key"]) == 32
    assert first.headers["idempotency-key"] != second.headers["idempotency-key"]


def test_the_labs_key_wins_over_the_callers_authorization(kind: str) -> None:
    script = Script(ok(CREATED))
    http = own_client(kind, script, headers={"Authorization": "Bearer someone-else"})
    run(kind, http, [("create_episode", ("c", "s"))])
    assert script.requests[0].headers.get_list("authorization") == [f"Bearer {KEY}"]


def test_the_callers_client_is_never_closed(kind: str) -> None:
    http = own_client(kind, Script(ok(CREATED)))
    run(kind, http, [("create_episode", ("c", "s"))])
    assert not http.is_closed
    run(kind, http, [("create_episode", ("c", "s"))])  # still usable by a second Labs client
    if isinstance(http, httpx.Client):
        http.close()
    else:
        asyncio.run(http.aclose())


def test_retries_keep_one_idempotency_key(kind: str) -> None:
    script = Script(error(503, "busy"), ok(CREATED))
    with instant_retries():
        run(kind, own_client(kind, script), [("create_episode", ("c", "s"))])
    keys = {request.headers["idempotency-key"] for request in script.requests}
    assert len(script.requests) == 2 and len(keys) == 1


def test_the_client_timeout_is_sent_with_each_request(kind: str) -> None:
    script = Script(ok(CREATED))
    run(kind, own_client(kind, script, timeout=99.0), [("create_episode", ("c", "s"))], timeout=7.0)
    assert script.requests[0].extensions["timeout"]["read"] == 7.0


def test_http_client_and_transport_together_are_refused(kind: str) -> None:
    script = Script(ok(CREATED))
    cls = LabsClient if kind == "sync" else AsyncLabsClient
    with pytest.raises(LabsValidationError) as info:
        cls(
            KEY,
            BASE,
            http_client=own_client(kind, script),  # type: ignore[arg-type]
            transport=httpx.MockTransport(script),  # type: ignore[arg-type]
        )
    assert info.value.field == "http_client"


@pytest.mark.parametrize(("cls", "wrong"), [(LabsClient, "async"), (AsyncLabsClient, "sync")])
def test_the_wrong_kind_of_http_client_is_refused(cls: type, wrong: str) -> None:
    http = own_client(wrong, Script(ok(CREATED)))
    with pytest.raises(LabsValidationError) as info:
        cls(KEY, BASE, http_client=http)
    assert info.value.field == "http_client"
    assert ("AsyncClient" if cls is AsyncLabsClient else "httpx.Client") in str(info.value)


def test_plain_http_to_a_remote_host_is_still_refused_with_an_http_client() -> None:
    with pytest.raises(LabsValidationError) as info:
        LabsClient(KEY, "http://labs.example", http_client=httpx.Client())
    assert info.value.field == "base_url"


def test_a_prefix_in_the_base_url_is_kept(kind: str) -> None:
    script = Script(ok(CREATED))
    run(
        kind,
        own_client(kind, script),
        [("create_episode", ("c", "s"))],
        base_url="https://gw.example/labs/",
    )
    assert str(script.requests[0].url) == "https://gw.example/labs/api/v1/episodes"


@pytest.mark.parametrize(
    "kwargs", [{"http_client": httpx.Client()}, {"verify": False}, {"cert": "client.pem"}]
)
def test_network_settings_are_refused_for_the_embedded_server(kwargs: dict[str, Any]) -> None:
    from labs_env.connect import make_client

    with pytest.raises(LabsValidationError) as info:
        make_client(**kwargs)
    assert info.value.field == next(iter(kwargs))
    assert "embedded" in str(info.value)
