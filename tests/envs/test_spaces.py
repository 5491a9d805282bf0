"""Custom spaces: contains, sample, equality, and Gymnasium's vector batching helpers."""

from __future__ import annotations

import copy

import pytest
from gymnasium.spaces import Text, Tuple
from gymnasium.vector.utils import (
    batch_differing_spaces,
    batch_space,
    concatenate,
    create_empty_array,
    iterate,
)

from labs_env.envs.spaces import AgentAction, MessageHistory, Unicode

PROSE = "Hello, world! Could you tell me the claim number (it's urgent)? Ça va."


def test_unicode_accepts_prose_that_gymnasium_text_rejects() -> None:
    assert PROSE not in Text(max_length=200)
    space = Unicode(max_length=200)
    assert PROSE in space
    assert "" in space
    assert b"bytes" not in space and 3 not in space
    assert "x" * 201 not in space
    assert "ab" not in Unicode(min_length=3)


def test_unicode_sample_is_seeded_prose_within_bounds() -> None:
    a, b = Unicode(max_length=40, seed=1), Unicode(max_length=40, seed=1)
    samples = [a.sample() for _ in range(20)]
    assert samples == [b.sample() for _ in range(20)]
    assert all(s in a and len(s) <= 40 for s in samples)
    assert any(" " in s for s in samples)
    assert all(len(Unicode(min_length=50, seed=i).sample()) >= 50 for i in range(5))
    with pytest.raises(ValueError):
        Unicode(max_length=2, min_length=3)


def test_equality_and_hash() -> None:
    assert Unicode(10) == Unicode(10) and Unicode(10) != Unicode(11)
    assert hash(Unicode(10)) == hash(Unicode(10))
    assert MessageHistory() == MessageHistory() and MessageHistory(5) != MessageHistory()
    assert AgentAction() == AgentAction() and AgentAction(5) != AgentAction()
    assert Unicode() != MessageHistory()
    assert copy.deepcopy(MessageHistory(3)) == MessageHistory(3)


def test_message_history_contains() -> None:
    space = MessageHistory(max_messages=3)
    good = (
        {"role": "user", "content": PROSE},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "decision", "name": "x", "input": {"value": "a"}}],
        },
    )
    assert good in space
    assert list(good) in space
    assert () in space
    assert good + good not in space  # too long
    assert ({"role": "robot", "content": "x"},) not in space
    assert ({"role": "user"},) not in space
    assert ({"role": "user", "content": "x" * 10_001},) not in space
    assert ({"role": "user", "content": "x", "tool_calls": [{"name": "x"}]},) not in space
    assert "not a history" not in space


def test_message_history_sample() -> None:
    space = MessageHistory(seed=0)
    for _ in range(10):
        sample = space.sample()
        assert sample in space and isinstance(sample, tuple)
        assert sample == () or sample[0]["role"] == "user"
    assert MessageHistory(max_messages=0, seed=0).sample() == ()


def test_agent_action_contains_and_sample() -> None:
    space = AgentAction(seed=0)
    assert PROSE in space
    assert {"content": "ok", "tool_calls": [{"name": "t", "input": {}}]} in space
    assert {"content": "ok", "role": "assistant"} in space
    assert {"content": "ok", "role": "user"} not in space
    assert {"content": "ok", "extra": 1} not in space
    assert {"tool_calls": []} not in space
    assert 5 not in space
    assert all(space.sample() in space for _ in range(10))


@pytest.mark.parametrize("space", [Unicode(100), MessageHistory(), AgentAction()])
def test_vector_batching_helpers(space: Unicode | MessageHistory | AgentAction) -> None:
    space.seed(0)
    batched = batch_space(space, 3)
    assert isinstance(batched, Tuple) and len(batched) == 3
    assert all(sub == space for sub in batched)
    items = [space.sample() for _ in range(3)]
    out = create_empty_array(space, 3)
    joined = concatenate(space, items, out)
    assert joined == tuple(items) and joined in batched
    assert list(iterate(batched, joined)) == items
    differing = batch_differing_spaces([space, copy.deepcopy(space)])
    assert isinstance(differing, Tuple) and differing[1] == space
