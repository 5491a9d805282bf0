"""Shared helpers for the env, wrapper and registration tests: fresh in-process servers."""

from __future__ import annotations

import json
from typing import Any

import httpx

from labs_env import LabsClient
from labs_env.connect import make_local_client
from labs_env.server import DEMO_API_KEY, FaultConfig, LabsServer, LocalTransport, ServerConfig

COLLECTION = "insurance-claims"
TALK = "delayed-claim-call"  # no tools, 12 turns
DECIDE = "storm-roof-decision"  # one decision tool (claim_status), 10 turns
DECISION = {
    "content": "Based on what you told me, I am approving the claim.",
    "tool_calls": [{"name": "claim_status", "input": {"value": "approve"}}],
}


def local_client(server: LabsServer | None = None, **kwargs: Any) -> LabsClient:
    """A client on a fresh (or the given) in-process server."""
    return make_local_client(server=server or LabsServer(), **kwargs)


class CountingTransport(httpx.BaseTransport):
    """Forwards to a local server and records each request's method and path.

    With ``appending_service`` it emulates a service that ignores ``Idempotency-Key`` and
    takes each turn body's last message as the new one (the API reference's "new messages in
    this turn" reading): a resent turn is then recorded as a second turn.
    """

    def __init__(self, server: LabsServer, *, appending_service: bool = False) -> None:
        self.inner = LocalTransport(server, sleep=False)
        self.appending_service = appending_service
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if self.appending_service and request.url.path.endswith("/turns"):
            body = json.loads(request.read())
            body["messages"] = body["messages"][-1:]
            headers = {
                k: v
                for k, v in request.headers.items()
                if k.lower() not in ("idempotency-key", "content-length")
            }
            request = httpx.Request(
                request.method, request.url, headers=headers, content=json.dumps(body).encode()
            )
        return self.inner.handle_request(request)

    def paths(self) -> list[str]:
        return [path for _, path in self.requests]


def counting_client(
    server: LabsServer | None = None, *, appending_service: bool = False, **kwargs: Any
) -> tuple[LabsClient, CountingTransport]:
    transport = CountingTransport(server or LabsServer(), appending_service=appending_service)
    client = LabsClient(
        api_key=DEMO_API_KEY, base_url="http://labs.local", transport=transport, **kwargs
    )
    return client, transport


def lost_first_turn_server() -> LabsServer:
    """A server that commits the first submitted turn and loses its response, then behaves.

    The fault injector makes one seeded draw per affected request; pick a seed whose first
    draw falls in the lost-response band and whose next draws do not.
    """
    import random

    for seed in range(1000):
        rng = random.Random(seed)
        if rng.random() < 0.5 and all(rng.random() >= 0.5 for _ in range(3)):
            faults = FaultConfig(
                lost_response_rate=0.5, endpoints=frozenset({"submit_turn"}), seed=seed
            )
            return LabsServer(ServerConfig(faults=faults))
    raise AssertionError("no suitable seed")  # pragma: no cover
