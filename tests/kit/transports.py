"""In-process transports that forward to a local server while counting, failing or holding
requests, async clients on them, and open-socket accounting."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

import httpx

from labs_env import AsyncLabsClient, LabsClient
from labs_env.server import DEMO_API_KEY, LabsServer, LocalTransport
from tests.kit.wire import BASE

Rule = Callable[[httpx.Request], bool]


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
    """A sync client sending through a :class:`CountingTransport` (default: a fresh server)."""
    transport = CountingTransport(server or LabsServer(), appending_service=appending_service)
    client = LabsClient(api_key=DEMO_API_KEY, base_url=BASE, transport=transport, **kwargs)
    return client, transport


class ScriptedTransport(httpx.AsyncBaseTransport):
    """Forwards to a local server; requests matching ``fail`` lose their connection, requests
    matching ``hold`` wait until :attr:`release` is set. Records (method, path) per request and
    the most requests in flight at once."""

    def __init__(self, server: LabsServer | None = None, *, yields: int = 0) -> None:
        self.inner = LocalTransport(server or LabsServer(), sleep=False)
        self.fail: Rule = lambda request: False
        self.hold: Rule = lambda request: False
        self.release = asyncio.Event()
        self.requests: list[tuple[str, str]] = []
        self.yields = yields
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            for _ in range(self.yields):
                await asyncio.sleep(0)
            if self.hold(request):
                await self.release.wait()
            if self.fail(request):
                raise httpx.RemoteProtocolError("injected: connection lost", request=request)
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1

    def paths(self, suffix: str) -> list[str]:
        return [path for _, path in self.requests if path.endswith(suffix)]


def async_client(
    transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any
) -> AsyncLabsClient:
    """An async client on ``transport`` (default: a fresh in-process server)."""
    return AsyncLabsClient(
        api_key=DEMO_API_KEY,
        base_url=BASE,
        transport=transport or LocalTransport(LabsServer(), sleep=False),
        **kwargs,
    )


def for_episode(episode_id: str, suffix: str = "/turns") -> Rule:
    """A rule matching one episode's requests ending in ``suffix``."""
    return lambda request: request.url.path.endswith(f"/episodes/{episode_id}{suffix}")


def client_sockets(port: int) -> int:
    """Open TCP sockets of this process connected to ``port`` on loopback."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes:
                count += 1
    return count
