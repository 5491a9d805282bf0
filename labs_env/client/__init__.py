"""The typed Labs API clients: :class:`LabsClient` (sync) and :class:`AsyncLabsClient`.

Both share one sans-IO core and differ only in how they send and sleep:

- :mod:`~labs_env.client.settings` — key, base URL, timeouts, headers, checked once;
- :mod:`~labs_env.client.tls` — ``verify=`` / ``cert=`` as TLS contexts (certifi as fallback);
- :mod:`~labs_env.client.proxy` — ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY``, read once;
- :mod:`~labs_env.client.requests` — argument validation and request building per endpoint;
- :mod:`~labs_env.client.call` — one logical call: response reading, error mapping, retry
  decisions (with :mod:`~labs_env.client.retry` and :mod:`~labs_env.client.failures`);
- :mod:`~labs_env.client.flow_control` — pacing from the ``X-RateLimit-*`` headers;
- :mod:`~labs_env.client.connection_pool` — the async client's lean HTTP/1.1 transport;
- :mod:`~labs_env.client.sync_transport` — the sync client's httpx transport (a deadline per
  response, no stale answers);
- :mod:`~labs_env.client.api_key` — the key, masked everywhere.

Example:
    >>> from labs_env import LabsClient
    >>> with LabsClient() as client:  # doctest: +SKIP
    ...     episode = client.create_episode("insurance-claims", "delayed-claim-call")
    ...     result = client.submit_turn(
    ...         episode.episode_id, [{"role": "assistant", "content": "How can I help?"}]
    ...     )
"""

from labs_env.client.api_key import API_KEY_ENV, ApiKey
from labs_env.client.async_client import AsyncLabsClient
from labs_env.client.flow_control import RateLimitSnapshot
from labs_env.client.retry import RetryBudget, RetryPolicy
from labs_env.client.settings import BASE_URL_ENV, DEFAULT_BASE_URL
from labs_env.client.sync_client import LabsClient

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "ApiKey",
    "AsyncLabsClient",
    "LabsClient",
    "RateLimitSnapshot",
    "RetryBudget",
    "RetryPolicy",
]
