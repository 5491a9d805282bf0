"""What both clients share: their settings, retry budget, flow control and closed flag."""

from __future__ import annotations

from typing import Any, TypeVar

from labs_env.client.api_key import ApiKey
from labs_env.client.call import Call
from labs_env.client.flow_control import RateLimitSnapshot
from labs_env.client.requests import RequestSpec
from labs_env.client.retry import RetryBudget
from labs_env.client.settings import ClientConfig
from labs_env.errors import LabsValidationError

__all__ = ["ClientBase", "closed_error"]

T = TypeVar("T")


def closed_error(client: object) -> LabsValidationError:
    """The error for using a closed client."""
    name = type(client).__name__
    return LabsValidationError(
        "client", f"this {name} is closed", f"create a new {name} (or use it in a with block)"
    )


class ClientBase:
    """The state and views both clients share; they differ only in how they send and sleep.

    Subclasses call :meth:`_setup` with their :meth:`ClientConfig.create` first, then set
    ``_flow`` (their flow control).
    """

    _config: ClientConfig
    _budget: RetryBudget | None
    _flow: Any  # SyncFlowControl or an AsyncFlowGate
    _closed: bool

    def _setup(self, config: ClientConfig) -> ClientConfig:
        """Adopt the validated settings; one retry budget for all calls of this client."""
        self._config = config
        self._budget = config.retry_policy.new_budget()
        self._closed = False
        return config

    @property
    def base_url(self) -> str:
        """The service URL requests go to."""
        return self._config.base_url

    @property
    def api_key(self) -> ApiKey:
        """The key, masked in every repr (``.reveal()`` gives the text)."""
        return self._config.api_key

    @property
    def rate_limit(self) -> RateLimitSnapshot:
        """The key's quota as last reported by the service (read-only snapshot)."""
        snapshot: RateLimitSnapshot = self._flow.snapshot()
        return snapshot

    @property
    def retry_budget(self) -> RetryBudget | None:
        """The retry budget shared by all calls of this client (``None``: disabled)."""
        return self._budget

    @property
    def closed(self) -> bool:
        """Whether the client was closed (a closed client refuses calls)."""
        return self._closed

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={self.api_key!r})"

    def _new_call(self, spec: RequestSpec[T]) -> Call[T]:
        """The retry state of one logical call (raises if the client is closed)."""
        if self._closed:
            raise closed_error(self)
        config = self._config
        return Call(
            spec,
            policy=config.retry_policy,
            max_retries=config.max_retries,
            retry_unsafe=config.retry_unsafe_turns,
            key=config.api_key,
            budget=self._budget,
        )
