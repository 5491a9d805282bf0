"""Served turn throughput of the local Labs server on loopback (latency 0).

The server runs in its own process exactly as users run it (``labs-env serve``), once per HTTP
stack: the default lean httptools server (``--http native``) and the ASGI app on uvicorn
(``--http uvicorn``), both on uvloop. The load comes from a second process: a light asyncio
raw-socket HTTP/1.1 keep-alive client. Each connection plays realistic episodes: it creates an
episode, submits full-history turns (the whole conversation each time, as the client does)
and starts a new episode when one ends. Server CPU is read from /proc/<pid>/stat.

A second table measures, in this process, what one turn costs inside the server: the whole
sans-IO ``LabsServer.handle`` against the simulation alone (persona reply + scoring).

Usage:
    python benchmarks/bench_server.py [--duration 4] [--connections 16,64,256] [--repeat 3]
        [--http native,uvicorn]

With ``--repeat`` > 1 the table shows the median run of each configuration.

Load is bounded by time and only ever hits 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from typing import Any

from pydantic_core import from_json

AGENT_LINES = (
    "Hello, thank you for calling. I'm sorry for the trouble. Could you tell me what happened?",
    "I understand this is frustrating. What is your claim or policy number?",
    "When did this happen, and where exactly?",
    "What damage or loss is involved, and what repairs or costs do you expect?",
    "Which documents, photos or receipts have you already sent us?",
    "Has anyone from our team contacted you since you reported it?",
    "Thank you, that helps. Is there anything else I should know before I review this?",
    "Here is what happens next: I will review the file today and update you by email.",
    "Is there anything else I can help you with today?",
    "Thank you for your patience. Goodbye.",
)


# --------------------------------------------------------------------------- load process


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Connection:
    """One keep-alive HTTP/1.1 connection that plays episodes back to back."""

    def __init__(
        self,
        host: str,
        port: int,
        api_key: str,
        scenarios: list[tuple[str, str]],
        score_turns: bool,
        index: int,
    ) -> None:
        self.host, self.port = host, port
        self.auth = f"Bearer {api_key}".encode()
        self.scenarios = scenarios
        self.score_turns = score_turns
        self.index = index
        self.turns = 0
        self.requests = 0
        self.errors = 0
        self.latencies: list[float] = []

    async def request(self, path: bytes, body: bytes) -> tuple[int, Any]:
        head = (
            b"POST "
            + path
            + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
            + self.auth
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        start = header.lower().index(b"content-length:") + 15
        length = int(header[start : header.index(b"\r\n", start)])
        data = await self.reader.readexactly(length)
        self.requests += 1
        return status, from_json(data)

    async def run(self, stop_at: float, measuring: asyncio.Event) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        episode_number = self.index
        try:
            while time.monotonic() < stop_at:
                collection, scenario = self.scenarios[episode_number % len(self.scenarios)]
                episode_number += 1
                create = {
                    "collection_slug": collection,
                    "scenario_slug": scenario,
                    "score_turns": self.score_turns,
                    "config": {"seed": episode_number},
                }
                status, created = await self.request(b"/api/v1/episodes", _json(create))
                if status != 200:
                    self.errors += 1
                    continue
                episode = created["episode_id"]
                path = f"/api/v1/episodes/{episode}/turns".encode()
                # The full history, re-sent every turn; each message is encoded once.
                prefix = b'{"id":"' + episode.encode() + b'","messages":['
                opening = created["initial_observation"]["content"]
                history = [_json({"role": "user", "content": opening})]
                for line in AGENT_LINES:
                    if time.monotonic() >= stop_at:
                        return
                    history.append(_json({"role": "assistant", "content": line}))
                    started = time.perf_counter()
                    status, result = await self.request(path, prefix + b",".join(history) + b"]}")
                    if status != 200:
                        self.errors += 1
                        break
                    if measuring.is_set():
                        self.turns += 1
                        self.latencies.append(time.perf_counter() - started)
                    reply = result["observation"]["content"]
                    history.append(_json({"role": "user", "content": reply}))
                    if result["episode_complete"]:
                        break
        finally:
            self.writer.close()


async def _load(args: argparse.Namespace) -> None:
    host, port = args.url.removeprefix("http://").split(":")
    scenarios = [tuple(s.split("/")) for s in args.scenarios.split(",")]
    measuring = asyncio.Event()
    start = time.monotonic()
    stop_at = start + args.warmup + args.duration
    connections = [
        Connection(host, int(port), args.api_key, scenarios, args.score_turns, i)  # type: ignore[arg-type]
        for i in range(args.connections)
    ]
    tasks = [asyncio.create_task(c.run(stop_at, measuring)) for c in connections]
    await asyncio.sleep(args.warmup)
    print("START", flush=True)
    measuring.set()
    began = time.perf_counter()
    cpu_began = time.process_time()
    await asyncio.sleep(args.duration)
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu_began
    turns = sum(c.turns for c in connections)
    latencies = sorted(x for c in connections for x in c.latencies)
    print(
        "STOP "
        + json.dumps(
            {
                "turns": turns,
                "elapsed": elapsed,
                "load_cpu": cpu,
                "errors": sum(c.errors for c in connections),
                "requests": sum(c.requests for c in connections),
                "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else 0.0,
                "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
            }
        ),
        flush=True,
    )
    await asyncio.gather(*tasks, return_exceptions=True)


# --------------------------------------------------------------------------- driver


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _start_server(http: str) -> tuple[subprocess.Popen[str], str, str]:
    from labs_env.server import DEMO_API_KEY

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labs_env",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--latency-ms",
            "0",
            "--log-level",
            "warning",
            "--http",
            http,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    first = server.stdout.readline().strip()
    if not first.startswith("Labs server listening on "):
        server.terminate()
        raise RuntimeError(f"the server did not start: {first!r}")
    return server, first.removeprefix("Labs server listening on "), DEMO_API_KEY


def _run_load(
    url: str,
    key: str,
    scenarios: str,
    connections: int,
    score_turns: bool,
    duration: float,
    warmup: float,
    server_pid: int,
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--load",
        "--url",
        url,
        "--api-key",
        key,
        "--scenarios",
        scenarios,
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
    ]
    if score_turns:
        command.append("--score-turns")
    load = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert load.stdout is not None
    try:
        line = load.stdout.readline()
        if line.strip() != "START":
            raise RuntimeError(f"load generator failed: {line!r}")
        cpu_began = _cpu_seconds(server_pid)
        line = load.stdout.readline()
        cpu = _cpu_seconds(server_pid) - cpu_began
        result: dict[str, Any] = json.loads(line.removeprefix("STOP "))
        load.wait(timeout=warmup + duration + 30)
    finally:
        if load.poll() is None:
            load.kill()
    result["server_cpu"] = cpu
    return result


class _SimulationTimer:
    """Wraps a simulator so the time spent in persona replies and scoring is summed."""

    def __init__(self, simulator: Any) -> None:
        self.seconds = 0.0
        self._score, self._start = simulator.score, simulator.start
        simulator.score, simulator.start = self.score, self.start

    def _timed(self, func: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return func(*args)
        finally:
            self.seconds += time.perf_counter() - started

    def score(self, *args: Any) -> Any:
        return self._timed(self._score, *args)

    def start(self, *args: Any) -> Any:
        session = self._start(*args)
        reply = session.reply
        session.reply = lambda conversation: self._timed(reply, conversation)
        return session


def _inprocess_costs(
    scenarios: list[tuple[str, str]], episodes: int = 60, warmup: int = 20
) -> list[tuple[str, float, float]]:
    """(scenario, µs per scored full-history turn in LabsServer.handle, µs of it simulating)."""
    from labs_env.server import DEMO_API_KEY, LabsServer

    server = LabsServer()
    gc.collect()
    gc.freeze()  # as `labs-env serve` does: no full collection of the ~130k start-up objects
    timer = _SimulationTimer(server.simulator)
    headers = {"authorization": f"Bearer {DEMO_API_KEY}"}
    rows = []
    for collection, slug in scenarios:
        handle_seconds = simulation_seconds = 0.0
        turns = 0
        for seed in range(-warmup, episodes):
            create = {
                "collection_slug": collection,
                "scenario_slug": slug,
                "score_turns": True,
                "config": {"seed": seed},
            }
            created = server.handle("POST", "/api/v1/episodes", headers, _json(create)).json()
            history = [{"role": "user", "content": created["initial_observation"]["content"]}]
            path = f"/api/v1/episodes/{created['episode_id']}/turns"
            for line in AGENT_LINES:
                history.append({"role": "assistant", "content": line})
                body = _json({"id": created["episode_id"], "messages": history})
                timer.seconds = 0.0
                started = time.perf_counter()
                response = server.handle("POST", path, headers, body)
                if seed >= 0:
                    handle_seconds += time.perf_counter() - started
                    simulation_seconds += timer.seconds
                    turns += 1
                result = response.json()
                history.append({"role": "user", "content": result["observation"]["content"]})
                if result["episode_complete"]:
                    break
        rows.append(
            (f"{collection}/{slug}", 1e6 * handle_seconds / turns, 1e6 * simulation_seconds / turns)
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", default="16,64,256")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions of every run")
    parser.add_argument(
        "--http", default="native,uvicorn", help="HTTP stacks to compare (labs-env serve --http)"
    )
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", help=argparse.SUPPRESS)
    parser.add_argument("--scenarios", help=argparse.SUPPRESS)
    parser.add_argument("--score-turns", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        args.connections = int(args.connections)
        try:
            import uvloop

            uvloop.run(_load(args))
        except ImportError:
            asyncio.run(_load(args))
        return

    from labs_env.server import LabsServer

    scenario_list = [(s.collection, s.slug) for s in LabsServer().simulator.scenarios()]  # type: ignore[attr-defined]
    scenarios = ",".join(f"{c}/{s}" for c, s in scenario_list)
    stacks = args.http.split(",")
    servers = {http: _start_server(http) for http in stacks}
    print(
        f"servers {', '.join(f'{h}: pid {p.pid}' for h, (p, _, _) in servers.items())}; "
        f"{len(scenario_list)} scenarios, {args.duration:g} s per run, "
        f"{args.repeat} run(s) each (median shown), {os.cpu_count()} CPUs\n"
    )
    results: dict[tuple[str, int, bool], list[dict[str, Any]]] = {}
    try:
        runs = [(int(c), True) for c in args.connections.split(",")]
        runs.append((runs[len(runs) // 2][0], False))
        for _ in range(args.repeat):  # interleaved, so machine noise hits every stack alike
            for connections, scored in runs:
                for http, (process, url, key) in servers.items():
                    r = _run_load(
                        url, key, scenarios, connections, scored, args.duration, args.warmup,
                        process.pid,
                    )  # fmt: skip
                    results.setdefault((http, connections, scored), []).append(r)
    finally:
        for process, _, _ in servers.values():
            process.terminate()
            process.wait(timeout=10)

    columns = (
        "http",
        "connections",
        "score_turns",
        "turns/s (median)",
        "range",
        "server CPU/turn",
        "load CPU/turn",
        "p50 ms",
        "p99 ms",
        "errors",
    )
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for connections, scored in runs:
        for http in stacks:
            measured = results[(http, connections, scored)]
            rates = sorted(r["turns"] / r["elapsed"] for r in measured)
            r = sorted(measured, key=lambda m: m["turns"] / m["elapsed"])[len(measured) // 2]
            per_turn = r["server_cpu"] / max(1, r["turns"]) * 1e6
            load_per_turn = r["load_cpu"] / max(1, r["turns"]) * 1e6
            cells = (
                http,
                connections,
                scored,
                f"{r['turns'] / r['elapsed']:,.0f}",
                f"{rates[0]:,.0f}–{rates[-1]:,.0f}",
                f"{per_turn:.0f} µs",
                f"{load_per_turn:.0f} µs",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                sum(m["errors"] for m in measured),
            )
            print("| " + " | ".join(str(c) for c in cells) + " |")
    print("\nserver CPU/turn includes the amortised create-episode requests (one per episode).\n")

    print("In process, mean per scored full-history turn (sans-IO, no HTTP):\n")
    print("| scenario | LabsServer.handle | of which simulation (reply + score) | protocol |")
    print("|---|---|---|---|")
    for name, handle_us, sim_us in _inprocess_costs(scenario_list):
        print(f"| {name} | {handle_us:.0f} µs | {sim_us:.0f} µs | {handle_us - sim_us:.0f} µs |")


if __name__ == "__main__":
    main()
