"""connect: the one place that picks the real service or the embedded server."""

from __future__ import annotations

import asyncio

import pytest

from labs_env import LabsValidationError
from labs_env.connect import (
    LOCAL_BASE_URL,
    is_embedded,
    make_async_client,
    make_client,
    make_local_client,
)


def test_no_key_means_the_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABS_API_KEY", raising=False)
    monkeypatch.delenv("LABS_URL", raising=False)  # with LABS_URL: an error (issue 14)
    assert is_embedded()
    with make_client() as client:
        assert client.base_url == LOCAL_BASE_URL
        assert client.catalog().collections


def test_async_client_on_the_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABS_API_KEY", raising=False)

    async def main() -> int:
        async with make_async_client() as client:
            return len((await client.catalog()).collections)

    assert asyncio.run(main()) >= 1


def test_a_key_means_the_real_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABS_URL", raising=False)
    monkeypatch.setenv("LABS_API_KEY", "lab_fromtheenvironment1")
    assert not is_embedded()
    with make_client() as client:  # nothing is sent on construction
        assert client.base_url.startswith("https://labs.tacitintelligence.co")
    monkeypatch.setenv("LABS_URL", "https://labs.example")
    with make_client() as client:
        assert client.base_url.startswith("https://labs.example")
    monkeypatch.delenv("LABS_API_KEY")
    with make_client(api_key="lab_explicit0000000001", base_url="https://other.example") as c:
        assert c.base_url.startswith("https://other.example")


def test_base_url_without_a_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABS_API_KEY", raising=False)
    with pytest.raises(LabsValidationError, match="no API key"):
        make_client(base_url="https://labs.example")


def test_local_client_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABS_API_KEY", "lab_fromtheenvironment1")
    with make_local_client() as client:
        assert client.base_url == LOCAL_BASE_URL and client.catalog().collections
