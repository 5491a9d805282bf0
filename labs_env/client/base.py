"""What both clients share: their settings, retry budget, flow control and closed flag."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Protocol, TypeVar

from labs_env.client.api_key import ApiKey
from labs_env.client.call import Call
from labs_env.client.flow_control import RateLimitSnapshot
from labs_env.client.requests import RequestSpec
from labs_env.client.retry import RetryBudget, RetryPolicy
from labs_env.client.settings import ClientConfig, Stack, TimeoutArg
from labs_env.client.tls import CertArg, VerifyArg
from labs_env.errors import LabsValidationError

__all__ = ["ClientBase", "closed_error"]

T = TypeVar("T")
TransportT = TypeVar("TransportT")
HttpT = TypeVar("HttpT")
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


class ClientBase(Generic[TransportT, HttpT, FlowT]):
    """The constructor, state and views both clients share; they differ only in how they open
    their transport, send and sleep (see :class:`~labs_env.LabsClient` for the arguments).

    Subclasses implement :meth:`_open` and set :attr:`default_max_connections` and
    :attr:`http_client_type`.
    """

    #: The pool size when ``max_connections`` is not given.
    default_max_connections: ClassVar[int]
    #: The class of httpx client ``http_client=`` takes.
    http_client_type: ClassVar[type]
    _flow: FlowT

    def __init__(
        self,
        api_key: str | ApiKey | None = None,
        base_url: str | None = None,
        timeout: TimeoutArg = 30.0,
        max_retries: int = 3,
        *,
        transport: TransportT | None = None,
        http_client: HttpT | None = None,
        verify: VerifyArg = True,
        cert: CertArg | None = None,
        retry_policy: RetryPolicy | None = None,
        retry_unsafe_turns: bool = False,
        allow_insecure_http: bool = False,
        max_connections: int | None = None,
        flow_control: FlowT | None = None,
    ) -> None:
        stack = self._stack(transport, http_client)
        self._config = ClientConfig.create(
            api_key,
            base_url,
            timeout,
            max_retries,
            retry_policy,
            retry_unsafe_turns,
            allow_insecure_http,
            max_connections=(
                self.default_max_connections if max_connections is None else max_connections
            ),
            stack=stack,
            verify=verify,
            cert=cert,
        )
        self._budget = self._config.retry_policy.new_budget()
        self._closed = False
        self._headers = self._config.headers()
        self._open(self._config, transport, http_client, flow_control)

    def _stack(self, transport: TransportT | None, http_client: HttpT | None) -> Stack:
        if http_client is None:
            return "own" if transport is None else "transport"
        if transport is not None:
            raise LabsValidationError(
                "http_client",
                "cannot be combined with transport=",
                "pass one: your transport inside your http_client, or transport= alone",
            )
        expected = self.http_client_type
        if not isinstance(http_client, expected):
            raise LabsValidationError(
                "http_client",
                f"{type(self).__name__} needs an {expected.__module__.split('.')[0]}."
                f"{expected.__name__}, got {type(http_client).__name__}",
                f"pass an {expected.__name__} you created (you keep owning and closing it)",
            )
        return "http_client"

    def _open(
        self,
        config: ClientConfig,
        transport: TransportT | None,
        http_client: HttpT | None,
        flow_control: FlowT | None,
    ) -> None:
        """Build the transport and flow control (``transport``, ``http_client``: the
        caller's, never closed by the client)."""
        raise NotImplementedError

    def _httpx_request(self, spec: RequestSpec[Any], idempotency_key: str | None) -> dict[str, Any]:
        """The arguments of ``request()`` of any httpx client (the client's own or the
        caller's): absolute URL, the client's headers and timeout, on every request."""
        headers = self._headers
        if idempotency_key is not None:
            headers = {**headers, "Idempotency-Key": idempotency_key}
        return {
            "method": spec.method,
            "url": self._config.base_url + spec.path,
            "content": spec.body,
            "headers": headers,
            "timeout": self._config.timeout,
        }

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
