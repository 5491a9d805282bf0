"""The synchronous client, :class:`LabsClient` (thread-safe; build it once and reuse it)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

import labs_env.client.requests as rq
from labs_env.client.base import ClientBase, closed_error
from labs_env.client.call import RETRY
from labs_env.client.failures import failure_from_httpx
from labs_env.client.flow_control import FlowControl, SyncFlowControl
from labs_env.client.retry import sleep_sync
from labs_env.client.settings import ClientConfig
from labs_env.client.sync_transport import GuardedTransport
from labs_env.models import (
    BatchEvaluateItem,
    BatchEvaluateResult,
)

__all__ = ["LabsClient"]

T = TypeVar("T")
P = ParamSpec("P")
logger = logging.getLogger("labs_env")


def _endpoint(build: Callable[P, rq.RequestSpec[T]]) -> Callable[Concatenate[LabsClient, P], T]:
    """The LabsClient method that sends the request ``build`` makes (see
    :func:`~labs_env.client.requests.endpoint_method`)."""

    def method(self: LabsClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._call(build(*args, **kwargs))

    return rq.endpoint_method(method, build)


class LabsClient(ClientBase[httpx.BaseTransport, httpx.Client, SyncFlowControl]):
    """Synchronous client for the Labs API (thread-safe; build it once and reuse it).

    Args:
        api_key: the key (``lab_...``); defaults to ``$LABS_API_KEY``.
        base_url: defaults to ``$LABS_URL``, then ``https://labs.tacitintelligence.co``.
        timeout: seconds per attempt, an ``httpx.Timeout``, or ``None``. An attempt is
            bounded as a whole: connecting within the ``connect`` timeout, then the request
            and the complete response within the ``read`` timeout (with the client's own
            transport; a ``transport=`` or ``http_client=`` bounds each read only).
        max_retries: retries after the first attempt (see :class:`RetryPolicy` for the rules).
        transport: any ``httpx.BaseTransport`` (e.g. ``httpx.MockTransport`` or the local
            server's ``LocalTransport``); the caller owns and closes it.
        http_client: your own ``httpx.Client`` (proxies, mounts, event hooks, TLS, limits);
            the client adds the base URL, key, user agent, timeout and idempotency key to
            each request and never closes it. Not together with ``transport``.
        verify: TLS verification: ``True`` (the system's CA store, else certifi's), ``False``,
            the path of a CA bundle, or an ``ssl.SSLContext``.
        cert: a client certificate for mutual TLS: a PEM file with certificate and key, or a
            ``(certificate, key)`` pair of paths.
        retry_policy: backoff shape, total deadline and the retry budget (one
            :class:`RetryBudget` per client, shared by all its calls; see ``retry_budget``).
        retry_unsafe_turns: also resend a turn whose outcome is unknown (timeouts, dropped
            connections, 5xx other than 503). Off by default: a service that ignores the
            ``Idempotency-Key`` would record the turn twice.
        allow_insecure_http: permit ``http://`` to a non-loopback host.
        max_connections: connection pool size (default 64).
        flow_control: pace requests with this
            :class:`~labs_env.client.flow_control.SyncFlowControl` instead of a private one
            (several clients sharing one key's quota).

    Proxies: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` are read once, when
    the client is built (see :mod:`labs_env.client.proxy`); http(s) proxies only.

    Example:
        >>> import httpx, json
        >>> def handler(request):
        ...     return httpx.Response(200, json={"collections": [], "request_id": "req_1"})
        >>> client = LabsClient(api_key="lab_test", base_url="https://labs.example",
        ...                     transport=httpx.MockTransport(handler))
        >>> client.catalog().request_id
        'req_1'
    """

    default_max_connections = 64
    http_client_type = httpx.Client

    def _open(
        self,
        config: ClientConfig,
        transport: httpx.BaseTransport | None,
        http_client: httpx.Client | None,
        flow_control: SyncFlowControl | None,
    ) -> None:
        self._owns_http = transport is None and http_client is None
        if http_client is None:
            http_client = httpx.Client(
                timeout=config.timeout,
                transport=transport
                or GuardedTransport(
                    tls=config.tls, proxy=config.proxy, max_connections=config.max_connections
                ),
                trust_env=False,
            )
        self._http = http_client
        self._flow = flow_control or SyncFlowControl(
            FlowControl(max_block=config.retry_policy.max_rate_limit_wait)
        )

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Release the connections (idempotent). A caller's transport or http client stays
        open."""
        if self._closed:
            return
        self._closed = True
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> LabsClient:
        if self._closed:
            raise closed_error(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- sending

    def _call(self, spec: rq.RequestSpec[T]) -> T:
        call = self._new_call(spec)
        request = self._httpx_request(spec, call.idempotency_key)
        while True:
            ticket = self._flow.acquire()
            try:
                response = self._http.request(**request)
            except httpx.HTTPError as exc:
                self._flow.finish(ticket, None, None)
                delay = call.after_failure(failure_from_httpx(exc))
            except BaseException:
                self._flow.finish(ticket, None, None)
                raise
            else:
                self._flow.finish(ticket, response.status_code, response.headers)
                result = call.after_response(
                    response.status_code, response.headers, response.content
                )
                if result is not RETRY:
                    return result
                delay = call.delay
            sleep_sync(delay)

    # ----------------------------------------------------------------- endpoints
    # Each endpoint is defined once, by the request it sends (labs_env.client.requests): its
    # parameters, checks and documentation live there, for both clients.

    catalog = _endpoint(rq.catalog_spec)
    create_episode = _endpoint(rq.create_episode_spec)
    submit_turn = _endpoint(rq.submit_turn_spec)
    evaluate = _endpoint(rq.evaluate_spec)
    compare = _endpoint(rq.compare_spec)
    terminate_episode = _endpoint(rq.terminate_episode_spec)

    def batch_evaluate(
        self, items: Iterable[BatchEvaluateItem | Mapping[str, Any]]
    ) -> BatchEvaluateResult:
        """Score any number of conversations (sent <= 100 per request); results keep item order.

        A failed item comes back with ``status="error"`` (never raised, never a reward).
        """
        checked, specs = rq.batch_evaluate_specs(items)
        return rq.merge_batch_results(checked, [self._call(spec) for spec in specs])
