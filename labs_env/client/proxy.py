"""The proxy a client's requests go through, from the environment, read once per client.

The variables are read as urllib and httpx read them: ``https_proxy`` / ``HTTPS_PROXY`` for
https URLs, ``http_proxy`` / ``HTTP_PROXY`` for http ones, ``all_proxy`` / ``ALL_PROXY`` for
either; the lower-case name wins (an empty one disables the variable), and ``HTTP_PROXY`` is
ignored in a CGI process (``REQUEST_METHOD`` set). ``NO_PROXY`` lists hosts that go direct:
``*`` (every host), a domain (``example.com``: the domain and its subdomains; ``.example.com``
or ``*.example.com``: its subdomains), an IP address or a CIDR network, each optionally with
``:port`` or a ``scheme://`` prefix.

Supported proxies: ``http://`` and ``https://`` (TLS to the proxy), with credentials in the
URL (``http://user:password@proxy:3128``, percent-encoded). Another scheme (``socks5://``) is
an error naming the variable: requests never bypass a proxy silently.

Example:
    >>> route = proxy_for("https", "labs.example", 443, {"HTTPS_PROXY": "http://u:p@proxy:3128"})
    >>> route
    ProxyRoute('http://proxy:3128' from HTTPS_PROXY)
    >>> route.authorization
    'Basic dTpw'
    >>> no_proxy = {"HTTPS_PROXY": "proxy:3128", "NO_PROXY": ".example"}
    >>> proxy_for("https", "labs.example", 443, no_proxy) is None
    True
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from labs_env.errors import LabsValidationError

__all__ = ["ProxyRoute", "bypasses_proxy", "proxy_for"]

_SUPPORTED = ("http", "https")


@dataclass(frozen=True)
class ProxyRoute:
    """A proxy to send through: where it is, and its credentials (never shown).

    Attributes:
        url: ``scheme://host:port``, without credentials (safe to print).
        variable: the environment variable it came from.
        authorization: the ``Proxy-Authorization`` value (``Basic ...``), if the URL had
            credentials.
    """

    scheme: str
    host: str
    port: int
    variable: str
    credentials: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def authorization(self) -> str | None:
        if self.credentials is None:
            return None
        user, password = self.credentials
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")

    def __repr__(self) -> str:
        return f"ProxyRoute({self.url!r} from {self.variable})"


def _variables(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``{"https": (value, variable name), ...}`` as ``urllib.request.getproxies_environment``
    reads them (the lower-case variable wins; an empty one unsets)."""
    found: dict[str, tuple[str, str]] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            found[name.lower()[:-6]] = (value, name)
    if "REQUEST_METHOD" in environ:  # CGI: HTTP_PROXY may come from a request's Proxy header
        found.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):
            if value:
                found[name.lower()[:-6]] = (value, name)
            else:
                found.pop(name.lower()[:-6], None)
    return found


def proxy_for(
    scheme: str, host: str, port: int, environ: Mapping[str, str] | None = None
) -> ProxyRoute | None:
    """The proxy for requests to ``scheme://host:port`` (``None``: go direct)."""
    variables = _variables(os.environ if environ is None else environ)
    chosen = variables.get(scheme) or variables.get("all")
    if chosen is None:
        return None
    no_proxy = variables.get("no")
    if no_proxy is not None and bypasses_proxy(no_proxy[0], scheme, host, port):
        return None
    return _parse(*chosen)


def _parse(value: str, variable: str) -> ProxyRoute:
    text = value.strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    scheme = parts.scheme.lower()
    if scheme not in _SUPPORTED:
        raise LabsValidationError(
            variable,
            f"{scheme}:// proxies are not supported by the Labs clients' transports",
            "use an http:// or https:// proxy, or pass your own "
            "http_client=httpx.Client(proxy=...) (for socks: pip install 'httpx[socks]')",
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1:
        raise LabsValidationError(
            variable,
            "is not a proxy URL with a host (and a valid port)",
            "set it to e.g. http://proxy.example:3128",
        )
    credentials = None
    if parts.username is not None:
        credentials = (unquote(parts.username), unquote(parts.password or ""))
    return ProxyRoute(
        scheme=scheme,
        host=parts.hostname,
        port=port or (443 if scheme == "https" else 80),
        variable=variable,
        credentials=credentials,
    )


def bypasses_proxy(no_proxy: str, scheme: str, host: str, port: int) -> bool:
    """Whether ``NO_PROXY`` (its value ``no_proxy``) sends ``scheme://host:port`` direct."""
    host = host.lower().strip("[]")
    for entry in no_proxy.split(","):
        entry = entry.strip().lower()
        if entry == "*":
            return True
        if "://" in entry:
            entry_scheme, _, entry = entry.partition("://")
            if entry_scheme not in ("all", scheme):
                continue
        entry, entry_port = _split_port(entry)
        if not entry or (entry_port is not None and entry_port != port):
            continue
        if _host_matches(entry, host):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host[:port]``, ``[v6][:port]`` or a bare IPv6 address."""
    if entry.startswith("["):
        address, _, rest = entry[1:].partition("]")
        return address, int(rest[1:]) if rest[1:].isdigit() else None
    name, colon, port = entry.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        return name, int(port)
    return entry, None


def _host_matches(entry: str, host: str) -> bool:
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        pass
    else:
        try:
            return ipaddress.ip_address(host) in network
        except ValueError:
            return False
    if entry.startswith("*."):  # subdomains only
        return host.endswith(entry[1:])
    if entry.startswith("."):  # subdomains only (httpx reads it as *.domain)
        return host.endswith(entry)
    domain = entry.removeprefix("*")
    return host == domain or host.endswith("." + domain)
