"""The episode store: ids, turn counters, expiry, and which messages of a turn body are new.

A turn body may carry the full history (what our client sends) or only the new messages
(what the service's reference describes). :func:`new_messages_start` tells them apart in
O(stored messages) dictionary comparisons without re-validating the stored history: if the
body starts with the stored conversation -- persona messages may come back labelled ``user``
or ``assistant``, and system messages may precede the persona's opening -- only the remainder
is new; otherwise all of it is new (except a leading echo of the persona's latest reply).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from labs_env.models import MAX_TURNS, Message
from labs_env.server.accounts import Account
from labs_env.server.simulation import PersonaSession, ScenarioSpec
from labs_env.server.wire import ApiError

__all__ = ["Episode", "EpisodeStore", "new_messages_start"]

EPISODE_NOT_FOUND = "Episode not found"
_MESSAGE_KEYS = frozenset(("role", "content", "tool_calls"))
_PERSONA_ROLES = ("user", "assistant")


@dataclass(eq=False, slots=True)
class Episode:
    """One live (or finished) episode.

    ``conversation`` is the client-form history (persona ``user``, agent ``assistant``);
    ``wire`` holds the same messages as plain dicts for cheap comparison with turn bodies, and
    ``persona[i]`` says whether message ``i`` came from the persona.
    """

    id: str
    owner: Account
    scenario: ScenarioSpec
    max_turns: int
    score_turns: bool
    seed: int
    session: PersonaSession | None
    last_active: float
    conversation: list[Message] = field(default_factory=list)
    wire: list[dict[str, Any]] = field(default_factory=list)
    persona: list[bool] = field(default_factory=list)
    turn: int = 0
    terminal_reason: str | None = None

    @property
    def complete(self) -> bool:
        """Whether the episode has ended (any terminal reason)."""
        return self.terminal_reason is not None

    def add_persona_message(self, content: str) -> None:
        """Append a persona message (client form: role ``user``)."""
        wire = {"role": "user", "content": content}
        self.conversation.append(Message.model_validate(wire))  # faster than model_construct
        self.wire.append(wire)
        self.persona.append(True)


def _matches(raw: Any, stored: dict[str, Any], persona: bool) -> bool:
    if raw == stored:
        return True
    if type(raw) is not dict or not raw.keys() <= _MESSAGE_KEYS:
        return False
    if persona:
        return (
            raw.get("content") == stored["content"]
            and raw.get("role") in _PERSONA_ROLES
            and not raw.get("tool_calls")
        )
    return _normalized(raw) == _normalized(stored)


def _normalized(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if value is not None and value != []}


def _is_system(raw: Any) -> bool:
    return type(raw) is dict and raw.get("role") == "system"


def new_messages_start(episode: Episode, raw_messages: Sequence[Any]) -> int:
    """Index of the first new message in a turn body's ``messages``.

    Raises:
        ApiError: 400 when the body starts like the stored conversation but departs from it,
            or repeats it without adding a message.
    """
    stored, persona = episode.wire, episode.persona
    n_stored, n_raw = len(stored), len(raw_messages)
    if n_raw > n_stored and raw_messages[:n_stored] == stored:
        return n_stored  # the usual full-history body: one C-level list comparison
    i = j = 0
    while j < n_stored and i < n_raw:
        if _matches(raw_messages[i], stored[j], persona[j]):
            i += 1
            j += 1
        elif j == 0 and _is_system(raw_messages[i]):
            i += 1  # a system prompt kept in front of the persona's opening
        else:
            break
    if j == 0:
        # New messages only -- possibly preceded by the persona's latest reply, echoed back.
        if n_raw > 1 and persona[-1] and _matches(raw_messages[0], stored[-1], True):
            return 1
        return 0
    if j < n_stored:
        raise ApiError(
            400,
            f"messages[{i}] departs from the episode's conversation ({n_stored} messages so "
            "far): send the full history unchanged, or only the new messages",
        )
    if i == n_raw:
        raise ApiError(
            400,
            f"messages holds no new message: it repeats the episode's {n_stored} messages; "
            "append your reply",
        )
    return i


class EpisodeStore:
    """Episodes by id, expiring after ``ttl_s`` of inactivity.

    Memory is bounded: finished episodes drop their conversation and persona, and beyond
    ``max_episodes`` the least recently active episodes are forgotten.

    Args:
        clock: Unix time in seconds (injectable).
        ttl_s: inactivity after which an episode is gone (``Episode not found``).
        max_episodes: the most episodes kept.
    """

    def __init__(
        self, clock: Callable[[], float], ttl_s: float = 86_400.0, max_episodes: int = 100_000
    ) -> None:
        if max_episodes < 1:
            raise ValueError("max_episodes must be >= 1")
        self._clock = clock
        self._ttl_s = ttl_s
        self._max_episodes = max_episodes
        self._episodes: OrderedDict[str, Episode] = OrderedDict()  # least recently active first

    def __len__(self) -> int:
        return len(self._episodes)

    def create(
        self,
        owner: Account,
        scenario: ScenarioSpec,
        session: PersonaSession,
        *,
        seed: int,
        score_turns: bool,
    ) -> Episode:
        """Store a new episode whose conversation starts with the persona's opening."""
        now = self._clock()
        self._sweep(now)
        episode_id = "ep_" + secrets.token_hex(12)
        episode = Episode(
            id=episode_id,
            owner=owner,
            scenario=scenario,
            max_turns=max(1, min(int(scenario.max_turns), MAX_TURNS)),
            score_turns=score_turns,
            seed=seed,
            session=session,
            last_active=now,
        )
        episode.add_persona_message(session.opening)
        self._episodes[episode_id] = episode
        while len(self._episodes) > self._max_episodes:
            self._episodes.popitem(last=False)
        return episode

    def get(self, episode_id: str, owner: Account) -> Episode:
        """The episode, marked active now; 404 ``Episode not found`` if unknown, expired or
        owned by another key."""
        episode = self._episodes.get(episode_id)
        if episode is None or episode.owner is not owner:
            raise ApiError(404, EPISODE_NOT_FOUND)
        now = self._clock()
        if now - episode.last_active > self._ttl_s:
            self._sweep(now)
            raise ApiError(404, EPISODE_NOT_FOUND)
        episode.last_active = now
        self._episodes.move_to_end(episode_id)
        return episode

    def finish(self, episode: Episode, terminal_reason: str) -> None:
        """End the episode and release what only a live episode needs."""
        episode.terminal_reason = terminal_reason
        episode.session = None
        episode.conversation = []
        episode.wire = []
        episode.persona = []

    def _sweep(self, now: float) -> None:
        episodes = self._episodes
        while episodes:
            oldest = next(iter(episodes.values()))
            if now - oldest.last_active <= self._ttl_s:
                break
            episodes.popitem(last=False)
