"""``labs-env serve``: run the local Labs server on a real socket."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import Any

from labs_env.errors import LabsValidationError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="run the local Labs server (HTTP on loopback)",
        description="Run the local Labs server. Prints the base URL and the demo API key.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8700, help="port (0: any free port)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=50.0,
        help="added to every response, like a remote service (default 50; 0 for full speed)",
    )
    parser.add_argument(
        "--latency-jitter-ms", type=float, default=0.0, help="plus uniform random [0, this]"
    )
    parser.add_argument(
        "--rate-limit", type=int, default=1_000_000, help="demo key's requests per minute"
    )
    parser.add_argument(
        "--no-retry-after",
        action="store_true",
        help="send quota 429s without Retry-After (X-RateLimit-* headers only)",
    )
    parser.add_argument("--scenarios", type=Path, action="append", metavar="DIR",
                        help="load scenario files from DIR instead of the bundled ones "
                        "(repeatable)")  # fmt: skip
    faults = parser.add_argument_group("fault injection (rates are per-request probabilities)")
    faults.add_argument("--fault-429", type=float, default=0.0, metavar="RATE")
    faults.add_argument(
        "--fault-retry-after",
        default="1",
        metavar="SECONDS|none",
        help="Retry-After of injected 429s ('none': no header)",
    )
    faults.add_argument("--fault-500", type=float, default=0.0, metavar="RATE")
    faults.add_argument("--fault-503", type=float, default=0.0, metavar="RATE")
    faults.add_argument(
        "--fault-drop", type=float, default=0.0, metavar="RATE", help="close before processing"
    )
    faults.add_argument(
        "--fault-lost-response",
        type=float,
        default=0.0,
        metavar="RATE",
        help="process (commit), then close without the response",
    )
    faults.add_argument(
        "--fault-endpoints",
        default=None,
        metavar="NAMES",
        help="comma-separated endpoints the failures apply to (default: all), e.g. submit_turn",
    )
    faults.add_argument("--fault-seed", type=int, default=0, help="seed of the fault RNG")
    parser.add_argument(
        "--http",
        choices=("native", "uvicorn"),
        default="native",
        help="HTTP stack: the lean built-in httptools server (default) or the ASGI app on uvicorn",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from labs_env.server import (
        DEMO_API_KEY,
        FaultConfig,
        LabsServer,
        ServerConfig,
        demo_account,
        serve,
    )
    from labs_env.server.app import LOOPBACK_HOSTS

    if not 0 <= args.port <= 65535:
        raise LabsValidationError(
            "--port", f"{args.port} is not a TCP port", "pass 0..65535 (0: any free port)"
        )
    if args.http == "uvicorn":
        _require_uvicorn()
    try:
        retry_after = None if args.fault_retry_after == "none" else float(args.fault_retry_after)
        endpoints = (
            None
            if args.fault_endpoints is None
            else frozenset(name.strip() for name in args.fault_endpoints.split(",") if name)
        )
        faults = FaultConfig(
            latency_ms=args.latency_ms,
            latency_jitter_ms=args.latency_jitter_ms,
            rate_limit_rate=args.fault_429,
            rate_limit_retry_after=retry_after,
            server_error_rate=args.fault_500,
            unavailable_rate=args.fault_503,
            drop_rate=args.fault_drop,
            lost_response_rate=args.fault_lost_response,
            endpoints=endpoints,
            seed=args.fault_seed,
        )
        config = ServerConfig(
            accounts=(demo_account(args.rate_limit),),
            scenario_dirs=args.scenarios,
            faults=faults,
            rate_limit_retry_after=not args.no_retry_after,
        )
        server = LabsServer(config)
    except ValueError as error:
        print(f"labs-env serve: {error}", file=sys.stderr)
        return 2
    if args.host not in LOOPBACK_HOSTS:
        print(
            f"warning: binding {args.host} exposes the server and its public demo key "
            "beyond this machine",
            file=sys.stderr,
        )

    listening: list[str] = []

    def ready(url: str) -> None:
        listening.append(url)
        gc.collect()
        gc.freeze()  # scenarios and modules are loaded for good: keep them out of every GC pass
        print(f"Labs server listening on {url}")
        print(f"Demo API key: {DEMO_API_KEY}")
        print(f"  export LABS_URL={url} LABS_API_KEY={DEMO_API_KEY}", flush=True)

    try:
        serve(
            server,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            on_ready=ready,
            http=args.http,
        )
    except OSError as exc:
        if listening:
            raise
        # Binding failed: the port is taken, or the address is not this machine's.
        raise LabsValidationError(
            "--port",
            f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})",
            "pick another --port (0: any free port), or stop what listens there",
        ) from None
    return 0


def _require_uvicorn() -> None:
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise LabsValidationError(
            "--http",
            "uvicorn is not installed",
            "install the 'serve' extra (pip install '.[serve]' in a checkout), or use the "
            "default --http native",
        ) from None
