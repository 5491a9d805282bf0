"""Episode ids are path segments: whatever the id, the request stays below
``/api/v1/episodes/``. The dot segments ``.`` and ``..`` are refused (percent-encoding them is
not enough: ``%2E`` is ``.`` to any intermediary that normalises URLs, RFC 3986 6.2.2.2)."""

from __future__ import annotations

import httpx
import pytest

from labs_env import LabsValidationError
from labs_env.client import requests as rq
from tests.kit.scripted_http import MESSAGES, TURN, Script, call, make_client

TERMINATED = {"episode_id": "x", "status": "terminated", "request_id": "req_t"}


@pytest.mark.parametrize("episode_id", [".", ".."])
@pytest.mark.parametrize("method", ["submit_turn", "terminate_episode"])
def test_dot_segment_ids_are_refused_before_sending(
    kind: str, method: str, episode_id: str
) -> None:
    script = Script(httpx.Response(200, json=TURN if method == "submit_turn" else TERMINATED))
    client = make_client(kind, script, max_retries=0)
    args = (episode_id, MESSAGES) if method == "submit_turn" else (episode_id,)
    with pytest.raises(LabsValidationError) as info:
        call(client, method, *args)
    assert info.value.field == "episode_id"
    assert not script.requests


@pytest.mark.parametrize(
    ("episode_id", "segment"),
    [
        ("...", "..."),
        ("ep_1", "ep_1"),
        ("a/../b", "a%2F..%2Fb"),
        ("../x", "..%2Fx"),
        ("%2E%2E", "%252E%252E"),
        ("a b?c#d", "a%20b%3Fc%23d"),
    ],
)
def test_other_ids_stay_one_segment_below_episodes(episode_id: str, segment: str) -> None:
    for spec in (rq.submit_turn_spec(episode_id, MESSAGES), rq.terminate_episode_spec(episode_id)):
        prefix, _, rest = spec.path.partition("/api/v1/episodes/")
        assert prefix == ""
        assert rest.rsplit("/", 1)[0] == segment
        assert httpx.URL("https://h.example" + spec.path).raw_path.decode() == spec.path
