"""Built-in policies: random baseline, OpenAI-compatible chat policy, loading, calling."""

from __future__ import annotations

import asyncio
import json
import pickle
import random
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from labs_env.errors import LabsValidationError
from labs_env.json_schema import schema_problems
from labs_env.models import ToolDefinition
from labs_env.policies import ChatCompletionError, OpenAIChatPolicy, RandomPolicy, load_policy
from labs_env.policies._schema_sample import sample_from_schema
from labs_env.policies.scripted import ScriptedPolicy
from labs_env.rollout.actions import action_to_message
from labs_env.rollout.policy import EpisodeContext, acall_policy, call_policy, is_async_policy
from labs_env.testing import instant_retries
from tests.kit.chat_server import FakeChatServer

KEY = "sk-test-SECRET-0123456789"
ARTIFACT_SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "minLength": 5, "maxLength": 60},
        "amount": {"type": "number", "minimum": 0, "exclusiveMaximum": 100},
        "priority": {"type": "integer", "minimum": 1, "maximum": 3},
        "category": {"enum": ["billing", "technical"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
        "contact": {"$ref": "#/$defs/contact"},
        "urgent": {"type": "boolean"},
    },
    "required": ["summary", "amount", "priority", "category", "tags", "contact"],
    "$defs": {
        "contact": {
            "type": "object",
            "properties": {"email": {"type": "string", "format": "email"}},
            "required": ["email"],
        }
    },
}
TOOLS = (
    ToolDefinition(
        id="claim_status",
        type="decision",
        name="Claim status",
        mode="options",
        description="Approve or deny the claim.",
        options=["approve", "deny", "escalate"],
    ),
    ToolDefinition(
        id="case_note",
        type="artifact",
        name="Case note",
        mode="json_schema",
        description="A structured note.",
        json_schema=ARTIFACT_SCHEMA,
    ),
)
CTX = EpisodeContext(
    collection="support",
    scenario="refund",
    tools=TOOLS,
    description="A customer asks for a refund of a broken kettle.",
    turn=1,
    max_turns=6,
    seed=7,
)
HISTORY = [
    {"role": "user", "content": "Hi, my kettle broke."},
    {
        "role": "assistant",
        "content": "Sorry to hear that.",
        "tool_calls": [
            {"type": "decision", "name": "claim_status", "input": {"value": "escalate"}}
        ],
    },
    {"role": "user", "content": "Can I get my money back?"},
]


# --------------------------------------------------------------------------- random policy


def test_schema_sample_is_valid_against_the_schema() -> None:
    for seed in range(60):
        value = sample_from_schema(ARTIFACT_SCHEMA, random.Random(seed))
        assert schema_problems(value, ARTIFACT_SCHEMA) == [], value
        assert value["amount"] < 100 and "@" in value["contact"]["email"]


def test_random_policy_is_deterministic_per_seed_and_order_independent() -> None:
    histories = [[{"role": "user", "content": f"message {i}"}] for i in range(30)]
    first = [RandomPolicy(seed=3)(h, CTX) for h in histories]
    policy = RandomPolicy(seed=3)
    backwards = [policy(h, CTX) for h in reversed(histories)]
    assert first == list(reversed(backwards))
    other = [RandomPolicy(seed=4)(h, CTX) for h in histories]
    assert first != other


def test_random_policy_tool_calls_are_accepted_by_the_env() -> None:
    policy = RandomPolicy(seed=0, tool_probability=1.0)
    names = set()
    for i in range(40):
        action = policy([{"role": "user", "content": f"turn {i}"}], CTX)
        assert isinstance(action, dict) and len(action["tool_calls"]) == 1
        message = action_to_message(action, TOOLS, validate=True)  # raises if invalid
        names.add(message["tool_calls"][0]["name"])
    assert names == {"claim_status", "case_note"}


def test_random_policy_without_tools_or_probability_sends_text_only() -> None:
    no_tools = EpisodeContext(collection="c", scenario="s")
    action = RandomPolicy(seed=1, tool_probability=1.0)(HISTORY, no_tools)
    assert isinstance(action, dict) and action["tool_calls"] == [] and action["content"]
    never = RandomPolicy(seed=1, tool_probability=0.0)
    assert all(
        not never([{"role": "user", "content": str(i)}], CTX)["tool_calls"] for i in range(20)
    )  # type: ignore[index]


def test_random_policy_rejects_bad_arguments() -> None:
    with pytest.raises(LabsValidationError, match="tool_probability"):
        RandomPolicy(seed=0, tool_probability=1.5)
    with pytest.raises(LabsValidationError, match="seed"):
        RandomPolicy(seed="x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- openai chat policy


def _policy(fake_chat: FakeChatServer, **kwargs: Any) -> OpenAIChatPolicy:
    return OpenAIChatPolicy(fake_chat.base_url, "test-model", api_key=KEY, **kwargs)


def _sent(action: Any) -> dict[str, Any]:
    """The message part of an action (its ``generation`` is tested in test_chat_generation)."""
    return {k: v for k, v in action.items() if k != "generation"}


def _call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}


def test_request_maps_tools_history_and_scenario(fake_chat: FakeChatServer) -> None:
    fake_chat.reply({"content": "Let me check.", "tool_calls": None})
    with _policy(fake_chat, temperature=0.2, extra_body={"top_p": 0.5}) as policy:
        action = policy(HISTORY, CTX)
    assert _sent(action) == {"content": "Let me check.", "tool_calls": []}
    request = fake_chat.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "test-model" and body["temperature"] == 0.2 and body["top_p"] == 0.5
    functions = {t["function"]["name"]: t["function"] for t in body["tools"]}
    assert functions["claim_status"]["parameters"]["properties"]["value"]["enum"] == [
        "approve",
        "deny",
        "escalate",
    ]
    assert functions["case_note"]["parameters"] == ARTIFACT_SCHEMA
    system, *chat = body["messages"]
    assert system["role"] == "system" and "broken kettle" in system["content"]
    assert "turn 2 of at most 6" in system["content"]
    assert [m["role"] for m in chat] == ["user", "assistant", "tool", "user"]
    call = chat[1]["tool_calls"][0]
    assert call["function"]["name"] == "claim_status"
    assert json.loads(call["function"]["arguments"]) == {"value": "escalate"}
    assert chat[2]["tool_call_id"] == call["id"]


def test_tool_calls_map_back_to_labs_calls(fake_chat: FakeChatServer) -> None:
    note = {
        "summary": "Refund approved",
        "amount": 20,
        "priority": 1,
        "category": "billing",
        "tags": ["refund"],
        "contact": {"email": "a@example.com"},
    }
    fake_chat.reply(
        {
            "content": None,
            "tool_calls": [
                _call("claim_status", '{"value": "approve"}'),
                _call("case_note", json.dumps(note)),
                _call("no_such_tool", "{}"),
            ],
        }
    )
    action = _policy(fake_chat)(HISTORY, CTX)
    assert _sent(action) == {
        "content": "",
        "tool_calls": [
            {"type": "decision", "name": "claim_status", "input": {"value": "approve"}},
            {"type": "artifact", "name": "case_note", "input": note},
        ],
    }
    action_to_message(action, TOOLS, validate=True)


@pytest.mark.parametrize(("mode", "expected"), [("keep", 1), ("drop", 0)])
def test_malformed_arguments_are_kept_raw_or_dropped(
    mode: str, expected: int, fake_chat: FakeChatServer
) -> None:
    fake_chat.reply({"content": "ok", "tool_calls": [_call("case_note", '{"summary": "cut')]})
    action = _policy(fake_chat, malformed_tool_calls=mode)(HISTORY, CTX)
    assert isinstance(action, dict)
    assert len(action["tool_calls"]) == expected
    if expected:
        assert action["tool_calls"][0]["input"] == {"_raw_arguments": '{"summary": "cut'}


def test_429_is_retried_after_retry_after(fake_chat: FakeChatServer) -> None:
    fake_chat.fail(429, {"error": {"message": "slow down"}}, Retry_After="2")
    fake_chat.reply({"content": "second try"})
    with instant_retries() as waits:
        action = _policy(fake_chat)(HISTORY, CTX)
    assert _sent(action) == {"content": "second try", "tool_calls": []}
    assert len(fake_chat.requests) == 2 and waits and waits[0] >= 2.0


def test_retries_are_bounded_and_errors_never_show_the_key(fake_chat: FakeChatServer) -> None:
    fake_chat.fail(503, {"error": {"message": f"overloaded; you sent Bearer {KEY}"}})
    policy = _policy(fake_chat, max_retries=2)
    with instant_retries(), pytest.raises(ChatCompletionError) as caught:
        policy(HISTORY, CTX)
    assert len(fake_chat.requests) == 3
    assert caught.value.status_code == 503
    assert KEY not in str(caught.value) and "overloaded" in str(caught.value)
    assert KEY not in repr(policy)


def test_client_errors_are_not_retried(fake_chat: FakeChatServer) -> None:
    fake_chat.fail(400, {"error": {"message": "bad model"}})
    with pytest.raises(ChatCompletionError, match="400: bad model"):
        _policy(fake_chat)(HISTORY, CTX)
    assert len(fake_chat.requests) == 1


def test_api_key_falls_back_to_openai_api_key(
    monkeypatch: pytest.MonkeyPatch, fake_chat: FakeChatServer
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    fake_chat.reply({"content": "hi"})
    policy = OpenAIChatPolicy(fake_chat.base_url, "m")
    policy(HISTORY, CTX)
    assert fake_chat.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(policy) and "api_key=set" in repr(policy)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(policy)  # would write the key out
    monkeypatch.delenv("OPENAI_API_KEY")
    fake_chat.requests.clear()  # a policy made without any key now
    OpenAIChatPolicy(fake_chat.base_url, "m")(HISTORY, CTX)
    assert "Authorization" not in fake_chat.requests[0]["headers"]


def test_async_call_and_calling_helpers(fake_chat: FakeChatServer) -> None:
    async def run(policy: OpenAIChatPolicy) -> list[Any]:
        try:
            return list(
                await asyncio.gather(*(acall_policy(policy, HISTORY, CTX) for _ in range(3)))
            )
        finally:
            await policy.aclose()

    fake_chat.reply({"content": None, "tool_calls": [_call("claim_status", '"deny"')]})
    policy = _policy(fake_chat)
    assert is_async_policy(policy)
    results = asyncio.run(run(policy))
    expected = {
        "content": "",
        "tool_calls": [{"type": "decision", "name": "claim_status", "input": {"value": "deny"}}],
    }
    assert [_sent(r) for r in results] == [expected] * 3 and len(fake_chat.requests) == 3

    async def async_policy(history: Any, context: EpisodeContext) -> str:
        return f"async {context.scenario}"

    assert is_async_policy(async_policy) and not is_async_policy(RandomPolicy(seed=0))
    assert call_policy(async_policy, HISTORY, CTX) == "async refund"
    assert asyncio.run(acall_policy(RandomPolicy(seed=0), HISTORY, CTX)) == RandomPolicy(seed=0)(
        HISTORY, CTX
    )


def test_openai_policy_validates_its_arguments() -> None:
    with pytest.raises(LabsValidationError, match="base_url"):
        OpenAIChatPolicy("localhost:8000", "m")
    with pytest.raises(LabsValidationError, match="system_prompt"):
        OpenAIChatPolicy("http://127.0.0.1:1/v1", "m", system_prompt="Hi {name}")
    with pytest.raises(LabsValidationError, match="malformed_tool_calls"):
        OpenAIChatPolicy("http://127.0.0.1:1/v1", "m", malformed_tool_calls="ignore")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- load_policy


def test_load_policy_builtins_and_user_callables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(load_policy("random", seed=5), RandomPolicy)
    assert isinstance(load_policy("scripted", seed=2), ScriptedPolicy)
    policy = load_policy("openai", base_url="http://127.0.0.1:1/v1", model="m")
    assert isinstance(policy, OpenAIChatPolicy)
    (tmp_path / "my_policies.py").write_text(
        textwrap.dedent(
            """
            def echo(history, context):
                return "echo: " + history[-1]["content"]

            def make(prefix):
                return lambda history, context: prefix + context.scenario

            class Polite:
                def __init__(self, name="x"):
                    self.name = name
                def __call__(self, history, context):
                    return "please " + self.name
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_policy("my_policies:echo")(HISTORY, CTX) == "echo: Can I get my money back?"
    assert load_policy("my_policies:make", prefix="> ")(HISTORY, CTX) == "> refund"
    assert load_policy("my_policies:Polite", name="bob")(HISTORY, CTX) == "please bob"
    sys.modules.pop("my_policies", None)


@pytest.mark.parametrize(
    ("spec", "options", "match"),
    [
        ("", {}, "non-empty"),
        ("gpt", {}, "unknown policy"),
        ("openai", {"model": "m"}, "base_url"),
        ("no_such_module_xyz:policy", {}, "cannot import"),
        ("labs_env.policies:nope", {}, "no attribute"),
        ("labs_env.policies.random_policy:__doc__", {}, "not callable"),
        ("random", {"colour": "red"}, "rejected the options"),
    ],
)
def test_load_policy_rejects_bad_specs(spec: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(LabsValidationError, match=match):
        load_policy(spec, **options)
