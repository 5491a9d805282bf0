"""The key never leaks: a malformed key is refused with an error that does not show it, and
whatever a server echoes back (message, request id, in any case, cut anywhere) is redacted.

The rule checked everywhere: no run of 8 or more consecutive characters of the key (compared
case-insensitively) survives in an exception's ``str`` or ``repr``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from labs_env import (
    APIConnectionError,
    APIStatusError,
    AsyncLabsClient,
    LabsClient,
    LabsValidationError,
)
from labs_env.client import ApiKey
from tests.kit.scripted_http import BASE, Script, call, make_client

KEY = "lab_Secr3tKeyMaterial0123456789zz"  # 32 characters


def leaked_runs(text: str, key: str = KEY, run: int = 8) -> list[str]:
    """The runs of ``run`` characters of ``key`` found in ``text`` (case-insensitive)."""
    lowered = text.lower()
    return [
        key[i : i + run] for i in range(len(key) - run + 1) if key[i : i + run].lower() in lowered
    ]


def assert_no_key(exc: BaseException, key: str = KEY) -> None:
    for text in (str(exc), repr(exc)):
        assert not leaked_runs(text, key), text


# --------------------------------------------------------------------------- malformed keys

STRAY = {
    "ellipsis": "\u2026",
    "zero-width space": "\u200b",
    "tab": "\t",
    "vertical tab": "\x0b",
    "delete": "\x7f",
    "non-breaking space": "\xa0",
    "escape": "\x1b",
}


@pytest.mark.parametrize("stray", list(STRAY.values()), ids=list(STRAY))
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_key_with_a_stray_character_is_refused_without_showing_it(kind: str, stray: str) -> None:
    bad = KEY[:20] + stray + KEY[20:]
    script = Script(httpx.Response(200, json={"collections": []}))
    with pytest.raises(LabsValidationError) as info:
        client = make_client(kind, script, api_key=bad)
        call(client, "catalog")
    assert info.value.field == "api_key"
    assert_no_key(info.value)
    assert not script.requests


@pytest.mark.parametrize("stray", ["\u2026", "\u200b", "\x7f"])
def test_the_key_from_the_environment_is_checked_too(
    stray: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABS_API_KEY", KEY + stray)
    with pytest.raises(LabsValidationError) as info:
        LabsClient(base_url=BASE)
    assert info.value.field == "api_key"
    assert_no_key(info.value)


def test_an_api_key_object_is_checked_when_built() -> None:
    with pytest.raises(LabsValidationError) as info:
        ApiKey(KEY + "\u2026")
    assert_no_key(info.value)


@pytest.mark.parametrize("value", [123, 1.5, b"lab_bytes_key_0123456789", ["lab_x"]])
@pytest.mark.parametrize("cls", [LabsClient, AsyncLabsClient])
def test_a_key_that_is_not_a_string_is_a_typed_error(value: object, cls: type) -> None:
    with pytest.raises(LabsValidationError) as info:
        cls(api_key=value, base_url=BASE)
    assert info.value.field == "api_key"
    assert "bytes_key" not in str(info.value)


def test_surrounding_whitespace_is_still_trimmed() -> None:
    with LabsClient(api_key=f"  {KEY}\n", base_url=BASE) as client:
        assert client.api_key.reveal() == KEY


# --------------------------------------------------------------------------- echoed keys


def failing(status: int, content: bytes, headers: dict[str, str] | None = None) -> Script:
    return Script(httpx.Response(status, content=content, headers=headers or {}))


def status_error(kind: str, script: Script) -> APIStatusError:
    client = make_client(kind, script, api_key=KEY, max_retries=0)
    with pytest.raises(APIStatusError) as info:
        call(client, "catalog")
    return info.value


@pytest.mark.parametrize("offset", [170, 185, 190, 195, 199])
def test_a_key_straddling_the_cut_of_a_text_body_is_redacted(kind: str, offset: int) -> None:
    body = ("x" * offset + KEY + " and more text after it " * 20).encode()
    error = status_error(kind, failing(400, body, {"content-type": "text/plain"}))
    assert_no_key(error)
    assert error.message.startswith("xxxx")


@pytest.mark.parametrize(
    "echo", [KEY.lower(), KEY.upper(), KEY[:12], KEY[-10:], KEY[5:25].swapcase()]
)
def test_case_changed_and_partial_echoes_are_redacted(kind: str, echo: str) -> None:
    body = httpx.Response(401, json={"message": f"invalid key {echo}!"}).content
    error = status_error(kind, failing(401, body, {"content-type": "application/json"}))
    assert_no_key(error)
    assert error.message.startswith("invalid key ")


@pytest.mark.parametrize("where", ["body", "data", "header"])
def test_a_key_echoed_as_request_id_is_redacted(kind: str, where: str) -> None:
    payload: dict[str, Any] = {"message": "no"}
    headers = {"content-type": "application/json"}
    if where == "body":
        payload["request_id"] = KEY
    elif where == "data":
        payload["data"] = {"request_id": KEY.lower()}
    else:
        headers["x-request-id"] = f"req-{KEY}"
    error = status_error(kind, failing(403, httpx.Response(403, json=payload).content, headers))
    assert_no_key(error)
    assert error.request_id is not None
    assert not leaked_runs(error.request_id)


def test_a_shape_error_does_not_show_an_echoed_request_id(kind: str) -> None:
    from labs_env import APIResponseValidationError

    script = Script(httpx.Response(200, json={"nope": 1}, headers={"x-request-id": KEY}))
    client = make_client(kind, script, api_key=KEY, max_retries=0)
    with pytest.raises(APIResponseValidationError) as info:
        call(client, "create_episode", "c", "s")
    assert_no_key(info.value)


def test_transport_failures_that_echo_the_key_are_redacted(kind: str) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy said {KEY.upper()[:20]}")

    client = make_client(kind, Script(boom), api_key=KEY, max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        call(client, "catalog")
    assert_no_key(info.value)


def test_redaction_keeps_unrelated_text() -> None:
    key = ApiKey(KEY)
    assert key.redact("nothing to see here") == "nothing to see here"
    assert KEY not in key.redact(f"a{KEY}b")
    assert key.redact(f"a{KEY}b").startswith("a") and key.redact(f"a{KEY}b").endswith("b")
    # 7 characters of the key are not recognisable enough to be hidden
    assert key.redact(KEY[3:10]) == KEY[3:10]


def test_async_client_header_block_never_shows_the_key() -> None:
    async def main() -> None:
        async with AsyncLabsClient(api_key=KEY + "\u2026", base_url=BASE) as client:
            await client.catalog()

    with pytest.raises(LabsValidationError) as info:
        asyncio.run(main())
    assert_no_key(info.value)
