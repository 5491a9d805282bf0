"""The one place that decides what the other end is: the real service or the local server.

With an API key (given, or ``$LABS_API_KEY``) a client talks to the real service at
``base_url`` (default ``$LABS_URL``, then the public URL). With no key at all it talks to the
embedded local Labs server, in process, through :class:`labs_env.server.LocalTransport` over
the process-wide default server, with the demo key. Nothing else in the client, env or vector
env knows whether the other end is local.

Example:
    >>> from labs_env.connect import make_client
    >>> with make_client() as client:  # no LABS_API_KEY set: the embedded server
    ...     print(len(client.catalog().collections) > 0)
    True
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from labs_env.client import BASE_URL_ENV, AsyncLabsClient, LabsClient
from labs_env.client.api_key import API_KEY_ENV, ApiKey
from labs_env.errors import LabsValidationError

if TYPE_CHECKING:
    from labs_env.server import LabsServer

__all__ = [
    "LOCAL_BASE_URL",
    "is_embedded",
    "make_async_client",
    "make_client",
    "make_local_async_client",
    "make_local_client",
]

#: The base URL the embedded server answers on (never leaves the process).
LOCAL_BASE_URL = "http://labs.local"


def is_embedded(api_key: str | ApiKey | None = None, base_url: str | None = None) -> bool:
    """Whether :func:`make_client` with these arguments would use the embedded server.

    Raises:
        LabsValidationError: a service URL (``base_url`` or ``$LABS_URL``) without a key: an
            error, never a silent fallback to the embedded server.
    """
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if key:
        return False
    if base_url is not None:
        raise LabsValidationError(
            "api_key",
            f"no API key for base_url {base_url!r}",
            f"pass api_key=... or set {API_KEY_ENV} (omit both for the embedded local server)",
        )
    if os.environ.get(BASE_URL_ENV):
        raise LabsValidationError(
            "api_key",
            f"{BASE_URL_ENV} is set ({os.environ[BASE_URL_ENV]!r}) but {API_KEY_ENV} is not",
            f"set {API_KEY_ENV} for that service, or unset {BASE_URL_ENV} for the embedded "
            "local server (the CLI: --local)",
        )
    return True


def make_client(
    api_key: str | ApiKey | None = None, base_url: str | None = None, **kwargs: Any
) -> LabsClient:
    """A :class:`LabsClient` for the real service (with a key) or the embedded server.

    Args:
        api_key: the key; default ``$LABS_API_KEY``. With neither, the embedded server.
        base_url: the service URL (needs a key); default ``$LABS_URL``, then the public URL.
        **kwargs: passed on to :class:`LabsClient` (``timeout``, ``max_retries``, ...).
    """
    if is_embedded(api_key, base_url):
        return make_local_client(**kwargs)
    return LabsClient(api_key=_plain(api_key), base_url=base_url, **kwargs)


def make_async_client(
    api_key: str | ApiKey | None = None, base_url: str | None = None, **kwargs: Any
) -> AsyncLabsClient:
    """The :class:`AsyncLabsClient` counterpart of :func:`make_client`."""
    if is_embedded(api_key, base_url):
        return make_local_async_client(**kwargs)
    return AsyncLabsClient(api_key=_plain(api_key), base_url=base_url, **kwargs)


def make_local_client(*, server: LabsServer | None = None, **kwargs: Any) -> LabsClient:
    """A :class:`LabsClient` on the embedded server, whatever the environment says.

    Args:
        server: the server (default: the process-wide default server).
        **kwargs: passed on to :class:`LabsClient`.
    """
    from labs_env.server import DEMO_API_KEY, LocalTransport

    _check_local(kwargs)
    return LabsClient(
        api_key=DEMO_API_KEY, base_url=LOCAL_BASE_URL, transport=LocalTransport(server), **kwargs
    )


def make_local_async_client(*, server: LabsServer | None = None, **kwargs: Any) -> AsyncLabsClient:
    """The :class:`AsyncLabsClient` counterpart of :func:`make_local_client`."""
    from labs_env.server import DEMO_API_KEY, LocalTransport

    _check_local(kwargs)
    return AsyncLabsClient(
        api_key=DEMO_API_KEY, base_url=LOCAL_BASE_URL, transport=LocalTransport(server), **kwargs
    )


#: Network settings, and their defaults: meaningless for the in-process server.
_NETWORK_ONLY: dict[str, object] = {"http_client": None, "verify": True, "cert": None}


def _check_local(kwargs: dict[str, Any]) -> None:
    """Refuse network settings for the embedded server (they would be ignored)."""
    for name, default in _NETWORK_ONLY.items():
        if name in kwargs and kwargs[name] is not default:
            raise LabsValidationError(
                name,
                "does not apply to the embedded local server (it is reached in process)",
                f"pass api_key=... or set {API_KEY_ENV} to reach the service, or drop {name}=",
            )


def _plain(api_key: str | ApiKey | None) -> str | None:
    # The clients wrap the key again at once; it is never stored as a plain string.
    return api_key.reveal() if isinstance(api_key, ApiKey) else api_key
