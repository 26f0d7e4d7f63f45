"""TLS for `requests` built in memory: trust from PEM text, client keys through a memfd.

CPython can only load a client certificate and key from a path
(`SSLContext.load_cert_chain`; cpython gh-60691 is still open). The key must never touch a
filesystem, so it is serialised as PKCS#8 encrypted with a one-time password, written to
an anonymous `os.memfd_create` file (RAM-backed, no name in any filesystem), loaded by
OpenSSL through `/proc/self/fd/N` and the descriptor is closed at once
(`man 2 memfd_create`; docs/security.md says what this means for the key).

Trust is the context's alone. `requests` would otherwise add a CA bundle to every
connection: certifi when `verify=True`, or whatever `REQUESTS_CA_BUNDLE` /
`CURL_CA_BUNDLE` name when `trust_env` is on (machines and runners set these globally).
`SSLContextAdapter.cert_verify` therefore ignores `verify` and bundle paths and always
requires a verified peer. Sessions from here set `trust_env = False` but still take
`HTTPS_PROXY`/`NO_PROXY` from the environment (`EnvProxySession`).
"""

from __future__ import annotations

import logging
import os
import secrets
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import certifi
import requests
from cryptography.hazmat.primitives import serialization
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from .errors import InputError, RotationError
from .models import PrivateKey

if TYPE_CHECKING:
    from requests.sessions import _Settings

__all__ = [
    "EnvProxySession",
    "SSLContextAdapter",
    "load_chain_in_memory",
    "mtls_session",
    "ssl_context_with_client_cert",
    "trust_context",
]

logger = logging.getLogger(__name__)

# The memfd's name shows only in /proc/PID/fd links ("/memfd:mtls-cred (deleted)"); it
# names no file anywhere.
_MEMFD_NAME = "mtls-cred"


def _write_all(fd: int, data: bytes) -> None:
    """`os.write` may write less than asked; loop until everything is in the memfd."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def trust_context(ca_pem: str | None = None) -> ssl.SSLContext:
    """A client context that verifies servers: system store + certifi + `ca_pem`.

    The system store is OpenSSL's default paths (which honour `SSL_CERT_FILE` and
    `SSL_CERT_DIR`); certifi is what `requests` trusts by default, added so that a slim
    image without `ca-certificates` still reaches public endpoints; `ca_pem` is a private
    CA given as text and loaded with `cadata`, never written to a file. Hostname checks
    and certificate verification are on; TLS 1.2 is the floor.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=certifi.where())
    if ca_pem:
        try:
            context.load_verify_locations(cadata=ca_pem)
        except (ssl.SSLError, ValueError) as error:
            raise InputError(
                "the CA certificate is not a PEM certificate",
                code="bad-ca-cert",
                fix="Pass the CA as PEM text (`-----BEGIN CERTIFICATE-----` ...).",
            ) from error
    return context


def load_chain_in_memory(context: ssl.SSLContext, chain_pem: str, key: PrivateKey) -> None:
    """Load a chain and its key into `context` without a file on any filesystem.

    For a client context that is the identity it presents; tests load their servers' keys
    the same way. `chain_pem` is leaf first. The key is re-encrypted with a password that
    lives only in this call; the memfd holds encrypted key + chain and is closed before
    returning.
    """
    password = secrets.token_urlsafe(32).encode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    try:
        fd = os.memfd_create(_MEMFD_NAME, os.MFD_CLOEXEC)
    except (AttributeError, OSError) as error:
        raise RotationError(
            "in-memory key loading needs Linux memfd_create; the key is never written to "
            "a file instead"
        ) from error
    try:
        _write_all(fd, key_pem + b"\n" + chain_pem.encode("ascii"))
        context.load_cert_chain(f"/proc/self/fd/{fd}", password=password)
    except ssl.SSLError as error:
        # OpenSSL's reason (e.g. KEY_VALUES_MISMATCH) names no key material.
        raise InputError(
            f"the client certificate chain and key could not be loaded: {error.reason}",
            code="client-cert-unloadable",
            fix="The chain must be PEM, leaf first, and the key must belong to the leaf.",
        ) from error
    finally:
        os.close(fd)


def ssl_context_with_client_cert(
    chain_pem: str, key: PrivateKey, *, ca_pem: str | None = None
) -> ssl.SSLContext:
    """`trust_context(ca_pem)` that also presents `chain_pem` + `key` (loaded in memory)."""
    context = trust_context(ca_pem)
    load_chain_in_memory(context, chain_pem, key)
    return context


class SSLContextAdapter(HTTPAdapter):
    """Hands one `ssl.SSLContext` to every urllib3 pool, direct or through a proxy.

    The context is the only source of trust and client identity: turning `verify` off, CA
    bundle paths (also from `REQUESTS_CA_BUNDLE`) and `cert=` file paths have no effect.
    """

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._context = context  # before super().__init__, which builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["ssl_context"] = self._context
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if cert:
            raise ValueError("client certificates come from the SSL context, not from files")
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


class EnvProxySession(requests.Session):
    """A session that ignores the environment except for proxies.

    `trust_env = False` drops `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` and `.netrc`;
    `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` are still honoured so runners behind a proxy
    work. Plain `http://` is not mounted: every call is HTTPS.
    """

    def __init__(self, adapter: SSLContextAdapter) -> None:
        super().__init__()
        self.trust_env = False
        self.adapters.clear()
        self.mount("https://", adapter)

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: bool | None,
        verify: Any,
        cert: Any,
    ) -> _Settings:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if url:
            text = url.decode() if isinstance(url, bytes) else url
            merged = dict(settings.get("proxies") or {})
            for scheme, proxy in get_environ_proxies(text, no_proxy=None).items():
                merged.setdefault(scheme, proxy)
            settings["proxies"] = merged
        return settings


@contextmanager
def mtls_session(
    chain_pem: str,
    key: PrivateKey,
    *,
    ca_pem: str | None = None,
    context: ssl.SSLContext | None = None,
) -> Iterator[requests.Session]:
    """A `requests.Session` that presents `chain_pem` + `key` over mTLS; closed on exit.

    The key reaches OpenSSL through a memfd only (see the module docstring); the server
    is verified against the system store + certifi + `ca_pem`, whatever the environment's
    CA bundle variables say. `context`: that very context, built earlier
    (`ssl_context_with_client_cert`), since loading the trust store takes a while.
    """
    if context is None:
        context = ssl_context_with_client_cert(chain_pem, key, ca_pem=ca_pem)
    session = EnvProxySession(SSLContextAdapter(context))
    logger.debug("mTLS session ready (client chain of %d bytes)", len(chain_pem))
    try:
        yield session
    finally:
        session.close()
