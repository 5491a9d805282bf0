"""Ray collection: turns/s and quota use with 1 and 2 actors, and the cost of shipping records.

The local Labs server runs in its own process on 127.0.0.1 (uvicorn, 50 ms injected latency),
with a status counter in front of it. Three parts, each bounded by its episode count:

1. Throughput: the scripted policy, 64 episodes in flight in total, on one process
   (``collect``), on 1 Ray actor, and on 2 Ray actors (32 each). Actor start-up is not timed.
2. Quota: one key limited to ``--limit`` requests per ``--window`` seconds; 2 actors with the
   shared quota bucket, 2 actors each pacing itself (``shared_quota=False``), and 1 actor.
   Reports requests/s achieved against the limit and the 429s the server sent.
3. Shipping: a Ray actor returns a real trajectory record to the driver, 16 calls in flight,
   against the same calls returning ``None``: the difference is the per-record overhead.

    python benchmarks/bench_ray.py                      # about 2 minutes
    python benchmarks/bench_ray.py --episodes 200 --limit 60 --window 5
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

SCENARIO = ("insurance-claims", "delayed-claim-call")
QUOTA_KEYS = ("lab_bench_quota_a", "lab_bench_quota_b", "lab_bench_quota_c")


# ----------------------------------------------------------------------------- server process


def serve(latency_ms: float, limit: int, window: int) -> None:
    """Run the local server on 127.0.0.1:0 with a status counter; print its URL."""
    import uvicorn

    from labs_env.server import FaultConfig, LabsServer, ServerConfig, create_app
    from labs_env.server.accounts import Account, demo_account
    from labs_env.server.app import base_url, bind_socket

    accounts = [demo_account()] + [Account(k, rate_limit_per_minute=limit) for k in QUOTA_KEYS]
    labs = LabsServer(
        ServerConfig(
            accounts=accounts,
            rate_limit_window_s=window,
            faults=FaultConfig(latency_ms=latency_ms),
        )
    )
    app = create_app(labs)
    counts: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)

    async def counting(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        if scope["path"] == "/bench/stats":
            body = json.dumps(counts).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            return await send({"type": "http.response.body", "body": body})
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        key = auth.removeprefix("Bearer ")

        async def counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                counts[key][message["status"]] += 1
            await send(message)

        return await app(scope, receive, counted)

    sock = bind_socket("127.0.0.1", 0)
    print("LISTENING", base_url(sock), flush=True)
    config = uvicorn.Config(counting, lifespan="off", access_log=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, __file__, "--serve", str(args.latency_ms), str(args.limit)]
    server = subprocess.Popen([*command, str(args.window)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    assert line.startswith("LISTENING"), line
    return server, line.split()[1]


def server_counts(url: str, key: str) -> collections.Counter[int]:
    with urllib.request.urlopen(f"{url}/bench/stats") as response:  # loopback only
        counts = json.load(response).get(key, {})
    return collections.Counter({int(status): n for status, n in counts.items()})


# ----------------------------------------------------------------------------- parts


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """``(busy, total)`` CPU jiffies of the whole machine so far (Linux ``/proc/stat``)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return 0.0, 1.0
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def busy_since(mark: tuple[float, float]) -> float:
    """Share of all cores busy since ``mark`` (from :func:`machine_busy`)."""
    busy, total = machine_busy()
    return (busy - mark[0]) / max(1.0, total - mark[1])


def throughput(
    url: str, episodes: int, server_pid: int
) -> list[tuple[str, int, float, float, float]]:
    """``(label, turns, seconds, server CPU seconds, machine busy share)`` per run."""
    from labs_env.distributed import RayCollector
    from labs_env.policies import ScriptedPolicy
    from labs_env.rollout.collection import collect_sync, episode_specs
    from labs_env.server import DEMO_API_KEY

    rows = []
    specs = episode_specs(*SCENARIO, episodes=episodes, seed=0)
    service = {"api_key": DEMO_API_KEY, "base_url": url}
    started, cpu, mark = time.perf_counter(), cpu_seconds(server_pid), machine_busy()
    records = collect_sync(ScriptedPolicy(), specs, concurrency=64, sync_policy="inline", **service)
    elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(server_pid) - cpu
    rows.append(("1 process, collect()", _turns(records), elapsed, server_cpu, busy_since(mark)))
    for label, workers, shared in (
        ("Ray, 1 actor, shared quota", 1, True),
        ("Ray, 2 actors, shared quota", 2, True),
        ("Ray, 2 actors, own limiters", 2, False),
    ):
        with RayCollector(
            ScriptedPolicy(),
            workers=workers,
            concurrency_per_worker=64 // workers,
            sync_policy="inline",
            forward_api_key=True,
            shared_quota=shared,
            **service,
        ) as collector:
            started, cpu, mark = time.perf_counter(), cpu_seconds(server_pid), machine_busy()
            records = list(collector.run(specs))
            elapsed = time.perf_counter() - started
            server_cpu = cpu_seconds(server_pid) - cpu
            rows.append((label, _turns(records), elapsed, server_cpu, busy_since(mark)))
    return rows


def quota(url: str, episodes: int, window: int) -> list[tuple[str, int, float, int, int]]:
    """``(label, requests served, seconds, windows touched, 429s)`` per run."""
    from labs_env.distributed import RayCollector
    from labs_env.policies import ScriptedPolicy
    from labs_env.rollout.collection import episode_specs

    rows = []
    specs = episode_specs(*SCENARIO, episodes=episodes, seed=0)
    runs = (("2 actors, shared quota", 2, True), ("2 actors, own limiters", 2, False))
    runs += (("1 actor", 1, True),)
    for (label, workers, shared), key in zip(runs, QUOTA_KEYS, strict=True):
        with RayCollector(
            ScriptedPolicy(),
            workers=workers,
            concurrency_per_worker=8,
            api_key=key,
            base_url=url,
            forward_api_key=True,
            shared_quota=shared,
            sync_policy="inline",
        ) as collector:
            started = time.time()
            records = list(collector.run(specs))
            ended = time.time()
        assert all(r.ok for r in records), [r.error for r in records if not r.ok][:3]
        counts = server_counts(url, key)
        windows = int(ended // window) - int(started // window) + 1  # windows it touched
        rows.append((label, counts[200], ended - started, windows, counts[429]))
    return rows


def shipping(url: str, calls: int) -> tuple[int, float, float, float]:
    import ray

    from labs_env.policies import ScriptedPolicy
    from labs_env.rollout.collection import collect_sync, episode_specs
    from labs_env.server import DEMO_API_KEY

    spec = episode_specs(*SCENARIO, episodes=1, seed=0)
    record = collect_sync(ScriptedPolicy(), spec, api_key=DEMO_API_KEY, base_url=url)[0]

    @ray.remote
    class Echo:
        def __init__(self, record: Any) -> None:
            self.record = record

        def give(self, ship: bool) -> Any:
            return self.record if ship else None

    echo = Echo.remote(record)
    ray.get(echo.give.remote(True))

    def timed(ship: bool) -> float:
        started = time.perf_counter()
        pending: list[Any] = []
        for _ in range(calls):
            pending.append(echo.give.remote(ship))
            if len(pending) >= 16:
                ready, pending = ray.wait(pending, num_returns=1)
                ray.get(ready)
        ray.get(pending)
        return (time.perf_counter() - started) / calls

    with_record, without = min(timed(True) for _ in range(3)), min(timed(False) for _ in range(3))
    started = time.perf_counter()
    for _ in range(200):
        pickle.loads(pickle.dumps(record))
    local = (time.perf_counter() - started) / 200
    return len(pickle.dumps(record)), with_record, without, local


def _turns(records: list[Any]) -> int:
    assert all(r.ok for r in records), [r.error for r in records if not r.ok][:3]
    return sum(r.num_turns for r in records)


# ----------------------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=600, help="episodes per throughput run")
    parser.add_argument("--quota-episodes", type=int, default=24, help="episodes per quota run")
    parser.add_argument("--limit", type=int, default=40, help="requests per window, quota key")
    parser.add_argument("--window", type=int, default=4, help="rate-limit window, seconds")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--calls", type=int, default=2000, help="calls per shipping run")
    args = parser.parse_args()

    import ray

    server, url = start_server(args)
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"ray.init: {time.perf_counter() - started:.1f} s; server {url}, ", end="")
    print(f"{args.latency_ms:g} ms latency\n")
    try:
        print("Throughput: scripted policy (5 turns), 64 episodes in flight in total")
        print("| where | turns | seconds | turns/s | server CPU (cores) | machine busy |")
        print("|---|---|---|---|---|---|")
        for label, turns, seconds, cpu, busy in throughput(url, args.episodes, server.pid):
            print(f"| {label} | {turns} | {seconds:.2f} | {turns / seconds:.0f} | ", end="")
            print(f"{cpu / seconds:.2f} | {busy:.0%} |")
        rate = args.limit / args.window
        print(f"\nQuota: {args.limit} requests per {args.window} s window ({rate:g}/s), ", end="")
        print("8 episodes in flight per actor")
        print("| run | requests | seconds | requests/s | windows touched | of their quota | 429s |")
        print("|---|---|---|---|---|---|---|")
        for label, requests, seconds, windows, rejected in quota(
            url, args.quota_episodes, args.window
        ):
            used = requests / (windows * args.limit)
            print(f"| {label} | {requests} | {seconds:.1f} | {requests / seconds:.1f} | ", end="")
            print(f"{windows} | {used:.2f} | {rejected} |")
        size, with_record, without, local = shipping(url, args.calls)
        print(f"\nShipping one record ({size:,} bytes pickled) back to the driver")
        print("| per call | ms |\n|---|---|")
        print(f"| actor call returning the record | {with_record * 1e3:.3f} |")
        print(f"| actor call returning None | {without * 1e3:.3f} |")
        print(f"| overhead of the record | {(with_record - without) * 1e3:.3f} |")
        print(f"| in-process pickle round trip | {local * 1e3:.3f} |")
    finally:
        ray.shutdown()
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
