"""The local Labs server: a faithful, deterministic stand-in for the Labs service.

Serve it in process (no sockets) with :class:`LocalTransport`, or on a real socket with
``labs-env serve`` / :func:`serve` (a lean built-in HTTP/1.1 server by default; the ASGI app
of :func:`create_app` on uvicorn with ``http="uvicorn"``). The protocol layer here (routing,
accounts, rate limits, idempotency, episodes, faults) sits on the simulation layer in
:mod:`labs_env.server.simulation` (scenarios, persona, scorers).

Example:
    >>> import httpx
    >>> from labs_env.server import DEMO_API_KEY, LocalTransport
    >>> http = httpx.Client(transport=LocalTransport(), base_url="http://labs.local",
    ...                     headers={"Authorization": f"Bearer {DEMO_API_KEY}"})
    >>> http.get("/api/v1/catalog").status_code
    200
"""

from __future__ import annotations

from labs_env.server.accounts import DEMO_API_KEY, AccessLevel, Account, demo_account
from labs_env.server.app import LabsASGIApp, create_app, run_in_thread, serve
from labs_env.server.faults import FaultConfig
from labs_env.server.labs_server import LabsServer, ServerConfig, default_server
from labs_env.server.transport import LocalTransport
from labs_env.server.wire import Response

__all__ = [
    "DEMO_API_KEY",
    "AccessLevel",
    "Account",
    "FaultConfig",
    "LabsASGIApp",
    "LabsServer",
    "LocalTransport",
    "Response",
    "ServerConfig",
    "create_app",
    "default_server",
    "demo_account",
    "run_in_thread",
    "serve",
]
