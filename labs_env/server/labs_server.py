"""The sans-IO server: ``LabsServer.handle(method, path, headers, body) -> Response``.

One request goes through: routing (404/405) -> injected faults -> authentication (401) ->
body validation (400) -> rate limit (429, and the ``X-RateLimit-*`` headers from here on) ->
idempotent replay -> the endpoint (403/404/400/200). Every response is JSON and carries
``X-Request-ID``; errors use the documented ``{"message", "data": {"request_id"}}`` envelope.
Transports (:mod:`labs_env.server.transport`, :mod:`labs_env.server.app`) only move bytes and
obey :attr:`Response.delay` and :attr:`Response.drop`.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from labs_env.models import CompareRequest, CreateEpisodeRequest, EvaluateRequest
from labs_env.server.accounts import Account, AccountBook, demo_account
from labs_env.server.endpoints import (
    Endpoints,
    parse_batch,
    parse_model,
    parse_terminate,
    parse_turn,
)
from labs_env.server.episodes import EpisodeStore
from labs_env.server.faults import FaultConfig, FaultInjector, FaultKind
from labs_env.server.idempotency import IdempotencyStore, StoredResponse, fingerprint
from labs_env.server.normalization import NormalizationHistory
from labs_env.server.ratelimit import RateLimiter
from labs_env.server.simulation import Simulator
from labs_env.server.wire import ApiError, Response, dumps, error_body, loads

__all__ = ["MAX_BODY_BYTES", "LabsServer", "ServerConfig", "default_server"]

logger = logging.getLogger("labs_env.server")

#: Request bodies above this size are refused with a 400.
MAX_BODY_BYTES = 32 * 1024 * 1024
RATE_LIMITED = "Rate limit exceeded"
_PREFIX = "/api/v1"
_STATIC_ROUTES: dict[str, tuple[str, str]] = {
    f"{_PREFIX}/catalog": ("GET", "catalog"),
    f"{_PREFIX}/episodes": ("POST", "create_episode"),
    f"{_PREFIX}/evaluate": ("POST", "evaluate"),
    f"{_PREFIX}/batch/evaluate": ("POST", "batch_evaluate"),
    f"{_PREFIX}/compare": ("POST", "compare"),
}
_EPISODE_ACTIONS = {"turns": "submit_turn", "terminate": "terminate"}
_EPISODES_PREFIX = f"{_PREFIX}/episodes/"
_JSON = ("content-type", "application/json")


@dataclass(frozen=True)
class ServerConfig:
    """How a :class:`LabsServer` behaves.

    Attributes:
        accounts: the API keys it accepts (default: the demo account only).
        scenario_dirs: directories of scenario files (``None``: the bundled scenarios).
        faults: fault injection (default: none).
        rate_limit_retry_after: send ``Retry-After`` with quota 429s (the
            ``X-RateLimit-*`` headers are always sent).
        rate_limit_window_s: length of the rate-limit windows in seconds (the service's:
            60; an account's ``rate_limit_per_minute`` is then its limit per window).
        episode_ttl_s: inactivity after which an episode is gone (24 h).
        max_episodes: the most episodes kept in memory (least recently active dropped).
        idempotency_max_entries: the most ``Idempotency-Key`` responses kept.
        clock: Unix time in seconds; inject a fake to test windows and expiry.
    """

    accounts: Sequence[Account] = field(default_factory=lambda: (demo_account(),))
    scenario_dirs: Sequence[Path] | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    rate_limit_retry_after: bool = True
    rate_limit_window_s: int = 60
    episode_ttl_s: float = 86_400.0
    max_episodes: int = 100_000
    idempotency_max_entries: int = 20_000
    clock: Callable[[], float] = time.time


class LabsServer:
    """A local Labs service, independent of any transport.

    Args:
        config: behaviour (accounts, faults, limits, clock).
        simulator: the scenario simulator (default: built from ``config.scenario_dirs``).

    Example:
        >>> from labs_env.server import DEMO_API_KEY, LabsServer
        >>> server = LabsServer()
        >>> response = server.handle(
        ...     "GET", "/api/v1/catalog", {"authorization": f"Bearer {DEMO_API_KEY}"}
        ... )
        >>> response.status
        200
    """

    def __init__(self, config: ServerConfig | None = None, *, simulator: Simulator | None = None):
        self.config = config = config or ServerConfig()
        if simulator is None:
            dirs = None if config.scenario_dirs is None else [Path(d) for d in config.scenario_dirs]
            simulator = Simulator(dirs)
        self.simulator = simulator
        self.accounts = AccountBook(config.accounts)
        self.episodes = EpisodeStore(config.clock, config.episode_ttl_s, config.max_episodes)
        self.endpoints = Endpoints(simulator, self.episodes, NormalizationHistory(config.clock))
        self._limiter = RateLimiter(config.clock, config.rate_limit_window_s)
        self._idempotency = IdempotencyStore(
            config.clock, config.idempotency_max_entries, config.episode_ttl_s
        )
        self._faults = FaultInjector(config.faults)
        self._lock = threading.Lock()
        self._id_prefix = "req_" + secrets.token_hex(5)
        self._counter = itertools.count(1)

    def __repr__(self) -> str:
        return f"LabsServer(accounts={len(self.accounts)}, episodes={len(self.episodes)})"

    def new_request_id(self) -> str:
        """A fresh ``req_...`` id."""
        return f"{self._id_prefix}{next(self._counter):012x}"

    # ------------------------------------------------------------------ entry point

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Response:
        """Answer one HTTP request.

        Args:
            method: ``GET`` or ``POST``.
            path: the request path (a query string is ignored).
            headers: request headers; looked up by lower-case name (pass an
                ``httpx.Headers`` or a dict with lower-case keys).
            body: the raw request body.
        """
        request_id = self.new_request_id()
        path = path.partition("?")[0].rstrip("/")
        try:
            endpoint, episode_id = _route(method.upper(), path)
        except ApiError as error:
            return _error_response(error, request_id)
        if endpoint == "health":
            return Response(
                200,
                dumps({"status": "ok", "request_id": request_id}),
                [_JSON, ("x-request-id", request_id)],
            )

        plan = self._faults.plan(endpoint)
        kind = plan.kind
        if kind is FaultKind.NONE or kind is FaultKind.LOST_RESPONSE:
            with self._lock:
                response = self._process(
                    method, path, endpoint, episode_id, headers, body, request_id
                )
            response.drop = kind is FaultKind.LOST_RESPONSE
        elif kind is FaultKind.DROP:
            response = Response(0, b"", drop=True)
        else:
            response = _error_response(self._injected_error(kind), request_id)
        response.delay = plan.delay
        return response

    def _injected_error(self, kind: FaultKind) -> ApiError:
        if kind is FaultKind.RATE_LIMIT:
            retry_after = self.config.faults.rate_limit_retry_after
            headers = [] if retry_after is None else [("retry-after", f"{retry_after:g}")]
            return ApiError(429, RATE_LIMITED, headers)
        if kind is FaultKind.UNAVAILABLE:
            return ApiError(503, "Service unavailable")
        return ApiError(500, "Internal server error")

    # ------------------------------------------------------------------ pipeline

    def _process(
        self,
        method: str,
        path: str,
        endpoint: str,
        episode_id: str | None,
        headers: Mapping[str, str],
        body: bytes,
        request_id: str,
    ) -> Response:
        rate_headers: list[tuple[str, str]] = []
        idempotency: tuple[str, str, bytes] | None = None
        try:
            account = self.accounts.authenticate(headers.get("authorization"))
            parsed = self._parse(endpoint, episode_id, body)
            decision = self._limiter.hit(account.api_key, account.rate_limit_per_minute)
            rate_headers = decision.headers()
            if not decision.allowed:
                retry = [("retry-after", str(decision.retry_after))]
                raise ApiError(
                    429, RATE_LIMITED, retry if self.config.rate_limit_retry_after else []
                )
            key = headers.get("idempotency-key") if method != "GET" else None
            if key:
                request_fingerprint = fingerprint(method, path, body)
                stored = self._idempotency.lookup(account.api_key, key, request_fingerprint)
                if stored is not None:
                    return _replay(stored, rate_headers)
                idempotency = (account.api_key, key, request_fingerprint)
            payload = self._run(endpoint, account, episode_id, parsed)
            payload["request_id"] = request_id
            status, data, extra = 200, dumps(payload), rate_headers
        except ApiError as error:
            status, data, extra = (
                error.status,
                error_body(error.message, request_id),
                [*rate_headers, *error.headers],
            )
        except Exception:
            logger.exception("internal error while handling %s %s", method, path)
            status, data, extra = 500, error_body("Internal server error", request_id), rate_headers
        if idempotency is not None and status < 500 and status != 429:
            scope, key, request_fingerprint = idempotency
            self._idempotency.store(
                scope, key, request_fingerprint, StoredResponse(status, data, request_id)
            )
        return Response(status, data, [_JSON, ("x-request-id", request_id), *extra])

    def _parse(self, endpoint: str, episode_id: str | None, body: bytes) -> Any:
        if endpoint == "catalog":
            return None
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(400, f"Request body too large (over {MAX_BODY_BYTES} bytes)")
        decoded = _decode_json(body, allow_empty=endpoint == "terminate")
        if endpoint == "submit_turn":
            return parse_turn(decoded, episode_id or "")
        if endpoint == "terminate":
            return parse_terminate(decoded, episode_id or "")
        if endpoint == "batch_evaluate":
            return parse_batch(decoded)
        return parse_model(_MODELS[endpoint], decoded)

    def _run(
        self, endpoint: str, account: Account, episode_id: str | None, parsed: Any
    ) -> dict[str, Any]:
        endpoints = self.endpoints
        if endpoint == "submit_turn":
            return endpoints.submit_turn(account, episode_id or "", parsed)
        if endpoint == "catalog":
            return endpoints.catalog(account)
        if endpoint == "create_episode":
            return endpoints.create_episode(account, parsed)
        if endpoint == "terminate":
            return endpoints.terminate(account, episode_id or "")
        if endpoint == "evaluate":
            return endpoints.evaluate(account, parsed)
        if endpoint == "batch_evaluate":
            return endpoints.batch_evaluate(account, parsed)
        return endpoints.compare(account, parsed)


_MODELS: dict[str, type[BaseModel]] = {
    "create_episode": CreateEpisodeRequest,
    "evaluate": EvaluateRequest,
    "compare": CompareRequest,
}


def _route(method: str, path: str) -> tuple[str, str | None]:
    """(endpoint name, episode id) of a request; 404 / 405 when nothing matches."""
    if path == "/health":
        allowed, endpoint, episode_id = "GET", "health", None
    elif path in _STATIC_ROUTES:
        allowed, endpoint = _STATIC_ROUTES[path]
        episode_id = None
    elif path.startswith(_EPISODES_PREFIX):
        episode_id, _, action = path[len(_EPISODES_PREFIX) :].partition("/")
        endpoint_name = _EPISODE_ACTIONS.get(action)
        if not episode_id or endpoint_name is None:
            raise ApiError(404, "Not found")
        allowed, endpoint = "POST", endpoint_name
    else:
        raise ApiError(404, "Not found")
    if method != allowed:
        raise ApiError(405, "Method not allowed", [("allow", allowed)])
    return endpoint, episode_id


def _decode_json(body: bytes, *, allow_empty: bool) -> Any:
    if not body.strip():
        if allow_empty:
            return None
        raise ApiError(400, "Invalid request: the body must be a JSON object")
    try:
        return loads(body)
    except ValueError as error:
        raise ApiError(400, f"Invalid request: the body is not valid JSON ({error})") from None


def _error_response(error: ApiError, request_id: str) -> Response:
    return Response(
        error.status,
        error_body(error.message, request_id),
        [_JSON, ("x-request-id", request_id), *error.headers],
    )


def _replay(stored: StoredResponse, rate_headers: list[tuple[str, str]]) -> Response:
    headers = [
        _JSON,
        ("x-request-id", stored.request_id),
        *rate_headers,
        ("idempotent-replayed", "true"),
    ]
    return Response(stored.status, stored.body, headers, replayed=True)


_default_lock = threading.Lock()
_default: LabsServer | None = None


def default_server() -> LabsServer:
    """The process-wide server used when a transport is given none (built on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = LabsServer()
        return _default
