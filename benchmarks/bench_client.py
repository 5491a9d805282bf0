"""Throughput and client CPU of AsyncLabsClient vs stock httpx.AsyncClient (closed loop).

Starts ``_latency_server.py`` (uvicorn, a fixed server latency, ~2 KB turn-shaped JSON) in a
subprocess on 127.0.0.1, then for each N in-flight requests runs N workers that each send
their next ``submit_turn`` as soon as the last one returned, and prints requests/s, the ideal
N / latency, their ratio and the client process's CPU time per request.

    python benchmarks/bench_client.py                     # 50 ms latency, 3 s per cell
    python benchmarks/bench_client.py --duration 5 --ns 64 256 --clients labs

Load is bounded: one loopback server, at most max(N) requests in flight, a fixed duration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
from _raw_http import RawConnection

from labs_env import AsyncLabsClient, TurnResult

KEY = "lab_benchmark_0123456789"
HISTORY = [
    {"role": "user", "content": "Hi, my claim was denied and I do not understand why."},
    {"role": "assistant", "content": "I am sorry to hear that. Which claim is it about?"},
]
Send = Callable[[], Awaitable[object]]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(port: int, latency: float) -> subprocess.Popen[bytes]:
    script = Path(__file__).with_name("_latency_server.py")
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), "--latency", str(latency)]
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the latency server did not start")


async def closed_loop(send: Send, n: int, duration: float) -> tuple[int, float, float]:
    """Run ``n`` workers for ``duration`` s; return (completed, wall seconds, CPU seconds)."""
    done = 0
    stop_at = 0.0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await send()
            done += 1

    stop_at = time.perf_counter() + min(0.5, duration / 4)  # warm-up: open the connections
    await asyncio.gather(*(worker() for _ in range(n)))
    done = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    stop_at = wall0 + duration
    await asyncio.gather(*(worker() for _ in range(n)))
    return done, time.perf_counter() - wall0, time.process_time() - cpu0


async def bench_labs(base_url: str, n: int, duration: float) -> tuple[int, float, float]:
    async with AsyncLabsClient(api_key=KEY, base_url=base_url, max_connections=n) as client:

        async def send() -> TurnResult:
            return await client.submit_turn("ep_bench", HISTORY)

        return await closed_loop(send, n, duration)


async def bench_httpx(base_url: str, n: int, duration: float) -> tuple[int, float, float]:
    body = ('{"id":"ep_bench","messages":' + str(HISTORY).replace("'", '"') + "}").encode()
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def send() -> TurnResult:
            response = await client.post(
                "/api/v1/episodes/ep_bench/turns", content=body, headers=headers
            )
            response.raise_for_status()
            return TurnResult.model_validate_json(response.content)

        return await closed_loop(send, n, duration)


async def bench_raw(base_url: str, n: int, duration: float) -> tuple[int, float, float]:
    host, port = base_url.removeprefix("http://").split(":")
    body = b'{"id":"ep_bench","messages":[]}'
    request = (
        b"POST /api/v1/episodes/ep_bench/turns HTTP/1.1\r\nHost: %s\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (host.encode(), len(body), body)
    )
    loop = asyncio.get_running_loop()
    idle = [(await loop.create_connection(RawConnection, host, int(port)))[1] for _ in range(n)]

    async def send() -> bytes:
        protocol = idle.pop()
        try:
            return await protocol.send(request)
        finally:
            idle.append(protocol)

    try:
        return await closed_loop(send, n, duration)
    finally:
        for protocol in idle:
            protocol.close()


def uvloop_run(coroutine: Coroutine[Any, Any, T]) -> T:
    import uvloop

    return uvloop.run(coroutine)


CLIENTS = {
    "labs": ("AsyncLabsClient", bench_labs),
    "httpx": ("httpx.AsyncClient (stock)", bench_httpx),
    "raw": ("raw asyncio (floor)", bench_raw),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.05, help="server latency, seconds")
    parser.add_argument("--duration", type=float, default=2.5, help="seconds per cell")
    parser.add_argument("--ns", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument(
        "--clients", nargs="+", choices=sorted(CLIENTS), default=["labs", "httpx", "raw"]
    )
    parser.add_argument(
        "--loops",
        nargs="+",
        choices=["asyncio", "uvloop"],
        default=["asyncio", "uvloop"],
        help="event loop(s) the clients run on (the server always runs uvloop)",
    )
    args = parser.parse_args()

    port = free_port()
    server = start_server(port, args.latency)
    base_url = f"http://127.0.0.1:{port}"
    print(
        f"latency {args.latency * 1000:.0f} ms, {args.duration:g} s per cell, "
        f"{os.cpu_count()} CPUs shared by client and server\n"
    )
    print(
        f"{'client':<28} {'loop':<8} {'N':>4} {'req/s':>8} {'ideal':>8} {'ratio':>6} "
        f"{'CPU µs/req':>11} {'server CPU µs/req':>18}"
    )
    try:
        # interleaved per N, so that the machine's noise hits every client alike
        cells = [(n, loop, name) for n in args.ns for loop in args.loops for name in args.clients]
        for n, loop, name in cells:
            label, bench = CLIENTS[name]
            run = uvloop_run if loop == "uvloop" else asyncio.run
            server_cpu0 = process_cpu(server.pid)
            done, wall, cpu = run(bench(base_url, n, args.duration))
            server_cpu1 = process_cpu(server.pid)
            server_cost = "n/a"
            if server_cpu0 is not None and server_cpu1 is not None and done:
                # includes the warm-up requests: an upper bound
                server_cost = f"<= {(server_cpu1 - server_cpu0) / done * 1e6:.0f}"
            rate = done / wall
            ideal = n / args.latency
            per_request = cpu / done * 1e6 if done else float("nan")
            print(
                f"{label:<28} {loop:<8} {n:>4} {rate:>8.0f} {ideal:>8.0f} {rate / ideal:>6.2f} "
                f"{per_request:>11.0f} {server_cost:>18}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
