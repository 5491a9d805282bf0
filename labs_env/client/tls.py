"""TLS contexts from the clients' ``verify=`` and ``cert=`` arguments (no I/O but reading the
files named).

``verify``: ``True`` (the system's CA store, else certifi's bundle), ``False`` (no checks), a
CA bundle file or directory, or a ready ``ssl.SSLContext`` (used as given). ``cert``: a client
certificate for mutual TLS, one PEM file holding certificate and key, or a
``(certificate, key)`` pair of paths.
"""

from __future__ import annotations

import functools
import os
import ssl

import certifi

from labs_env.errors import LabsValidationError

__all__ = ["CertArg", "VerifyArg", "default_ssl_context", "system_ssl_context", "tls_context"]

PathArg = str | os.PathLike[str]
VerifyArg = bool | PathArg | ssl.SSLContext
CertArg = PathArg | tuple[PathArg, PathArg]


def system_ssl_context() -> ssl.SSLContext:
    """A verifying context on the system's CA store, or certifi's bundle where the system has
    none (as httpx does; e.g. a slim container without ``ca-certificates``)."""
    context = ssl.create_default_context()
    if not context.get_ca_certs():
        paths = ssl.get_default_verify_paths()
        if paths.cafile is None and paths.capath is None:
            context.load_verify_locations(cafile=certifi.where())
    return context


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """One verifying context per process (loading CA certificates costs ~40 ms)."""
    return system_ssl_context()


def tls_context(verify: object = True, cert: object = None) -> ssl.SSLContext:
    """The context for ``verify`` and ``cert`` (the shared default when both are defaults)."""
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            raise LabsValidationError(
                "cert",
                "cannot be combined with an ssl.SSLContext as verify",
                "load it into your context: context.load_cert_chain(certfile, keyfile)",
            )
        return verify
    if verify is True:
        if cert is None:
            return default_ssl_context()
        context = system_ssl_context()
    elif verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, (str, os.PathLike)):
        context = _ca_bundle_context(os.fspath(verify))
    else:
        raise LabsValidationError(
            "verify",
            f"must be True, False, a CA bundle path or an ssl.SSLContext, got {verify!r}",
            "pass e.g. verify='/etc/ssl/certs/my-ca.pem'",
        )
    if cert is not None:
        _load_client_certificate(context, cert)
    return context


def _ca_bundle_context(path: str) -> ssl.SSLContext:
    try:
        if os.path.isdir(path):
            return ssl.create_default_context(capath=path)
        return ssl.create_default_context(cafile=path)
    except OSError as exc:  # ssl.SSLError included
        raise LabsValidationError(
            "verify",
            f"cannot load CA certificates from {path!r}: {exc}",
            "pass the path of a PEM bundle (or a directory of hashed certificates)",
        ) from None


def _load_client_certificate(context: ssl.SSLContext, cert: object) -> None:
    files: tuple[str, str | None]
    if isinstance(cert, (str, os.PathLike)):
        files = (os.fspath(cert), None)
    elif (
        isinstance(cert, tuple)
        and len(cert) == 2
        and all(isinstance(part, (str, os.PathLike)) for part in cert)
    ):
        files = (os.fspath(cert[0]), os.fspath(cert[1]))
    else:
        raise LabsValidationError(
            "cert",
            f"must be a path or a (certificate, key) pair of paths, got {type(cert).__name__}",
            "pass e.g. cert=('client.pem', 'client.key')",
        )
    try:
        context.load_cert_chain(*files)
    except OSError as exc:  # ssl.SSLError included
        raise LabsValidationError(
            "cert",
            f"cannot load the client certificate {files[0]!r}: {exc}",
            "pass PEM files: the certificate (with its chain) and its unencrypted key",
        ) from None
