"""What each endpoint does once a request is authenticated, validated and within its quota.

Every ``parse_*`` function turns a decoded JSON body into the endpoint's input (raising a 400
that names the field); every :class:`Endpoints` method turns that input into the success
payload (without ``request_id``, which the core adds) or raises :class:`ApiError`.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from labs_env.models import (
    MAX_BATCH_ITEMS,
    BatchEvaluateItem,
    CompareRequest,
    CreateEpisodeRequest,
    EvaluateRequest,
    Message,
    RewardConfig,
)
from labs_env.server.accounts import Account
from labs_env.server.episodes import EpisodeStore, new_messages_start
from labs_env.server.normalization import NormalizationHistory
from labs_env.server.simulation import ScenarioSpec, Simulator
from labs_env.server.wire import ApiError, RawJSON, describe_validation_error, dumps

__all__ = [
    "TIE_EPSILON",
    "Endpoints",
    "TurnInput",
    "parse_batch",
    "parse_model",
    "parse_terminate",
    "parse_turn",
]

#: ``/compare`` calls a tie when the rewards differ by at most this much.
TIE_EPSILON = 1e-3
NO_SUBSCRIPTION = "No active subscription for collection"
EPISODE_COMPLETE = "Episode already complete"
_TURN_FIELDS = frozenset(("id", "messages", "reward_config"))


class _NewMessages(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[Message]


def _invalid(problem: str) -> ApiError:
    return ApiError(400, f"Invalid request: {problem}")


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    return body


def parse_model(model: type[BaseModel], body: Any) -> Any:
    """Validate ``body`` with a strict request model; 400 naming the field on failure."""
    try:
        return model.model_validate(_require_object(body))
    except ValidationError as error:
        raise ApiError(400, describe_validation_error(error)) from None


TurnInput = tuple[list[Any], RewardConfig | None]


def parse_turn(body: Any, episode_id: str) -> TurnInput:
    """Check a turn body's envelope; its new messages are validated once they are known."""
    body = _require_object(body)
    extra = sorted(set(body) - _TURN_FIELDS)
    if extra:
        raise _invalid(f"{extra[0]}: unknown field (allowed: id, messages, reward_config)")
    body_id = body.get("id")
    if not isinstance(body_id, str) or not body_id:
        raise _invalid("id: field required (the episode id, equal to the one in the path)")
    if body_id != episode_id:
        raise _invalid("id: must equal the episode id in the path")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: a non-empty list of messages is required")
    reward_config = body.get("reward_config")
    if reward_config is None:
        return messages, None
    try:
        return messages, RewardConfig.model_validate(reward_config)
    except ValidationError as error:
        text = describe_validation_error(error).removeprefix("Invalid request: ")
        raise _invalid(f"reward_config.{text}") from None


def parse_batch(body: Any) -> list[dict[str, Any]]:
    """Check the batch envelope; each item is validated on its own later."""
    body = _require_object(body)
    extra = sorted(set(body) - {"items"})
    if extra:
        raise _invalid(f"{extra[0]}: unknown field (allowed: items)")
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH_ITEMS:
        raise _invalid(f"items: a list of 1 to {MAX_BATCH_ITEMS} items is required")
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise _invalid(f"items[{index}].id: every item needs a non-empty string id")
    return items


def parse_terminate(body: Any, episode_id: str) -> None:
    """A terminate body is empty, ``{}`` or ``{"id": <the path id>}``."""
    if body is None:
        return
    body = _require_object(body)
    extra = sorted(set(body) - {"id"})
    if extra:
        raise _invalid(f"{extra[0]}: unknown field (allowed: id)")
    if "id" in body and body["id"] != episode_id:
        raise _invalid("id: must equal the episode id in the path")


def _random_seed() -> int:
    return secrets.randbits(63)


def _seed_from(config: dict[str, Any] | None) -> int:
    seed = (config or {}).get("seed")
    if seed is None:
        return _random_seed()
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _invalid("config.seed: must be an integer")
    return seed


class Endpoints:
    """The endpoints' behaviour over one simulator, episode store and history."""

    def __init__(
        self, simulator: Simulator, episodes: EpisodeStore, history: NormalizationHistory
    ) -> None:
        self.simulator = simulator
        self.episodes = episodes
        self.history = history
        self._catalogs: dict[frozenset[str] | None, dict[str, Any]] = {}
        self._tools: dict[tuple[str, str], RawJSON] = {}

    # ------------------------------------------------------------------ helpers

    def scenario(self, account: Account, collection_slug: str, scenario_slug: str) -> ScenarioSpec:
        """The scenario, or 403 (not subscribed) / 404 (no such collection or scenario)."""
        if not account.subscribes_to(collection_slug):
            raise ApiError(403, NO_SUBSCRIPTION)
        spec = self.simulator.scenario(collection_slug, scenario_slug)
        if spec is None:
            if collection_slug not in self.simulator.collection_slugs():
                raise ApiError(404, f"Collection not found: {collection_slug!r}")
            raise ApiError(404, f"Scenario not found: {collection_slug}/{scenario_slug}")
        return spec

    def _tool_list(self, spec: ScenarioSpec) -> RawJSON:
        """The scenario's tools, serialised once."""
        key = (spec.collection, spec.slug)
        tools = self._tools.get(key)
        if tools is None:
            tools = RawJSON(dumps([tool.model_dump(exclude_none=True) for tool in spec.tools]))
            self._tools[key] = tools
        return tools

    def _scored(
        self,
        account: Account,
        spec: ScenarioSpec,
        messages: list[Message],
        reward_config: RewardConfig | None,
    ) -> dict[str, Any]:
        result = self.simulator.score(spec, messages, reward_config)
        payload: dict[str, Any] = {"reward": result.reward}
        return account.visible_scores(payload, result.scores, result.score_breakdown)

    def _scored_wire(
        self,
        account: Account,
        spec: ScenarioSpec,
        messages: list[Message],
        reward_config: RewardConfig | None,
    ) -> dict[str, Any]:
        """As :meth:`_scored`, with ``scores`` and ``score_breakdown`` serialised once per
        (cached) result: a turn's payload only goes to :func:`dumps`."""
        result = self.simulator.score(spec, messages, reward_config)
        fragments = result.memo.get("wire")
        if fragments is None:
            fragments = result.memo["wire"] = (
                RawJSON(dumps(result.scores)),
                RawJSON(dumps(result.score_breakdown)),
            )
        scores, breakdown = cast(tuple[RawJSON, RawJSON], fragments)
        return account.visible_scores({"reward": result.reward}, scores, breakdown)

    # ------------------------------------------------------------------ endpoints

    def catalog(self, account: Account) -> dict[str, Any]:
        """``GET /catalog``: the collections this key subscribes to."""
        cached = self._catalogs.get(account.collections)
        if cached is None:
            catalog = self.simulator.catalog(account.collections)
            cached = catalog.model_dump(exclude_none=True, exclude={"request_id"})
            self._catalogs[account.collections] = cached
        return dict(cached)

    def create_episode(self, account: Account, request: CreateEpisodeRequest) -> dict[str, Any]:
        """``POST /episodes``."""
        spec = self.scenario(account, request.collection_slug, request.scenario_slug)
        seed = _seed_from(request.config)
        session = self.simulator.start(spec, seed)
        episode = self.episodes.create(
            account, spec, session, seed=seed, score_turns=request.score_turns
        )
        return {
            "episode_id": episode.id,
            "initial_observation": {"role": "assistant", "content": session.opening},
            "tools": self._tool_list(spec),
        }

    def submit_turn(self, account: Account, episode_id: str, turn: TurnInput) -> dict[str, Any]:
        """``POST /episodes/{id}/turns``: diff, persona reply, scoring, max turns."""
        raw_messages, reward_config = turn
        episode = self.episodes.get(episode_id, account)
        if episode.complete or episode.session is None:
            raise ApiError(400, EPISODE_COMPLETE)
        start = new_messages_start(episode, raw_messages)
        new_raw = raw_messages[start:]
        try:
            new = _NewMessages.model_validate({"messages": new_raw}).messages
        except ValidationError as error:
            raise ApiError(400, describe_validation_error(error, index_offset=start)) from None

        conversation = episode.conversation
        committed = len(conversation)
        conversation.extend(new)
        episode.wire.extend(new_raw)
        episode.persona.extend([False] * len(new_raw))
        try:
            reply = episode.session.reply(conversation)
            episode.add_persona_message(reply.content)
            payload: dict[str, Any] = {
                "turn": episode.turn + 1,
                "observation": {"role": "assistant", "content": reply.content},
            }
            if episode.score_turns:
                scored = self._scored_wire(account, episode.scenario, conversation, reward_config)
                payload.update(scored)
            else:
                payload["reward"] = 0.0
        except BaseException:
            del conversation[committed:]
            del episode.wire[committed:]
            del episode.persona[committed:]
            raise

        episode.turn += 1
        reason = None
        if reply.episode_complete:
            reason = reply.terminal_reason or "completed"
        elif episode.turn >= episode.max_turns:
            reason = "max_turns_reached"
        payload["episode_complete"] = reason is not None
        if reason is not None:
            payload["terminal_reason"] = reason
            self.episodes.finish(episode, reason)
        return payload

    def terminate(self, account: Account, episode_id: str) -> dict[str, Any]:
        """``POST /episodes/{id}/terminate`` (non-standard). Ending an ended episode is not an
        error: the answer reports how it ended."""
        episode = self.episodes.get(episode_id, account)
        if not episode.complete:
            self.episodes.finish(episode, "client_terminated")
        return {
            "episode_id": episode.id,
            "episode_complete": True,
            "terminal_reason": episode.terminal_reason,
        }

    def evaluate(self, account: Account, request: EvaluateRequest) -> dict[str, Any]:
        """``POST /evaluate``."""
        started = time.perf_counter()
        spec = self.scenario(account, request.collection_slug, request.scenario_slug)
        payload = self._scored(account, spec, request.messages, request.reward_config)
        payload["scoring_version"] = self.simulator.scoring_version
        self._normalize(account, payload, request.normalization_key, request.normalization_windows)
        payload["metadata"] = {
            "scenario_name": spec.name,
            "evaluation_time_ms": round((time.perf_counter() - started) * 1000.0, 3),
        }
        return payload

    def _normalize(
        self,
        account: Account,
        payload: dict[str, Any],
        key: str | None,
        windows: list[str] | None,
    ) -> None:
        if key:
            zscores = self.history.record(account.api_key, key, payload["reward"], windows)
            if zscores is not None:
                payload["normalized"] = zscores

    def batch_evaluate(self, account: Account, items: list[dict[str, Any]]) -> dict[str, Any]:
        """``POST /batch/evaluate``: each item succeeds or fails alone, in item order."""
        started = time.perf_counter()
        results = []
        for raw in items:
            try:
                item = BatchEvaluateItem.model_validate(raw)
                spec = self.scenario(account, item.collection_slug, item.scenario_slug)
                result: dict[str, Any] = {"id": item.id, "status": "success"}
                result.update(self._scored(account, spec, item.messages, None))
                self._normalize(account, result, item.normalization_key, item.normalization_windows)
            except ValidationError as error:
                result = _failed(raw["id"], describe_validation_error(error))
            except ApiError as error:
                result = _failed(raw["id"], error.message)
            results.append(result)
        return {
            "results": results,
            "scoring_version": self.simulator.scoring_version,
            "total_time_ms": round((time.perf_counter() - started) * 1000.0, 3),
        }

    def compare(self, account: Account, request: CompareRequest) -> dict[str, Any]:
        """``POST /compare``: both responses scored the same way; a tie within 1e-3."""
        spec = self.scenario(account, request.collection_slug, request.scenario_slug)
        reward_a = self.simulator.score(spec, request.response_a.messages, None).reward
        reward_b = self.simulator.score(spec, request.response_b.messages, None).reward
        margin = abs(reward_a - reward_b)
        winner = "tie" if margin <= TIE_EPSILON else ("a" if reward_a > reward_b else "b")
        return {
            "winner": winner,
            "reward_a": reward_a,
            "reward_b": reward_b,
            "margin": margin,
            "scoring_version": self.simulator.scoring_version,
        }


def _failed(item_id: str, message: str) -> dict[str, Any]:
    return {"id": item_id, "status": "error", "error": message}
