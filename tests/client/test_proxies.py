"""Both clients honour ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` (and the
lower-case names) on their own transports: a ``CONNECT`` tunnel for https (TLS to the origin
inside it), absolute-form requests for plain http, basic auth from the proxy URL, and a clear
error for a proxy they cannot use, never a silent bypass. The proxy and the origin run on
127.0.0.1 (the proxy only ever connects to 127.0.0.1)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from labs_env import APIError, AsyncLabsClient, LabsClient, LabsValidationError
from labs_env.client.proxy import ProxyRoute, bypasses_proxy, proxy_for
from labs_env.client.tls import default_ssl_context
from labs_env.testing import instant_retries
from tests.kit.certificates import pki
from tests.kit.loopback import Exchange, Loopback, Proxy, http_response
from tests.kit.scripted_http import KEY, MESSAGES, TURN

VARIABLES = [
    f"{scheme}_{suffix}"
    for scheme in ("http", "https", "all", "no", "HTTP", "HTTPS", "ALL", "NO")
    for suffix in (("proxy",) if scheme.islower() else ("PROXY",))
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("REQUEST_METHOD", raising=False)


def answer(exchange: Exchange) -> None:
    exchange.send(http_response({**TURN, "request_id": f"req_{exchange.index}"}))


@pytest.fixture
def origin() -> Iterator[Loopback]:
    with Loopback(answer) as server:
        yield server


@pytest.fixture
def tls_origin() -> Iterator[Loopback]:
    with Loopback(answer, tls=pki().server_context()) as server:
        yield server


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    with Proxy() as running:
        yield running


def play(kind: str, url: str, turns: int = 3, **kwargs: Any) -> list[str | None]:
    """Submit ``turns`` turns through a new sync or async client; their request ids."""
    kwargs = {"api_key": KEY, "base_url": url, "max_retries": 0, **kwargs}
    if kind == "sync":
        with LabsClient(**kwargs) as client:
            return [client.submit_turn(f"ep_{i}", MESSAGES).request_id for i in range(turns)]

    async def main() -> list[str | None]:
        async with AsyncLabsClient(**kwargs) as client:
            return [
                (await client.submit_turn(f"ep_{i}", MESSAGES)).request_id for i in range(turns)
            ]

    return asyncio.run(main())


# --------------------------------------------------------------------------- through a proxy


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_plain_http_goes_through_the_proxy_in_absolute_form(
    kind: str, origin: Loopback, proxy: Proxy, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    assert play(kind, origin.url) == ["req_0", "req_1", "req_2"]
    targets = [request.target for request in proxy.seen]
    assert targets == [f"{origin.url}/api/v1/episodes/ep_{i}/turns" for i in range(3)]
    assert all(
        request.header("host") == origin.url.removeprefix("http://") for request in proxy.seen
    )
    assert proxy.server.connections == 1  # the connection to the proxy is kept alive


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "all_proxy"])
def test_https_is_tunnelled_with_connect(
    kind: str, tls_origin: Loopback, proxy: Proxy, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    assert play(kind, tls_origin.url, verify=pki().ca) == ["req_0", "req_1", "req_2"]
    assert [request.line for request in proxy.seen] == [
        f"CONNECT 127.0.0.1:{tls_origin.port} HTTP/1.1"
    ]
    assert [request.target for request in tls_origin.requests] == [
        f"/api/v1/episodes/ep_{i}/turns" for i in range(3)
    ]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_credentials_come_from_the_url_and_are_never_shown(
    kind: str,
    scheme: str,
    origin: Loopback,
    tls_origin: Loopback,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = origin if scheme == "http" else tls_origin
    extra = {"verify": pki().ca} if scheme == "https" else {}
    caplog.set_level(logging.DEBUG)
    with Proxy(credentials="agent:s3cret word@x") as proxy:
        monkeypatch.setenv(
            f"{scheme.upper()}_PROXY", proxy.url.replace("://", "://agent:s3cret%20word%40x@")
        )
        assert play(kind, target.url, turns=1, **extra) == ["req_0"]
        monkeypatch.setenv(f"{scheme.upper()}_PROXY", proxy.url.replace("://", "://agent:wrong@"))
        # a tunnel refused is a connection error; a forwarded request gets the proxy's 407
        with instant_retries(), pytest.raises(APIError) as info:
            play(kind, target.url, turns=1, **extra)
    assert "407" in str(info.value)
    for text in (str(info.value), repr(info.value), caplog.text):
        assert "s3cret" not in text and "wrong" not in text


@pytest.fixture
def trust_test_ca(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process-wide default TLS context (used for https proxies) trusts the test CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki().ca))
    default_ssl_context.cache_clear()
    yield
    monkeypatch.undo()
    default_ssl_context.cache_clear()


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.usefixtures("trust_test_ca")
def test_an_https_proxy_is_reached_over_tls(
    kind: str,
    scheme: str,
    origin: Loopback,
    tls_origin: Loopback,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = origin if scheme == "http" else tls_origin
    with Proxy(tls=pki().server_context()) as proxy:
        monkeypatch.setenv(f"{scheme.upper()}_PROXY", proxy.url)
        assert play(kind, target.url, turns=2, verify=pki().ca) == ["req_0", "req_1"]
    assert proxy.url.startswith("https://")
    assert len(proxy.seen) == (1 if scheme == "https" else 2)


def test_no_proxy_sends_listed_hosts_direct(
    kind: str, origin: Loopback, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.0/8")
    assert play(kind, origin.url, turns=1) == ["req_0"]
    assert proxy.seen == []
    assert len(origin.requests) == 1


def test_the_environment_is_read_once_per_client(
    origin: Loopback, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)

    async def main() -> None:
        async with AsyncLabsClient(KEY, origin.url) as client:
            monkeypatch.delenv("HTTP_PROXY")
            await client.submit_turn("ep", MESSAGES)

    asyncio.run(main())
    assert len(proxy.seen) == 1


@pytest.mark.parametrize("value", ["socks5://127.0.0.1:1080", "socks5h://proxy:1080", "ftp://p"])
@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "all_proxy"])
@pytest.mark.parametrize("cls", [LabsClient, AsyncLabsClient])
def test_an_unsupported_proxy_is_refused_naming_the_variable(
    cls: type, variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(LabsValidationError) as info:
        cls(KEY, "https://labs.example")
    assert info.value.field == variable
    assert value.split("://")[0] in str(info.value)


def test_a_caller_transport_ignores_the_environment(
    origin: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1")  # would be refused if read
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=TURN))
    with LabsClient(KEY, "https://labs.example", transport=transport) as client:
        client.submit_turn("ep", MESSAGES)


# --------------------------------------------------------------------------- the rules


def route(scheme: str, host: str, port: int, **environ: str) -> ProxyRoute | None:
    return proxy_for(scheme, host, port, environ)


def test_which_variable_applies() -> None:
    assert route("https", "h", 443) is None
    assert route("https", "h", 443, HTTP_PROXY="p:1") is None
    assert route("http", "h", 80, HTTP_PROXY="p:1") == ProxyRoute("http", "p", 1, "HTTP_PROXY")
    assert route("https", "h", 443, ALL_PROXY="http://a:2") == ProxyRoute(
        "http", "a", 2, "ALL_PROXY"
    )
    # the lower-case name wins; an empty lower-case name unsets the upper-case one
    chosen = route("https", "h", 443, HTTPS_PROXY="http://upper:1", https_proxy="http://lower:2")
    assert chosen is not None and chosen.host == "lower" and chosen.variable == "https_proxy"
    assert route("https", "h", 443, HTTPS_PROXY="http://upper:1", https_proxy="") is None
    # CGI: HTTP_PROXY may be set by a request header ("httpoxy"): ignored
    assert route("http", "h", 80, HTTP_PROXY="http://p:1", REQUEST_METHOD="GET") is None
    # default ports, https proxies, IPv6 proxies
    assert route("http", "h", 80, HTTP_PROXY="http://p") == ProxyRoute(
        "http", "p", 80, "HTTP_PROXY"
    )
    assert route("http", "h", 80, HTTP_PROXY="https://p").port == 443  # type: ignore[union-attr]
    v6 = route("http", "h", 80, HTTP_PROXY="http://[::1]:3128")
    assert v6 is not None and v6.url == "http://[::1]:3128"


def test_credentials_are_decoded_and_kept_out_of_reprs() -> None:
    chosen = route("https", "h", 443, HTTPS_PROXY="http://us%40er:p%3Ass@p:1")
    assert chosen is not None
    assert chosen.credentials == ("us@er", "p:ss")
    assert "p:ss" not in repr(chosen) and "p%3Ass" not in repr(chosen)
    assert chosen.url == "http://p:1"


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypassed"),
    [
        ("*", "anything.example", 443, True),
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        (".example.com", "api.example.com", 443, True),
        (".example.com", "example.com", 443, False),
        ("*.example.com", "api.example.com", 443, True),
        ("*.example.com", "example.com", 443, False),
        ("EXAMPLE.com", "Example.COM", 443, True),
        ("example.com:8443", "example.com", 443, False),
        ("example.com:8443", "example.com", 8443, True),
        ("127.0.0.1", "127.0.0.1", 80, True),
        ("127.0.0.1", "127.0.0.2", 80, False),
        ("10.0.0.0/8", "10.1.2.3", 80, True),
        ("10.0.0.0/8", "11.1.2.3", 80, False),
        ("::1", "::1", 80, True),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 80, False),
        ("fd00::/8", "fd12::1", 80, True),
        ("localhost", "localhost", 80, True),
        ("http://example.com", "example.com", 80, True),
        ("https://example.com", "example.com", 80, False),
        (" a.com , ,b.com ", "b.com", 80, True),
        ("", "example.com", 80, False),
    ],
)
def test_no_proxy_rules(no_proxy: str, host: str, port: int, bypassed: bool) -> None:
    assert bypasses_proxy(no_proxy, "http", host, port) is bypassed


@pytest.mark.parametrize("value", ["http://", "http://p:notaport", "http://p:99999"])
def test_a_malformed_proxy_url_is_refused(value: str) -> None:
    with pytest.raises(LabsValidationError) as info:
        route("http", "h", 80, http_proxy=value)
    assert info.value.field == "http_proxy"
