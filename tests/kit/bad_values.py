"""A local server behind a transport that spoils chosen turn responses (a NaN or Infinity
inside ``scores``), as a faulty service or proxy might, and a strict-JSON file check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from labs_env import AsyncLabsClient, LabsClient
from labs_env.server import DEMO_API_KEY, LabsServer, LocalTransport
from tests.kit.wire import BASE


class SpoilingTransport(LocalTransport):
    """Forwards to a local server; the turn responses of the ``spoil``-th episode created
    (0-based, in creation order) carry ``scores.spoiled = NaN`` (``token``: the raw JSON
    literal). Works for the sync and the async client."""

    def __init__(self, spoil: int = 1, token: bytes = b"NaN") -> None:
        super().__init__(LabsServer(), sleep=False)
        self.spoil = spoil
        self.token = token
        self.created: list[str] = []
        self.spoiled = 0

    def _spoiled(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        path = request.url.path
        if path.endswith("/episodes") and response.status_code == 200:
            self.created.append(json.loads(response.content)["episode_id"])
            return response
        if not path.endswith("/turns") or response.status_code != 200:
            return response
        if len(self.created) <= self.spoil or f"/{self.created[self.spoil]}/" not in path:
            return response
        self.spoiled += 1
        body = json.loads(response.content)
        body["scores"] = {"D1": 0.5, "spoiled": "SPOILED"}
        spoiled = json.dumps(body).encode().replace(b'"SPOILED"', self.token)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(
            response.status_code, headers=headers, content=spoiled, request=request
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._spoiled(request, super().handle_request(request))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._spoiled(request, await super().handle_async_request(request))


def spoiling_async_client(transport: SpoilingTransport, **kwargs: Any) -> AsyncLabsClient:
    return AsyncLabsClient(api_key=DEMO_API_KEY, base_url=BASE, transport=transport, **kwargs)


def spoiling_client(transport: SpoilingTransport, **kwargs: Any) -> LabsClient:
    return LabsClient(api_key=DEMO_API_KEY, base_url=BASE, transport=transport, **kwargs)


def _refuse(constant: str) -> Any:
    raise AssertionError(f"not strict JSON: {constant}")


def strict_json(text: str) -> Any:
    """``text`` parsed as strict JSON (``NaN`` / ``Infinity`` fail the test)."""
    return json.loads(text, parse_constant=_refuse)


def strict_jsonl(path: Path) -> list[Any]:
    """Every line of a JSONL file parsed as strict JSON."""
    return [strict_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
