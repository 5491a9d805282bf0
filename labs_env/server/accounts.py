"""API keys and what they buy: subscribed collections, score access level, rate limit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from labs_env.server.wire import ApiError

__all__ = [
    "DEMO_API_KEY",
    "AccessLevel",
    "Account",
    "AccountBook",
    "demo_account",
]

#: The key of the local server's built-in demo account (full access, generous limit).
DEMO_API_KEY = "lab_demo_local"

AccessLevel = Literal["reward_only", "scores", "full"]
_ACCESS_LEVELS: tuple[str, ...] = get_args(AccessLevel)
_UNAUTHORIZED = "Invalid or missing API key"


@dataclass(frozen=True)
class Account:
    """One API key's subscription.

    Attributes:
        api_key: the secret key (never shown in reprs).
        name: a label for logs and docs.
        collections: subscribed collection slugs; ``None`` means every collection served.
        access_level: ``reward_only`` (reward), ``scores`` (+ ``scores``) or ``full``
            (+ ``score_breakdown``).
        rate_limit_per_minute: requests allowed per one-minute window.

    Example:
        >>> Account("lab_team_a", name="team-a", collections=["insurance-claims"], access_level="scores")
        Account(name='team-a', collections=frozenset({'insurance-claims'}), access_level='scores', rate_limit_per_minute=60)
    """  # noqa: E501

    api_key: str = field(repr=False)
    name: str = "account"
    collections: frozenset[str] | None = None
    access_level: AccessLevel = "full"
    rate_limit_per_minute: int = 60

    def __post_init__(self) -> None:
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            raise ValueError("Account.api_key must be a non-empty string")
        if self.access_level not in _ACCESS_LEVELS:
            raise ValueError(
                f"Account.access_level must be one of {list(_ACCESS_LEVELS)}, "
                f"got {self.access_level!r}"
            )
        if not isinstance(self.rate_limit_per_minute, int) or self.rate_limit_per_minute < 1:
            raise ValueError("Account.rate_limit_per_minute must be an integer >= 1")
        if self.collections is not None:
            object.__setattr__(self, "collections", frozenset(self.collections))

    def subscribes_to(self, collection_slug: str) -> bool:
        """Whether this key may use ``collection_slug``."""
        return self.collections is None or collection_slug in self.collections

    def visible_scores(
        self, payload: dict[str, Any], scores: object, score_breakdown: object
    ) -> dict[str, Any]:
        """Add ``scores`` / ``score_breakdown`` to ``payload`` as the access level allows."""
        if self.access_level != "reward_only":
            payload["scores"] = scores
            if self.access_level == "full":
                payload["score_breakdown"] = score_breakdown
        return payload


def demo_account(rate_limit_per_minute: int = 1_000_000) -> Account:
    """The built-in demo account: :data:`DEMO_API_KEY`, every collection, ``full`` access."""
    return Account(
        api_key=DEMO_API_KEY,
        name="demo",
        collections=None,
        access_level="full",
        rate_limit_per_minute=rate_limit_per_minute,
    )


class AccountBook:
    """Looks accounts up from the ``Authorization: Bearer <key>`` header."""

    def __init__(self, accounts: Iterable[Account]) -> None:
        self._by_key: dict[str, Account] = {}
        for account in accounts:
            if account.api_key in self._by_key:
                raise ValueError(f"two accounts share one API key (account {account.name!r})")
            self._by_key[account.api_key] = account
        if not self._by_key:
            raise ValueError("the server needs at least one account")

    def __len__(self) -> int:
        return len(self._by_key)

    def authenticate(self, authorization: str | None) -> Account:
        """The account of a ``Bearer`` header; 401 ``Invalid or missing API key`` otherwise."""
        if not authorization:
            raise ApiError(401, _UNAUTHORIZED)
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(401, _UNAUTHORIZED)
        account = self._by_key.get(key.strip())
        if account is None:
            raise ApiError(401, _UNAUTHORIZED)
        return account
