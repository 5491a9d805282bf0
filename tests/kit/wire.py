"""Raw HTTP against a ``LabsServer`` in process: an ``httpx.Client`` with a key, and builders
of the requests the protocol tests send (through the wire, not through ``LabsClient``)."""

from __future__ import annotations

from typing import Any

import httpx

from labs_env.server import DEMO_API_KEY, LabsServer, LocalTransport

BASE = "http://labs.local"


def wire_client(
    server: LabsServer, api_key: str | None = DEMO_API_KEY, **transport: Any
) -> httpx.Client:
    """An ``httpx.Client`` talking to ``server`` in process with ``api_key`` (``None``: none)."""
    headers = {} if api_key is None else {"Authorization": f"Bearer {api_key}"}
    return httpx.Client(
        transport=LocalTransport(server, **transport), base_url=BASE, headers=headers
    )


def create(
    http: httpx.Client, collection: str = "alpha", scenario: str = "long", **extra: Any
) -> dict[str, Any]:
    """Create an episode; assert 200; return the body."""
    response = http.post(
        "/api/v1/episodes", json={"collection_slug": collection, "scenario_slug": scenario, **extra}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def turn(
    http: httpx.Client, episode_id: str, messages: list[dict[str, Any]], **extra: Any
) -> httpx.Response:
    """Submit a turn body (``id`` filled in)."""
    return http.post(
        f"/api/v1/episodes/{episode_id}/turns",
        json={"id": episode_id, "messages": messages, **extra},
    )


def say(content: str, **extra: Any) -> dict[str, Any]:
    """An agent (assistant) message."""
    return {"role": "assistant", "content": content, **extra}
