"""What both clients share: their settings, retry budget, flow control and closed flag."""

from __future__ import annotations

from typing import ClassVar, Generic, Protocol, TypeVar

from labs_env.client.api_key import ApiKey
from labs_env.client.call import Call
from labs_env.client.flow_control import RateLimitSnapshot
from labs_env.client.requests import RequestSpec
from labs_env.client.retry import RetryBudget, RetryPolicy
from labs_env.client.settings import ClientConfig, TimeoutArg
from labs_env.errors import LabsValidationError

__all__ = ["ClientBase", "closed_error"]

T = TypeVar("T")
TransportT = TypeVar("TransportT")
FlowT = TypeVar("FlowT", bound="FlowGate")


class FlowGate(Protocol):
    """What the client views of either flow control need (both kinds have it)."""

    def snapshot(self) -> RateLimitSnapshot:
        """The quota as currently known."""
        ...


def closed_error(client: object) -> LabsValidationError:
    """The error for using a closed client."""
    name = type(client).__name__
    return LabsValidationError(
        "client", f"this {name} is closed", f"create a new {name} (or use it in a with block)"
    )


class ClientBase(Generic[TransportT, FlowT]):
    """The constructor, state and views both clients share; they differ only in how they open
    their transport, send and sleep (see :class:`~labs_env.LabsClient` for the arguments).

    Subclasses implement :meth:`_open` and set :attr:`default_max_connections`.
    """

    #: The pool size when ``max_connections`` is not given.
    default_max_connections: ClassVar[int]
    _flow: FlowT

    def __init__(
        self,
        api_key: str | ApiKey | None = None,
        base_url: str | None = None,
        timeout: TimeoutArg = 30.0,
        max_retries: int = 3,
        *,
        transport: TransportT | None = None,
        retry_policy: RetryPolicy | None = None,
        retry_unsafe_turns: bool = False,
        allow_insecure_http: bool = False,
        max_connections: int | None = None,
        flow_control: FlowT | None = None,
    ) -> None:
        self._config = ClientConfig.create(
            api_key,
            base_url,
            timeout,
            max_retries,
            retry_policy,
            retry_unsafe_turns,
            allow_insecure_http,
            custom_transport=transport is not None,
            max_connections=(
                self.default_max_connections if max_connections is None else max_connections
            ),
        )
        self._budget = self._config.retry_policy.new_budget()
        self._closed = False
        self._open(self._config, transport, flow_control)

    def _open(
        self, config: ClientConfig, transport: TransportT | None, flow_control: FlowT | None
    ) -> None:
        """Build the transport and flow control (``transport``: the caller's, not owned)."""
        raise NotImplementedError

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
        return self._flow.snapshot()

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
