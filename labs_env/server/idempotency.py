"""``Idempotency-Key`` support: a retried request gets the stored answer, not a second effect.

Entries are keyed by (API key, Idempotency-Key) and remember a fingerprint of the request
(method, path, body) plus the response. The same key with the same request replays the
response; the same key with a different request is a 400. Memory is bounded: at most
``max_entries`` entries (least recently stored dropped first), each kept for ``ttl_s``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from labs_env.server.wire import ApiError

__all__ = ["IdempotencyStore", "StoredResponse", "fingerprint"]

MISMATCH_MESSAGE = (
    "Idempotency-Key was already used with a different request; use a new key for a new request"
)


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    """A digest identifying one request."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(method.encode())
    digest.update(b" ")
    digest.update(path.encode())
    digest.update(b"\n")
    digest.update(body)
    return digest.digest()


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a replay needs: the status, the body and the original request id."""

    status: int
    body: bytes
    request_id: str


class IdempotencyStore:
    """Bounded store of responses by (scope, Idempotency-Key).

    Args:
        clock: Unix time in seconds.
        max_entries: the most entries kept.
        ttl_s: how long an entry stays valid.
    """

    def __init__(
        self, clock: Callable[[], float], max_entries: int = 20_000, ttl_s: float = 86_400.0
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._clock = clock
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._entries: OrderedDict[tuple[str, str], tuple[float, bytes, StoredResponse]] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, scope: str, key: str, request_fingerprint: bytes) -> StoredResponse | None:
        """The stored response for a repeat of the same request, or ``None`` for a new key.

        Raises:
            ApiError: 400 when the key was used with a different request.
        """
        entry = self._entries.get((scope, key))
        if entry is None:
            return None
        stored_at, stored_fingerprint, response = entry
        if self._clock() - stored_at > self._ttl_s:
            del self._entries[(scope, key)]
            return None
        if stored_fingerprint != request_fingerprint:
            raise ApiError(400, MISMATCH_MESSAGE)
        return response

    def store(
        self, scope: str, key: str, request_fingerprint: bytes, response: StoredResponse
    ) -> None:
        """Remember ``response`` for (scope, key), evicting the oldest entries when full."""
        entries = self._entries
        entries[(scope, key)] = (self._clock(), request_fingerprint, response)
        entries.move_to_end((scope, key))
        while len(entries) > self._max_entries:
            entries.popitem(last=False)
