""":class:`AsyncLabsClient`: the async twin of ``LabsClient`` for concurrent rollouts.

By default it sends through the lean asyncio transport of
:mod:`~labs_env.client.connection_pool` (a keep-alive pool sized to the concurrency); with
``transport=`` any ``httpx.AsyncBaseTransport`` is used instead (``httpx.MockTransport`` in
tests, the local server's in-process transport), with ``http_client=`` the caller's
``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

import labs_env.client.requests as rq
from labs_env.client.base import ClientBase, closed_error
from labs_env.client.call import RETRY
from labs_env.client.connection_pool import ConnectionPool
from labs_env.client.failures import TransportFailure, failure_from_httpx
from labs_env.client.flow_control import AsyncFlowControl, AsyncFlowGate, FlowControl
from labs_env.client.retry import sleep_async
from labs_env.client.settings import ClientConfig
from labs_env.models import (
    BatchEvaluateItem,
    BatchEvaluateResult,
)

__all__ = ["AsyncLabsClient"]

T = TypeVar("T")
P = ParamSpec("P")
_METHODS = {"GET": b"GET ", "POST": b"POST "}


def _endpoint(
    build: Callable[P, rq.RequestSpec[T]],
) -> Callable[Concatenate[AsyncLabsClient, P], Coroutine[Any, Any, T]]:
    """The AsyncLabsClient method that sends the request ``build`` makes (see
    :func:`~labs_env.client.requests.endpoint_method`)."""

    async def method(self: AsyncLabsClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._call(build(*args, **kwargs))

    return rq.endpoint_method(method, build)


class AsyncLabsClient(ClientBase[httpx.AsyncBaseTransport, httpx.AsyncClient, AsyncFlowGate]):
    """Asynchronous client for the Labs API; all concurrent calls share one pool and one
    rate-limit state. Same arguments and methods as :class:`labs_env.LabsClient`.

    Args:
        transport: any ``httpx.AsyncBaseTransport``; the caller owns and closes it. Without
            it the client uses its own fast HTTP/1.1 transport (which honours the proxy
            variables, ``verify`` and ``cert`` like the sync client).
        http_client: your own ``httpx.AsyncClient``, used as given (see ``LabsClient``).
        max_connections: connection pool size (default 256); size it to the requests you keep
            in flight.
        flow_control: pace requests with this gate instead of the client's own
            :class:`~labs_env.client.flow_control.AsyncFlowControl` (e.g. one quota shared by
            several processes, see :mod:`labs_env.distributed`).

    Example:
        >>> import asyncio
        >>> async def main():
        ...     async with AsyncLabsClient() as client:
        ...         slugs = ("insurance-claims", "delayed-claim-call")
        ...         episodes = await asyncio.gather(
        ...             *(client.create_episode(*slugs) for _ in range(8))
        ...         )
        >>> asyncio.run(main())  # doctest: +SKIP
    """

    default_max_connections = 256
    http_client_type = httpx.AsyncClient

    def _open(
        self,
        config: ClientConfig,
        transport: httpx.AsyncBaseTransport | None,
        http_client: httpx.AsyncClient | None,
        flow_control: AsyncFlowGate | None,
    ) -> None:
        self._flow = (
            flow_control
            if flow_control is not None
            else AsyncFlowControl(FlowControl(max_block=config.retry_policy.max_rate_limit_wait))
        )
        self._http: httpx.AsyncClient | None = http_client
        self._pool: ConnectionPool | None = None
        if transport is not None:
            self._http = httpx.AsyncClient(transport=transport, trust_env=False)
        elif http_client is None:
            self._pool = ConnectionPool(
                config.host,
                config.port,
                ssl_context=config.tls,
                max_connections=config.max_connections,
                connect_timeout=config.timeout.connect,
                proxy=config.proxy,
            )
            host = config.host if ":" not in config.host else f"[{config.host}]"
            default_port = 443 if config.scheme == "https" else 80
            if config.port != default_port:
                host = f"{host}:{config.port}"
            lines = [f"Host: {host}", "Accept-Encoding: identity"]
            lines += [f"{name}: {value}" for name, value in self._headers.items()]
            prefix = config.path_prefix
            if self._pool.forwarding:  # plain http through a proxy: absolute-form targets
                prefix = f"http://{host}{prefix}"
                if config.proxy is not None and config.proxy.authorization is not None:
                    lines.append(f"Proxy-Authorization: {config.proxy.authorization}")
            self._head_tail = (" HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n").encode("latin-1")
            self._prefix = prefix.encode("latin-1")
            self._read_timeout = config.timeout.read

    # ----------------------------------------------------------------- lifecycle

    async def aclose(self) -> None:
        """Release the connections (idempotent). A caller-supplied transport stays open."""
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.close()

    def close_idle_connections(self) -> None:
        """Close pooled idle connections now; the client stays usable and reconnects.

        Connections belong to the event loop they were opened on: call this on that loop
        before it stops (the vector env does, for a client you lent it).
        """
        if self._pool is not None:
            self._pool.close_idle()

    async def __aenter__(self) -> AsyncLabsClient:
        if self._closed:
            raise closed_error(self)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- sending

    async def _send(
        self, spec: rq.RequestSpec[Any], idempotency_key: str | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        pool = self._pool
        if pool is not None:
            body = spec.body
            parts = [_METHODS[spec.method], self._prefix, spec.path.encode(), self._head_tail]
            if body is not None:
                parts.append(b"Content-Length: %d\r\n" % len(body))
            if idempotency_key is not None:
                parts.append(b"Idempotency-Key: %s\r\n" % idempotency_key.encode())
            parts.append(b"\r\n")
            raw = await pool.request(b"".join(parts), body, self._read_timeout)
            return raw.status, raw.headers, raw.body
        assert self._http is not None
        try:
            response = await self._http.request(**self._httpx_request(spec, idempotency_key))
        except httpx.HTTPError as exc:
            raise failure_from_httpx(exc) from exc
        return response.status_code, response.headers, response.content

    async def _call(self, spec: rq.RequestSpec[T]) -> T:
        call = self._new_call(spec)
        flow = self._flow
        while True:
            ticket = await flow.acquire()
            try:
                status, headers, body = await self._send(spec, call.idempotency_key)
            except TransportFailure as failure:
                flow.finish(ticket, None, None)
                delay = call.after_failure(failure)
            except BaseException:
                flow.finish(ticket, None, None)
                raise
            else:
                flow.finish(ticket, status, headers)
                result = call.after_response(status, headers, body)
                if result is not RETRY:
                    return result
                delay = call.delay
            await sleep_async(delay)

    # ----------------------------------------------------------------- endpoints
    # Each endpoint is defined once, by the request it sends (labs_env.client.requests): its
    # parameters, checks and documentation live there, for both clients.

    catalog = _endpoint(rq.catalog_spec)
    create_episode = _endpoint(rq.create_episode_spec)
    submit_turn = _endpoint(rq.submit_turn_spec)
    evaluate = _endpoint(rq.evaluate_spec)
    compare = _endpoint(rq.compare_spec)
    terminate_episode = _endpoint(rq.terminate_episode_spec)

    async def batch_evaluate(
        self, items: Iterable[BatchEvaluateItem | Mapping[str, Any]]
    ) -> BatchEvaluateResult:
        """See :meth:`LabsClient.batch_evaluate`; the chunks are sent concurrently."""
        checked, specs = rq.batch_evaluate_specs(items)
        outcomes = await asyncio.gather(
            *(self._call(spec) for spec in specs), return_exceptions=True
        )
        parts: list[BatchEvaluateResult] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            parts.append(outcome)
        return rq.merge_batch_results(checked, parts)
