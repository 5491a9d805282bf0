"""The API key never leaks; plain http is refused off loopback; a missing key is explicit."""

from __future__ import annotations

import logging
import pickle

import httpx
import pytest

from labs_env import (
    APIConnectionError,
    AsyncLabsClient,
    AuthenticationError,
    LabsClient,
    LabsValidationError,
)
from labs_env.client.api_key import ApiKey
from labs_env.testing import instant_retries
from tests.kit.scripted_http import KEY, MESSAGES, TURN, Script, call, error, make_client, ok


def test_key_is_masked_in_reprs(kind: str) -> None:
    client = make_client(kind, Script(ok(TURN)))
    for text in (repr(client), str(client), repr(client.api_key), str(client.api_key)):
        assert KEY not in text
        assert "cdef" in text or "****" in text
    assert client.api_key.reveal() == KEY
    assert repr(ApiKey("short")) == "ApiKey('****')"
    with pytest.raises(TypeError):
        pickle.dumps(client.api_key)


def test_key_never_appears_in_errors_or_logs(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="labs_env")
    echo = error(401, f"Invalid or missing API key: {KEY}")
    script = Script(error(500, f"crashed handling {KEY}"), echo)
    client = make_client(kind, script, retry_unsafe_turns=True)
    with instant_retries(), pytest.raises(AuthenticationError) as info:
        call(client, "submit_turn", "ep_1", MESSAGES)
    texts = [str(info.value), repr(info.value), info.value.message, caplog.text]
    assert all(KEY not in text for text in texts)
    assert "Invalid or missing API key" in str(info.value)
    assert "retrying POST /api/v1/episodes/ep_1/turns" in caplog.text
    assert "-> 500" in caplog.text and "request_id=req_err" in caplog.text


def test_key_never_appears_in_connection_errors(kind: str) -> None:
    script = Script(httpx.ConnectError(f"proxy said {KEY}"))
    client = make_client(kind, script, max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        call(client, "catalog")
    assert type(info.value) is APIConnectionError  # not its subclass APITimeoutError
    assert KEY not in str(info.value)


@pytest.mark.parametrize("cls", [LabsClient, AsyncLabsClient])
def test_plain_http_to_a_remote_host_is_refused(cls: type) -> None:
    with pytest.raises(LabsValidationError, match="plain http") as info:
        cls(api_key=KEY, base_url="http://labs.example.com")
    assert info.value.field == "base_url" and "allow_insecure_http" in info.value.fix
    assert KEY not in str(info.value)
    cls(api_key=KEY, base_url="http://labs.example.com", allow_insecure_http=True)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:9", "http://[::1]:80"])
@pytest.mark.parametrize("cls", [LabsClient, AsyncLabsClient])
def test_plain_http_to_loopback_is_allowed(cls: type, url: str) -> None:
    assert cls(api_key=KEY, base_url=url).base_url == url


def test_caller_supplied_transport_is_trusted_with_http() -> None:
    script = Script(ok(TURN))
    client = LabsClient(
        api_key=KEY, base_url="http://labs.local", transport=httpx.MockTransport(script)
    )
    client.submit_turn("ep_1", MESSAGES)
    assert script.requests[0].url.host == "labs.local"


@pytest.mark.parametrize("cls", [LabsClient, AsyncLabsClient])
def test_missing_key_names_the_environment_variable(
    cls: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABS_API_KEY", raising=False)
    with pytest.raises(LabsValidationError, match="LABS_API_KEY") as info:
        cls(base_url="https://labs.example")
    assert info.value.field == "api_key"


def test_key_and_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABS_API_KEY", KEY)
    monkeypatch.setenv("LABS_URL", "https://env.example/")
    client = LabsClient()
    assert client.base_url == "https://env.example" and client.api_key.reveal() == KEY
    monkeypatch.delenv("LABS_URL")
    assert LabsClient().base_url == "https://labs.tacitintelligence.co"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base_url": "ftp://x"}, "base_url"),
        ({"timeout": -1}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_connections": 0}, "max_connections"),
        ({"api_key": "lab_ bad"}, "api_key"),
    ],
)
def test_bad_settings_are_validation_errors(kwargs: dict[str, object], field: str) -> None:
    kwargs = {"api_key": KEY, "base_url": "https://labs.example", **kwargs}
    with pytest.raises(LabsValidationError) as info:
        LabsClient(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
