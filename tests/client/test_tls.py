"""TLS on the clients' own transports: ``verify=`` (a private CA, an ``ssl.SSLContext``,
``False``), ``cert=`` (mutual TLS), the default store with certifi as the fallback, and a
clear error when the server's certificate is not trusted. Servers run on 127.0.0.1 with a CA
made for the test."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from labs_env import APIConnectionError, AsyncLabsClient, LabsClient, LabsValidationError
from labs_env.client.tls import system_ssl_context, tls_context
from labs_env.testing import instant_retries
from tests.kit.certificates import Pki, pki
from tests.kit.loopback import Exchange, Loopback, http_response
from tests.kit.scripted_http import KEY

CATALOG = {"collections": [], "request_id": "req_tls"}


@pytest.fixture
def certs() -> Pki:
    return pki()


def tls_server(certs: Pki, *, require_client_cert: bool = False) -> Loopback:
    def answer(exchange: Exchange) -> None:
        exchange.send(http_response(CATALOG))

    return Loopback(answer, tls=certs.server_context(require_client_cert=require_client_cert))


def catalog(kind: str, url: str, **kwargs: Any) -> str | None:
    """``catalog().request_id`` through a sync or async client made with ``kwargs``."""
    if kind == "sync":
        with LabsClient(KEY, url, **kwargs) as client:
            return client.catalog().request_id

    async def main() -> str | None:
        async with AsyncLabsClient(KEY, url, **kwargs) as client:
            return (await client.catalog()).request_id

    return asyncio.run(main())


@pytest.mark.parametrize("form", ["str", "path", "context"])
def test_verify_with_a_private_ca(kind: str, certs: Pki, form: str) -> None:
    verify: Any = {
        "str": str(certs.ca),
        "path": certs.ca,
        "context": ssl.create_default_context(cafile=str(certs.ca)),
    }[form]
    with tls_server(certs) as server:
        assert catalog(kind, server.url, verify=verify) == "req_tls"


def test_verify_false_skips_the_checks(kind: str, certs: Pki) -> None:
    with tls_server(certs) as server:
        assert catalog(kind, server.url, verify=False) == "req_tls"


def test_an_untrusted_certificate_fails_with_a_clear_error(kind: str, certs: Pki) -> None:
    with (
        tls_server(certs) as server,
        instant_retries(),
        pytest.raises(APIConnectionError) as info,
    ):
        catalog(kind, server.url, max_retries=0)
    message = str(info.value)
    assert "certificate verify failed" in message
    assert "verify=" in message
    assert KEY not in message


def test_an_untrusted_certificate_is_not_retried(kind: str, certs: Pki) -> None:
    """Sending again cannot make a certificate verify: one attempt, no backoff."""
    with (
        tls_server(certs) as server,
        instant_retries() as waits,
        pytest.raises(APIConnectionError, match="certificate verify failed"),
    ):
        catalog(kind, server.url, max_retries=3)
    assert waits == []
    assert server.connections == 1


def test_mutual_tls_with_a_client_certificate(kind: str, certs: Pki) -> None:
    with tls_server(certs, require_client_cert=True) as server:
        pair = (certs.client_cert, certs.client_key)
        assert catalog(kind, server.url, verify=certs.ca, cert=pair) == "req_tls"
        with instant_retries(), pytest.raises(APIConnectionError):
            catalog(kind, server.url, verify=certs.ca, max_retries=0)


def test_a_combined_pem_file_is_a_certificate_too(certs: Pki, tmp_path: Any) -> None:
    combined = tmp_path / "client-combined.pem"
    combined.write_bytes(certs.client_cert.read_bytes() + certs.client_key.read_bytes())
    with tls_server(certs, require_client_cert=True) as server:
        assert catalog("sync", server.url, verify=certs.ca, cert=combined) == "req_tls"
        assert catalog("async", server.url, verify=str(certs.ca), cert=str(combined)) == "req_tls"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"verify": "/nonexistent/ca.pem"}, "verify"),
        ({"verify": 1}, "verify"),
        ({"verify": "yes"}, "verify"),
        ({"cert": "/nonexistent/client.pem"}, "cert"),
        ({"cert": ("a.pem",)}, "cert"),
        ({"cert": 3}, "cert"),
        ({"verify": ssl.create_default_context(), "cert": "client.pem"}, "cert"),
    ],
)
@pytest.mark.parametrize("cls", [LabsClient, AsyncLabsClient])
def test_bad_tls_settings_are_typed_errors(cls: type, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(LabsValidationError) as info:
        cls(KEY, "https://labs.example", **kwargs)
    assert info.value.field == field


def test_the_system_store_falls_back_to_certifi(monkeypatch: pytest.MonkeyPatch) -> None:
    import certifi

    # No CA file or directory where OpenSSL looks: as on a slim image without ca-certificates.
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/cert.pem")
    monkeypatch.setenv("SSL_CERT_DIR", "/nonexistent/certs")
    assert not ssl.create_default_context().get_ca_certs()
    context = system_ssl_context()
    assert context.get_ca_certs()
    expected = ssl.create_default_context(cafile=certifi.where()).get_ca_certs()
    assert len(context.get_ca_certs()) == len(expected)


def test_the_default_context_is_shared_and_verifies() -> None:
    context = tls_context()
    assert context is tls_context(True, None)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_an_http_client_or_transport_keeps_its_own_tls_settings() -> None:
    import httpx

    for kwargs in ({"transport": httpx.MockTransport(lambda r: httpx.Response(200))},
                   {"http_client": httpx.Client()}):  # fmt: skip
        with pytest.raises(LabsValidationError) as info:
            LabsClient(KEY, "https://labs.example", verify=False, **kwargs)
        assert info.value.field == "verify"


def test_the_request_is_sent_inside_tls(kind: str, certs: Pki) -> None:
    with tls_server(certs) as server:
        catalog(kind, server.url, verify=certs.ca)
    assert server.requests[0].header("authorization") == f"Bearer {KEY}"
