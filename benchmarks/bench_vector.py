"""Vector env throughput and memory: LabsVectorEnv vs Gymnasium's vector envs vs collect().

One run, one table. A Labs server runs in a SEPARATE process on 127.0.0.1 with 50 ms added
latency; each cell runs in a fresh child process (so peak memory is its own) for a few
seconds, and reports env-steps/s (turns/s), the ideal ``N / latency``, their ratio, the peak
RSS summed over the cell's processes (and their PSS), and the process count. The server's CPU
use during each cell is printed too: if it nears 100% of a core, the server, not the client,
is the limit.

The main table uses the latency-only server (``_lite_labs_server.py``: the Labs protocol with
canned answers, 20-turn episodes): the full local server simulates a persona and runs seven
scorers per turn and saturates a core at a few hundred turns per second on this machine,
which the first rows show.

    python benchmarks/bench_vector.py            # ~2-3 minutes
    python benchmarks/bench_vector.py --seconds 2 --sizes 16 64
    python benchmarks/bench_vector.py --repeat 3   # median run of each cell (noisy machines)

Cells: (a) LabsVectorEnv (SAME_STEP, prefetch), (b) gymnasium AsyncVectorEnv over LabsEnv
(fork, shared_memory=False; N <= 64), (c) SyncVectorEnv over LabsEnv (N = 16), (d) the
independent-episode API ``labs_env.collect`` (concurrency N, async policy). Reference row
(ref): the lockstep ceiling of this machine in this run — raw asyncio sockets writing
pre-encoded turns, no client library (``_raw_lockstep.py``; N >= 64); read LabsVectorEnv's
ratio against it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ACTION = "Could you tell me the claim number and what happened?"
LATENCY = 0.05
KEY = "lab_demo_local"  # the local servers' demo key


# --------------------------------------------------------------------------- /proc helpers


def _status(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status, in bytes (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found += [int(c) for c in text.split()]
    except OSError:
        pass
    return found


def _memory() -> dict[str, int]:
    """Peak RSS and current PSS summed over this process and its children."""
    pids = [os.getpid(), *_children(os.getpid())]
    return {
        "peak_rss": sum(_status(p, "VmHWM") for p in pids),
        "pss": sum(_pss(p) for p in pids),
        "processes": len(pids),
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- cells (child side)


def _timed_steps(step: Any, seconds: float) -> tuple[int, float, float]:
    """``(steps, elapsed, cpu)``: ``cpu`` is this process's CPU seconds (all threads)."""
    for _ in range(2):  # warm up: connections, first autoresets
        step()
    steps, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
    return steps, time.perf_counter() - started, time.process_time() - cpu


def cell_vector(n: int, url: str, seconds: float, collection: str, scenario: str) -> dict[str, Any]:
    from labs_env.envs import LabsVectorEnv

    venv = LabsVectorEnv(n, collection=collection, scenario=scenario, api_key=KEY, base_url=url)
    venv.reset(seed=0)
    actions = [ACTION] * n
    steps, elapsed, cpu = _timed_steps(lambda: venv.step(actions), seconds)
    memory = _memory()
    venv.close()
    return {"env_steps": steps * n, "elapsed": elapsed, "cpu": cpu, **memory}


def _labs_env_factory(url: str, collection: str, scenario: str) -> Any:
    def make() -> Any:
        from labs_env import LabsEnv

        return LabsEnv(collection=collection, scenario=scenario, api_key=KEY, base_url=url)

    return make


def cell_gym(
    kind: str, n: int, url: str, seconds: float, collection: str, scenario: str
) -> dict[str, Any]:
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    fns = [_labs_env_factory(url, collection, scenario)] * n
    if kind == "async":
        venv: Any = gym.vector.AsyncVectorEnv(
            fns, shared_memory=False, context="fork", autoreset_mode=AutoresetMode.SAME_STEP
        )
    else:
        venv = gym.vector.SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    venv.reset(seed=0)
    actions = tuple([ACTION] * n)
    steps, elapsed, cpu = _timed_steps(lambda: venv.step(actions), seconds)
    memory = _memory()
    venv.close()
    return {"env_steps": steps * n, "elapsed": elapsed, "cpu": cpu, **memory}


def cell_collect(
    n: int, url: str, seconds: float, collection: str, scenario: str
) -> dict[str, Any]:
    from labs_env.rollout.collection import collect, episode_specs
    from labs_env.rollout.event_loop import run_sync

    calls = 0

    async def policy(history: Any, context: Any) -> str:
        nonlocal calls
        calls += 1
        return ACTION

    async def main() -> dict[str, Any]:
        episodes = int(n * (seconds + 2) / LATENCY / 10) + n  # more than can finish in time
        specs = episode_specs(collection, scenario, episodes=episodes)
        run = collect(policy, specs, api_key=KEY, base_url=url, concurrency=n)

        async def consume() -> None:
            async for _record in run:  # a consumer that keeps up (e.g. writes records out)
                pass

        async with contextlib.aclosing(run):
            task = asyncio.ensure_future(consume())
            await asyncio.sleep(1.0)  # warm up: connections, first episodes
            first, started, cpu = calls, time.perf_counter(), time.process_time()
            await asyncio.sleep(seconds)
            turns, elapsed = calls - first, time.perf_counter() - started
            cpu = time.process_time() - cpu
            memory = _memory()
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        return {"env_steps": turns, "elapsed": elapsed, "cpu": cpu, **memory}

    return run_sync(main())


def run_cell(args: argparse.Namespace) -> None:
    common = (args.n, args.url, args.seconds, args.collection, args.scenario)
    if args.gc_freeze:  # the README's throughput tip: freeze the heap once set-up is done
        import gc

        gc.freeze()
    if args.cell == "vector":
        result = cell_vector(*common)
    elif args.cell == "collect":
        result = cell_collect(*common)
    elif args.cell == "raw":
        from _raw_lockstep import raw_lockstep

        result = {**raw_lockstep(args.n, args.url, KEY, ACTION, args.seconds), **_memory()}
    else:
        result = cell_gym(args.cell, *common)
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- driver (parent side)


def start_server(command: list[str], marker: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if marker in line:
            url = next(word for word in line.split() if word.startswith("http://"))
            return proc, url
    raise RuntimeError(f"server did not start: {command}")


def measure(
    cell: str,
    n: int,
    url: str,
    server: subprocess.Popen[str],
    args: argparse.Namespace,
    *,
    scenario: str,
    collection: str,
) -> dict[str, Any]:
    """The median (by ratio of ideal) of ``args.repeat`` runs of one cell."""
    runs = [
        measure_once(cell, n, url, server, args, scenario=scenario, collection=collection)
        for _ in range(args.repeat)
    ]
    return sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]


def measure_once(
    cell: str,
    n: int,
    url: str,
    server: subprocess.Popen[str],
    args: argparse.Namespace,
    *,
    scenario: str,
    collection: str,
) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--cell", cell, "--n", str(n), "--url", url,
        "--seconds", str(args.seconds), "--collection", collection, "--scenario", scenario,
        *(["--gc-freeze"] if args.gc_freeze else []),
    ]  # fmt: skip
    cpu_before, wall_before = _cpu_seconds(server.pid), time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    server_cpu = (_cpu_seconds(server.pid) - cpu_before) / (time.perf_counter() - wall_before)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"cell {cell} N={n} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(line[7:])
    rate = result["env_steps"] / result["elapsed"]
    result.update(rate=rate, ideal=n / LATENCY, ratio=rate / (n / LATENCY), server_cpu=server_cpu)
    return result


LABELS = {
    "vector": "(a) LabsVectorEnv",
    "async": "(b) AsyncVectorEnv",
    "sync": "(c) SyncVectorEnv",
    "collect": "(d) collect()",
    "raw": "(ref) raw sockets, lockstep",
}


def row(label: str, n: int, r: dict[str, Any]) -> str:
    # Client CPU per env-step (all threads of the cell's process; AsyncVectorEnv's workers
    # are other processes, so not shown for it).
    cpu = "n/a" if label == LABELS["async"] else f"{1e6 * r['cpu'] / r['env_steps']:,.0f} µs"
    return (
        f"| {label} | {n} | {r['rate']:,.0f} | {r['ideal']:,.0f} | {r['ratio']:.2f} | {cpu} | "
        f"{r['peak_rss'] / 2**20:,.0f} MiB | {r['pss'] / 2**20:,.0f} MiB | {r['processes']} | "
        f"{100 * r['server_cpu']:.0f}% |"
    )


HEADER = (
    "| implementation | N | env-steps/s | ideal N/0.05 | ratio | client CPU/step | peak RSS (sum) "
    "| PSS (sum) | processes | server CPU |\n|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per cell")
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; median shown")
    parser.add_argument("--skip-full-server", action="store_true")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() in each cell after its imports"
    )
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--collection", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", default="echo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        run_cell(args)
        return
    started = time.perf_counter()
    print(
        f"cpus={os.cpu_count()} latency={LATENCY * 1000:.0f} ms seconds/cell={args.seconds} "
        f"repeat={args.repeat} (median run shown) gc_freeze={args.gc_freeze}\n"
    )
    if not args.skip_full_server:
        full, url = start_server(
            [sys.executable, "-m", "labs_env", "serve", "--port", "0",
             "--latency-ms", str(LATENCY * 1000)],
            "listening on",
        )  # fmt: skip
        try:
            print("Full local server (persona + scorers per turn), LabsVectorEnv:\n")
            full_kw = {"collection": "insurance-claims", "scenario": "delayed-claim-call"}
            print(HEADER)
            for n in (16, 64):
                r = measure("vector", n, url, full, args, **full_kw)
                print(row(LABELS["vector"], n, r), flush=True)
        finally:
            full.terminate()
            full.wait()
        print()
    lite, url = start_server(
        [sys.executable, str(HERE / "_lite_labs_server.py"), "--port", "0",
         "--latency", str(LATENCY), "--max-turns", "20"],
        "LISTENING",
    )  # fmt: skip
    try:
        print("Latency-only server (canned answers, 20-turn episodes):\n")
        print(HEADER)
        kw = {"collection": "bench", "scenario": "echo"}
        for n in args.sizes:
            print(row(LABELS["vector"], n, measure("vector", n, url, lite, args, **kw)), flush=True)
        for n in [n for n in args.sizes if n >= 64]:
            print(row(LABELS["raw"], n, measure("raw", n, url, lite, args, **kw)), flush=True)
        for n in [n for n in args.sizes if n <= 64]:
            print(row(LABELS["async"], n, measure("async", n, url, lite, args, **kw)), flush=True)
        print(row(LABELS["sync"], 16, measure("sync", 16, url, lite, args, **kw)), flush=True)
        for n in args.sizes:
            print(
                row(LABELS["collect"], n, measure("collect", n, url, lite, args, **kw)), flush=True
            )
    finally:
        lite.terminate()
        lite.wait()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
