"""Client settings are checked when the client is built: NaN, infinities, negative or
mistyped numbers are typed errors (``LabsValidationError`` naming the argument), never a
client that misbehaves later."""

from __future__ import annotations

import math

import httpx
import pytest

from labs_env import AsyncLabsClient, LabsClient, LabsValidationError
from tests.kit.scripted_http import BASE, KEY

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": NAN}, "timeout"),
        ({"timeout": INF}, "timeout"),
        ({"timeout": -INF}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "30"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": httpx.Timeout(NAN)}, "timeout"),
        ({"timeout": httpx.Timeout(5.0, read=NAN)}, "timeout"),
        ({"timeout": httpx.Timeout(5.0, connect=INF)}, "timeout"),
        ({"timeout": httpx.Timeout(5.0, pool=-1.0)}, "timeout"),
        ({"timeout": httpx.Timeout(5.0, write=0.0)}, "timeout"),
        ({"max_retries": NAN}, "max_retries"),
        ({"max_retries": INF}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 2.0}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"max_retries": "3"}, "max_retries"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": -5}, "max_connections"),
        ({"max_connections": NAN}, "max_connections"),
        ({"max_connections": INF}, "max_connections"),
        ({"max_connections": 8.0}, "max_connections"),
        ({"max_connections": True}, "max_connections"),
    ],
)
@pytest.mark.parametrize("cls", [LabsClient, AsyncLabsClient])
def test_bad_numbers_are_typed_errors(cls: type, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(LabsValidationError) as info:
        cls(api_key=KEY, base_url=BASE, **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    "timeout", [None, 0.5, 30, httpx.Timeout(None), httpx.Timeout(5.0, connect=None)]
)
@pytest.mark.parametrize("cls", [LabsClient, AsyncLabsClient])
def test_good_timeouts_are_accepted(cls: type, timeout: object) -> None:
    cls(api_key=KEY, base_url=BASE, timeout=timeout, max_retries=0, max_connections=1)


def test_large_but_sane_limits_are_accepted() -> None:
    LabsClient(api_key=KEY, base_url=BASE, max_retries=100, max_connections=100_000)
