"""Retries, idempotency, error mapping and malformed responses, through in-process fakes."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from labs_env import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    EpisodeCompleteError,
    EpisodeNotFoundError,
    InternalServerError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
)
from labs_env.testing import instant_retries
from tests.kit.scripted_http import CREATED, MESSAGES, TURN, Script, call, error, make_client, ok


def _turn(kind: str, script: Script, **kwargs: object) -> object:
    client = make_client(kind, script, **kwargs)
    return call(client, "submit_turn", "ep_1", MESSAGES)


def test_5xx_sequence_is_retried_with_the_same_idempotency_key(kind: str) -> None:
    script = Script(
        error(500, "boom"), error(502, "bad gateway"), error(504, "timeout"), ok(CREATED)
    )
    client = make_client(kind, script)
    with instant_retries() as waits:
        episode = call(client, "create_episode", "c", "s")
    assert episode.episode_id == "ep_1"
    assert len(script.requests) == 4
    assert len({r.headers["idempotency-key"] for r in script.requests}) == 1
    assert len(waits) == 3
    # full jitter: each wait lies in [0, min(max_delay, initial * 2**attempt)]
    assert all(0 <= w <= 0.5 * 2**i for i, w in enumerate(waits))


def test_retries_stop_after_max_retries(kind: str) -> None:
    script = Script(error(503, "Service unavailable", request_id="req_last"))
    client = make_client(kind, script, max_retries=2)
    with instant_retries(), pytest.raises(InternalServerError) as info:
        call(client, "create_episode", "c", "s")
    assert len(script.requests) == 3
    assert info.value.status_code == 503 and info.value.request_id == "req_last"


def test_retries_stop_at_the_total_deadline(kind: str) -> None:
    script = Script(error(500, "boom"))
    policy = RetryPolicy(initial_delay=10.0, max_delay=10.0, deadline=0.0)
    client = make_client(kind, script, max_retries=5, retry_policy=policy)
    with instant_retries() as waits, pytest.raises(InternalServerError):
        call(client, "create_episode", "c", "s")
    assert len(script.requests) == 1 and waits == []


def test_429_honours_retry_after_seconds(kind: str) -> None:
    script = Script(error(429, "Rate limit exceeded", **{"Retry-After": "7"}), ok(TURN))
    with instant_retries() as waits:
        result = _turn(kind, script)
    assert result.turn == 1  # type: ignore[attr-defined]
    assert len(script.requests) == 2  # a 429 proves the turn was not processed: resent
    assert any(7.0 <= w <= 8.0 for w in waits)


def test_429_honours_retry_after_http_date(kind: str) -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    script = Script(error(429, "Rate limit exceeded", **{"Retry-After": when}), ok(TURN))
    with instant_retries() as waits:
        _turn(kind, script)
    assert any(17.0 <= w <= 22.0 for w in waits)


def test_429_without_retry_after_waits_for_the_reset(kind: str) -> None:
    reset = str(int(time.time()) + 30)
    script = Script(
        error(
            429,
            "Rate limit exceeded",
            **{"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "60"},
        ),
        ok(TURN),
    )
    with instant_retries() as waits:
        _turn(kind, script)
    assert any(27.0 <= w <= 33.0 for w in waits)


def test_429_wait_is_capped(kind: str) -> None:
    script = Script(error(429, "Rate limit exceeded", **{"Retry-After": "3600"}), ok(TURN))
    policy = RetryPolicy(max_rate_limit_wait=5.0, deadline=10_000)
    with instant_retries() as waits:
        _turn(kind, script, retry_policy=policy)
    assert max(waits) <= 5.5  # the cap, plus a little spacing between blocked callers


def test_429_error_after_giving_up_carries_reset_time(kind: str) -> None:
    reset = int(time.time()) + 40
    script = Script(
        error(429, "Rate limit exceeded", **{"X-RateLimit-Reset": str(reset), "Retry-After": "40"})
    )
    with instant_retries(), pytest.raises(RateLimitError) as info:
        _turn(kind, script, max_retries=1)
    assert info.value.reset_at == reset and info.value.retry_after == 40.0


def test_connect_errors_are_retried_even_for_turns(kind: str) -> None:
    script = Script(httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), ok(TURN))
    with instant_retries():
        _turn(kind, script)
    assert len(script.requests) == 3


@pytest.mark.parametrize(
    "failure",
    [
        error(500, "boom"),
        error(502, "bad gateway"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("closed"),
    ],
)
def test_turn_is_not_resent_when_it_may_have_been_recorded(kind: str, failure: object) -> None:
    script = Script(failure, ok(TURN))  # type: ignore[arg-type]
    with instant_retries(), pytest.raises((InternalServerError, APIConnectionError)) as info:
        _turn(kind, script)
    assert len(script.requests) == 1
    if isinstance(info.value, APIConnectionError):
        assert "retry_unsafe_turns" in str(info.value)


def test_turn_resend_on_ambiguous_failures_is_opt_in(kind: str) -> None:
    script = Script(error(500, "boom"), httpx.ReadError("reset"), ok(TURN))
    with instant_retries():
        _turn(kind, script, retry_unsafe_turns=True)
    assert len(script.requests) == 3
    assert len({r.headers["idempotency-key"] for r in script.requests}) == 1


def test_503_resends_a_turn(kind: str) -> None:
    script = Script(error(503, "overloaded"), ok(TURN))
    with instant_retries():
        _turn(kind, script)
    assert len(script.requests) == 2


def test_read_timeout_becomes_api_timeout_error(kind: str) -> None:
    script = Script(httpx.ReadTimeout("slow"))
    with instant_retries(), pytest.raises(APITimeoutError):
        _turn(kind, script)
    script = Script(httpx.ReadTimeout("slow"), ok(CREATED))
    client = make_client(kind, script)
    with instant_retries():
        assert call(client, "create_episode", "c", "s").episode_id == "ep_1"


@pytest.mark.parametrize(
    ("response", "cls"),
    [
        (error(400, "messages: too long"), BadRequestError),
        (error(400, "Episode already complete"), EpisodeCompleteError),
        (error(401, "Invalid or missing API key"), AuthenticationError),
        (error(403, "No active subscription for collection"), PermissionDeniedError),
        (error(404, "Episode not found"), EpisodeNotFoundError),
    ],
)
def test_client_errors_are_typed_and_not_retried(
    kind: str, response: httpx.Response, cls: type[Exception]
) -> None:
    script = Script(response)
    with instant_retries(), pytest.raises(cls) as info:
        _turn(kind, script, retry_unsafe_turns=True)
    assert len(script.requests) == 1
    assert info.value.request_id == "req_err"  # type: ignore[attr-defined]
    assert info.value.message == response.json()["message"]  # type: ignore[attr-defined]


def test_non_json_error_body_is_tolerated(kind: str) -> None:
    script = Script(
        httpx.Response(502, text="<html>Bad Gateway</html>", headers={"X-Request-ID": "req_hdr"})
    )
    with instant_retries(), pytest.raises(InternalServerError) as info:
        _turn(kind, script, max_retries=0)
    assert info.value.status_code == 502
    assert "Bad Gateway" in info.value.message and info.value.request_id == "req_hdr"


@pytest.mark.parametrize(
    ("response", "needle"),
    [
        (
            httpx.Response(200, content=b"{not json", headers={"content-type": "application/json"}),
            "shape",
        ),
        (ok({**TURN, "reward": 1.5}), "reward"),
        (ok({**TURN, "reward": -0.1}), "reward"),
        (
            httpx.Response(200, text="<html>hi</html>", headers={"content-type": "text/html"}),
            "text/html",
        ),
        (ok({"turn": 1}), "observation"),
    ],
)
def test_malformed_success_responses_raise_shape_errors(
    kind: str, response: httpx.Response, needle: str
) -> None:
    response.headers["X-Request-ID"] = "req_bad"
    script = Script(response)
    with pytest.raises(APIResponseValidationError) as info:
        _turn(kind, script)
    assert needle in str(info.value)
    assert info.value.status_code == 200 and info.value.request_id == "req_bad"
    assert len(script.requests) == 1


def test_instant_retries_records_but_does_not_sleep(kind: str) -> None:
    script = Script(error(429, "Rate limit exceeded", **{"Retry-After": "30"}), ok(TURN))
    started = time.monotonic()
    with instant_retries() as waits:
        _turn(kind, script)
    assert time.monotonic() - started < 5  # a real 30 s wait would time the test out
    assert len(waits) >= 1


def test_every_call_gets_its_own_idempotency_key_also_in_a_forked_child(kind: str) -> None:
    import os

    script = Script(ok(CREATED))
    client = make_client(kind, script)
    for _ in range(300):  # more keys than one buffered read of random bytes holds
        call(client, "create_episode", "col", "scn")
    keys = [r.headers["idempotency-key"] for r in script.requests]
    assert len(set(keys)) == len(keys) and all(len(k) == 32 for k in keys)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        call(client, "create_episode", "col", "scn")
        os.write(write, script.requests[-1].headers["idempotency-key"].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_key = os.read(read, 64).decode()
    call(client, "create_episode", "col", "scn")
    assert child_key and child_key != script.requests[-1].headers["idempotency-key"]
