"""OpenAIChatPolicy's generation records: logprobs asked for, vLLM token ids, finish reason,
usage and model kept, a length cut marked, a content cut recorded, bad fields refused; the sync
and async calls share one retry logic and give the same actions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from labs_env import LabsClient, LabsEnv, TrajectoryRecorder, read_trajectories
from labs_env.policies import ChatCompletionError, OpenAIChatPolicy
from labs_env.rollout.generation import Generation
from labs_env.rollout.policy import EpisodeContext, call_policy
from labs_env.testing import instant_retries
from tests.kit.chat_server import FakeChatServer
from tests.kit.scenarios import COLLECTION, TALK

CTX = EpisodeContext(collection=COLLECTION, scenario=TALK, description="A delayed claim.")
HISTORY = [{"role": "user", "content": "My claim is late."}]


def completion(
    content: str | None = "Sorry to hear that.",
    *,
    finish_reason: str = "stop",
    logprobs: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A full chat-completions body (the kit's ``reply`` only scripts the message)."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": finish_reason,
    }
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    choice.update(extra.pop("choice", {}))
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "served-model",
        "choices": [choice],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        **extra,
    }


def answer(fake: FakeChatServer, body: dict[str, Any] | str, status: int = 200) -> None:
    fake.script.append((status, body, {}))


def entries(*pairs: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"token": t, "logprob": lp, "bytes": None, "top_logprobs": []} for t, lp in pairs]


def policy(fake: FakeChatServer, **options: Any) -> OpenAIChatPolicy:
    return OpenAIChatPolicy(fake.base_url, "m", api_key="", **options)


def test_logprobs_usage_model_and_finish_reason_are_kept(fake_chat: FakeChatServer) -> None:
    answer(fake_chat, completion(logprobs=entries(("Sorry", -0.1), (" to", -0.2), ("!", -1.5))))
    action = policy(fake_chat)(HISTORY, CTX)
    assert isinstance(action, dict)
    assert fake_chat.requests[0]["body"]["logprobs"] is True
    assert "return_token_ids" not in fake_chat.requests[0]["body"]  # not sent to any server
    gen = action["generation"]
    assert isinstance(gen, Generation)
    assert gen.logprobs == [-0.1, -0.2, -1.5] and gen.completion_ids is None
    assert gen.finish_reason == "stop" and not gen.cut_by_length
    assert gen.usage == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert gen.model == "served-model" and gen.text == "Sorry to hear that."


def test_logprobs_can_be_switched_off(fake_chat: FakeChatServer) -> None:
    answer(fake_chat, completion())
    action = policy(fake_chat, logprobs=False)(HISTORY, CTX)
    assert "logprobs" not in fake_chat.requests[0]["body"]
    assert isinstance(action, dict) and action["generation"].logprobs is None


def test_vllm_token_ids_are_asked_for_and_read(fake_chat: FakeChatServer) -> None:
    answer(
        fake_chat,
        completion(
            logprobs=entries(("token_id:71", -0.1), ("token_id:5", -0.2), ("token_id:2", -0.3)),
            prompt_token_ids=[1, 9, 9, 4],
            choice={"token_ids": [71, 5, 2]},
        ),
    )
    action = policy(fake_chat, token_ids=True)(HISTORY, CTX)
    body = fake_chat.requests[0]["body"]
    assert body["return_token_ids"] is True and body["return_tokens_as_token_ids"] is True
    gen = action["generation"]  # type: ignore[index]
    assert gen.prompt_ids == [1, 9, 9, 4] and gen.completion_ids == [71, 5, 2]
    assert gen.logprobs == [-0.1, -0.2, -0.3]


def test_token_ids_are_read_from_token_id_strings(fake_chat: FakeChatServer) -> None:
    """Older vLLM versions: no ``token_ids`` field, but ``return_tokens_as_token_ids``."""
    answer(fake_chat, completion(logprobs=entries(("token_id:8", -0.5), ("token_id:13", -0.25))))
    gen = policy(fake_chat, token_ids=True)(HISTORY, CTX)["generation"]  # type: ignore[index]
    assert gen.completion_ids == [8, 13]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (completion(logprobs=entries(("a", 0.7))), "log-probabilities"),
        (completion(logprobs=[{"token": "a"}]), "logprob is not a number"),
        (completion(prompt_token_ids="1 2 3"), "prompt_token_ids is not a list"),
        (
            completion(logprobs=entries(("a", -0.1)), choice={"token_ids": [1, 2]}),
            "one log-probability per generated token",
        ),
        (completion(logprobs=entries(("token_id:x", -0.1))), "no integer id"),
    ],
)
def test_malformed_generation_fields_are_a_typed_error(
    fake_chat: FakeChatServer, body: dict[str, Any], problem: str
) -> None:
    answer(fake_chat, body)
    with pytest.raises(ChatCompletionError, match="unusable") as caught:
        policy(fake_chat)(HISTORY, CTX)
    assert problem in str(caught.value)


def test_a_reply_cut_by_max_tokens_is_marked_in_info_and_record(
    fake_chat: FakeChatServer, local_client: LabsClient, tmp_path: Path
) -> None:
    answer(fake_chat, completion("Could you tell me your claim", finish_reason="length"))
    chat = policy(fake_chat, max_tokens=6)
    path = tmp_path / "cut.jsonl"
    env = TrajectoryRecorder(LabsEnv(COLLECTION, TALK, client=local_client), path, fsync=False)
    obs, _ = env.reset(seed=0)
    act = call_policy(chat, obs, env.unwrapped.context)  # type: ignore[attr-defined]
    _, _, _, _, info = env.step(act)
    env.close()
    assert info["reply_cut_by_length"] is True
    assert info["generation"]["finish_reason"] == "length"
    (record,) = read_trajectories(path)
    assert record.turns[0].generation is not None and record.turns[0].generation.cut_by_length


def test_content_over_the_limit_is_cut_and_the_cut_recorded(fake_chat: FakeChatServer) -> None:
    answer(fake_chat, completion("word " * 2_500))  # 12,500 characters
    action = policy(fake_chat)(HISTORY, CTX)
    assert isinstance(action, dict) and len(action["content"]) == 10_000
    gen = action["generation"]
    assert gen.text is not None and len(gen.text) == 12_500
    (cut,) = gen.truncations
    assert (cut.field, cut.original_length, cut.kept_length) == ("content", 12_500, 10_000)


def test_sync_and_async_calls_share_the_retry_logic(fake_chat: FakeChatServer) -> None:
    """Both retry a 503 and a 429 the same way and return the same action."""
    good = completion(logprobs=entries(("Hi", -0.3)))

    def script() -> None:
        fake_chat.script.clear()
        answer(fake_chat, {"error": {"message": "busy"}}, 503)
        answer(fake_chat, {"error": {"message": "slow down"}}, 429)
        answer(fake_chat, good)

    chat = policy(fake_chat, max_retries=2)
    script()
    with instant_retries() as sync_waits:
        sync_action = chat(HISTORY, CTX)

    async def run() -> Any:
        try:
            return await chat.acall(HISTORY, CTX)
        finally:
            await chat.aclose()

    script()
    with instant_retries() as async_waits:
        async_action = asyncio.run(run())
    assert sync_action == async_action
    assert len(sync_waits) == len(async_waits) == 2
    assert len(fake_chat.requests) == 6
    script()
    with instant_retries(), pytest.raises(ChatCompletionError, match="HTTP 429"):
        policy(fake_chat, max_retries=1)(HISTORY, CTX)
