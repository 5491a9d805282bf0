"""Client-side flow control: pacing from X-RateLimit-* headers, probe start, 429 blocks."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time

from labs_env.client.flow_control import FlowControl
from labs_env.testing import instant_retries
from tests.kit.scripted_http import MESSAGES, TURN, Script, call, make_client, ok

T0 = 1_000_000_000.0  # a fixed "now" in epoch seconds


def _headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(reset),
    }


def test_probe_phase_limits_requests_in_flight_until_the_first_response() -> None:
    flow = FlowControl(probe_in_flight=3)
    tickets = [flow.reserve(T0) for _ in range(3)]
    assert all(t is not None and t[1] == 0.0 for t in tickets)
    assert flow.reserve(T0) is None  # wait for a response
    flow.on_response(tickets[0][0], 200, {}, T0 + 0.05)  # type: ignore[index]
    # no rate-limit headers: nothing is paced any more
    assert all(flow.reserve(T0 + 0.05) == (i, 0.0) for i in range(4, 104))
    assert flow.snapshot().remaining is None


def _metered(limit: int = 60, remaining: int = 60, window: float = 60.0) -> tuple[FlowControl, int]:
    flow = FlowControl(burst=4)
    ticket = flow.reserve(T0)
    assert ticket is not None
    flow.on_response(ticket[0], 200, _headers(limit, remaining, T0 + window), T0)
    return flow, ticket[0]


def test_remaining_quota_is_spread_evenly_until_the_reset() -> None:
    flow, _ = _metered(limit=60, remaining=60, window=60.0)
    delays = [flow.reserve(T0)[1] for _ in range(60)]  # type: ignore[index]
    assert delays[:5] == [0.0] * 5  # a small burst (the burst credit)
    assert delays == sorted(delays)
    gaps = [b - a for a, b in itertools.pairwise(delays[4:])]
    assert all(0.9 <= gap <= 1.1 for gap in gaps)  # ~(60 s / 60) apart, not a burst and stall
    assert delays[-1] < 60.0  # the whole remaining quota is used inside the window
    next_window = flow.reserve(T0)
    assert next_window is not None and next_window[1] >= 60.0  # the 61st waits for the reset


def test_waiting_callers_are_spaced_across_the_reset_not_stampeding() -> None:
    flow, ticket = _metered(limit=10, remaining=0, window=5.0)
    delays = [flow.reserve(T0)[1] for _ in range(10)]  # type: ignore[index]
    assert all(5.0 <= d < 10.0 for d in delays)  # in the next window, within its limit
    assert all(b - a >= 0.4 for a, b in itertools.pairwise(delays))  # spaced, not all at once
    # The window's length is not known yet (one reset seen): no booking two windows ahead.
    assert flow.reserve(T0) is None
    # A response from the next window shows the length (5 s); booking continues, spaced.
    flow.on_response(ticket + 1, 200, _headers(10, 9, T0 + 10.0), T0 + 5.1)
    later = [flow.reserve(T0 + 5.1) for _ in range(10)]
    assert all(r is not None for r in later)
    slots = [T0 + 5.1 + r[1] for r in later]  # type: ignore[index]
    assert all(T0 + 10.0 <= t < T0 + 15.0 for t in slots)
    assert len(set(slots)) == len(slots)


def test_requests_in_flight_count_against_the_reported_remaining() -> None:
    flow = FlowControl()
    first = flow.reserve(T0)
    later = [flow.reserve(T0) for _ in range(3)]  # sent after `first`, maybe not yet counted
    assert first is not None and all(later)
    flow.on_response(first[0], 200, _headers(100, 10, T0 + 60), T0)
    assert flow.snapshot().remaining == 7
    assert flow.snapshot().limit == 100 and flow.snapshot().reset_at == T0 + 60


def test_a_429_blocks_everyone_until_retry_after_capped() -> None:
    flow = FlowControl(max_block=30.0)
    ticket = flow.reserve(T0)
    flow.on_response(ticket[0], 429, {"retry-after": "12"}, T0)  # type: ignore[index]
    delay = flow.reserve(T0 + 1)[1]  # type: ignore[index]
    assert 11.0 <= delay <= 12.5
    ticket = flow.reserve(T0 + 1)
    flow.on_response(ticket[0], 429, {"retry-after": "3600"}, T0 + 1)  # type: ignore[index]
    assert flow.reserve(T0 + 1)[1] <= 31.0  # type: ignore[index]


def _simulate(
    limit: int, window: float, workers: int, latency: float, duration: float
) -> tuple[int, int]:
    """A fixed-window server and a closed loop of workers on a virtual clock.

    Returns (successes, 429s).
    """
    flow = FlowControl()
    counts: dict[int, int] = {}
    events: list[tuple[float, int, str, int]] = []
    order = 0
    ok_count = limited = 0
    waiting: list[int] = []

    def push(at: float, kind: str, data: int) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (at, order, kind, data))

    def start(now: float) -> None:
        reservation = flow.reserve(now)
        if reservation is None:
            waiting.append(1)
            return
        push(now + reservation[1], "send", reservation[0])

    for _ in range(workers):
        start(T0)
    while events:
        now, _, kind, ticket = heapq.heappop(events)
        if now > T0 + duration:
            break
        if kind == "send":
            push(now + latency, "reply", ticket)
            continue
        arrived = now - latency / 2
        index = math.floor((arrived - T0) / window)
        used = counts.get(index, 0)
        reset = T0 + (index + 1) * window
        if used < limit:
            counts[index] = used + 1
            ok_count += 1
            flow.on_response(ticket, 200, _headers(limit, limit - used - 1, reset), now)
        else:
            limited += 1
            flow.on_response(
                ticket, 429, {**_headers(limit, 0, reset), "retry-after": str(reset - now)}, now
            )
        start(now)
        parked = len(waiting)
        waiting.clear()
        for _ in range(parked):  # woken by this response; may park again
            start(now)
    return ok_count, limited


def test_closed_loop_uses_the_whole_quota_without_429s() -> None:
    # 30 requests per 10 s window, 16 eager workers, 60 s: the quota is 180 requests.
    successes, limited = _simulate(limit=30, window=10.0, workers=16, latency=0.1, duration=60.0)
    assert limited == 0
    assert successes >= 0.9 * 180


def test_rate_limit_snapshot_is_exposed_on_the_client() -> None:
    reset = int(time.time()) + 60
    script = Script(ok(TURN, **_headers(300, 299, reset)))  # X-RateLimit-*
    for kind in ("sync", "async"):
        client = make_client(kind, script)
        assert client.rate_limit.remaining is None
        call(client, "submit_turn", "ep_1", MESSAGES)
        snapshot = client.rate_limit
        assert (snapshot.limit, snapshot.remaining, snapshot.reset_at) == (300, 299, reset)


def test_async_calls_share_one_pacing_state() -> None:
    reset = int(time.time()) + 30
    script = Script(ok(TURN, **_headers(10, 3, reset)))  # X-RateLimit-*
    client = make_client("async", script)

    async def main() -> None:
        await client.submit_turn("ep_1", MESSAGES)  # type: ignore[misc]
        await asyncio.gather(*(client.submit_turn("ep_1", MESSAGES) for _ in range(8)))  # type: ignore[misc]

    with instant_retries() as waits:
        asyncio.run(main())
    assert len(script.requests) == 9
    # 3 left in this window: the other concurrent calls were paced, most into the next window
    assert len(waits) >= 5
    assert sum(1 for w in waits if w >= 20) >= 4


def test_a_lockstep_batch_far_below_the_quota_is_not_spaced_out() -> None:
    flow, _ = _metered(limit=1_000_000, remaining=999_999, window=60.0)
    first = [flow.reserve(T0) for _ in range(256)]
    tickets = [r[0] for r in first if r is not None]
    for ticket in tickets:
        flow.on_response(ticket, 200, _headers(1_000_000, 999_000, T0 + 60.0), T0 + 0.05)
    # the next batch, one step later: the quota allows ~16,000 requests a second
    batch = [flow.reserve(T0 + 0.06) for _ in range(256)]
    assert all(r is not None and r[1] == 0.0 for r in batch)


def test_a_tight_quota_still_gets_only_the_small_burst() -> None:
    flow, _ = _metered(limit=120, remaining=120, window=60.0)
    delays = [flow.reserve(T0 + 30.0)[1] for _ in range(10)]  # type: ignore[index]
    assert delays.count(0.0) <= 5  # burst 4 (+ the first paced slot), then ~0.25 s apart
    assert all(b - a > 0.2 for a, b in itertools.pairwise(delays[5:]))
