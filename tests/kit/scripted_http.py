"""In-process fakes for the client tests: a scripted ``httpx.MockTransport`` handler, canned
responses, and sync or async clients sending through it (``kind`` is the client tests'
``"sync"`` / ``"async"`` parameter, see ``tests/client/conftest.py``)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx

from labs_env import AsyncLabsClient, LabsClient

KEY = "lab_test_0123456789abcdef"
BASE = "https://labs.example"
MESSAGES = [{"role": "user", "content": "Hi, my claim was denied."}]

TURN = {
    "turn": 1,
    "observation": {"role": "assistant", "content": "Why was it denied?"},
    "reward": 0.25,
    "episode_complete": False,
    "request_id": "req_turn",
}
CREATED = {
    "episode_id": "ep_1",
    "initial_observation": {"role": "assistant", "content": "Hello"},
    "tools": [],
    "request_id": "req_created",
}

Item = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def ok(payload: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.Response(200, json=payload, headers=headers)


def error(status: int, message: str, request_id: str = "req_err", **headers: str) -> httpx.Response:
    body = {"message": message, "data": {"request_id": request_id}}
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """Answers requests from a list of responses (the last one repeats) and records them."""

    def __init__(self, *items: Item) -> None:
        self.items = list(items)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.items.pop(0) if len(self.items) > 1 else self.items[0]
        if isinstance(item, Exception):
            raise item
        if not isinstance(item, httpx.Response):
            return item(request)
        # a fresh copy: a response object can be sent only once, the script may repeat it
        return httpx.Response(item.status_code, headers=item.headers, content=item.content)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def make_client(kind: str, script: Script, **kwargs: Any) -> LabsClient | AsyncLabsClient:
    """A sync or async client sending through ``script``."""
    transport = httpx.MockTransport(script)
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("base_url", BASE)
    if kind == "sync":
        return LabsClient(transport=transport, **kwargs)
    return AsyncLabsClient(transport=transport, **kwargs)


def call(client: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a client method; run it to completion if it is a coroutine."""
    result = getattr(client, name)(*args, **kwargs)
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    return result


def close(client: Any) -> None:
    if isinstance(client, AsyncLabsClient):
        asyncio.run(client.aclose())
    else:
        client.close()
