"""Quota use: does one shared rate limiter let N envs use the whole per-key quota, without 429s?

The local server runs in a separate process on 127.0.0.1 with a per-key limit of 1,200
requests/min (fixed windows aligned to the minute, ``X-RateLimit-*`` headers) and 50 ms
latency. A LabsVectorEnv with N = 64 envs steps as fast as the client lets it. The measured
interval starts at the first window reset after the start (so a fresh window's quota is not
counted as part of a partial one) and lasts ``--seconds``; the client's log of every response
counts requests and 429s (429s are counted over the whole run). Prints requests/min achieved,
the limit, their ratio and the number of 429 responses. Target: >= 0.95, zero 429s.

    python benchmarks/bench_quota.py                 # 60 s
    python benchmarks/bench_quota.py --seconds 120 --envs 64 --limit 1200
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time

from labs_env.envs import LabsVectorEnv
from labs_env.server import DEMO_API_KEY

ACTION = "Could you tell me the claim number and what happened?"


class ResponseCounter(logging.Handler):
    """Counts the client's per-response debug records (``METHOD path -> status ...``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.times: list[float] = []
        self.statuses: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("%s %s -> %d") and record.args:
            self.times.append(time.time())
            self.statuses.append(int(record.args[2]))  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to step")
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--limit", type=int, default=1200, help="requests per minute")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    server = subprocess.Popen(
        [sys.executable, "-m", "labs_env", "serve", "--port", "0",
         "--latency-ms", str(args.latency_ms), "--rate-limit", str(args.limit)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    ready = next(line for line in server.stdout if "listening on" in line)
    url = next(word for word in ready.split() if word.startswith("http://"))
    counter = ResponseCounter()
    log = logging.getLogger("labs_env")
    log.addHandler(counter)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        venv = LabsVectorEnv(
            args.envs,
            collection="insurance-claims",
            scenario="delayed-claim-call",
            api_key=DEMO_API_KEY,
            base_url=url,
        )
        venv.reset(seed=0)
        start = venv.client.rate_limit.reset_at  # the first window boundary ahead
        assert start is not None, "the server sent no X-RateLimit-* headers"
        end = start + args.seconds
        steps = 0
        while time.time() < end:
            venv.step([ACTION] * args.envs)
            steps += 1
        counted = sum(1 for t in counter.times if start <= t < end)
        rejected = counter.statuses.count(429)
        venv.close()
    finally:
        server.terminate()
        server.wait()
    elapsed = args.seconds
    per_minute = counted / elapsed * 60
    print(f"N={args.envs} envs, {elapsed:.0f} s measured, {steps} vector steps in all, ", end="")
    print(f"latency {args.latency_ms:g} ms\n")
    print("| requests/min achieved | limit | ratio | 429 responses |")
    print("|---|---|---|---|")
    print(f"| {per_minute:,.0f} | {args.limit:,} | {per_minute / args.limit:.3f} | {rejected} |")
    for when, status in zip(counter.times, counter.statuses, strict=True):
        if status == 429:  # where in the server's minute-aligned window it came back
            print(f"  429 at {when - start:+.2f} s from the measured window's start "
                  f"({when % 60:.2f} s into a minute)")  # fmt: skip


if __name__ == "__main__":
    main()
