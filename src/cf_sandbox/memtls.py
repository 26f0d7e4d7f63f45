"""TLS contexts whose private keys never touch a file system.

CPython has no in-memory `load_cert_chain`, so the key goes through an anonymous memfd
(RAM-backed, no path, freed on close) re-opened via `/proc/self/fd/N`, encrypted with a
one-time password for defence in depth (Linux `memfd_create(2)`; Python `os.memfd_create`).
The sandbox uses this for its own server keys and for the app instances' client keys, so
a test can show that no key file appears anywhere.
"""

from __future__ import annotations

import os
import secrets
import ssl
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from requests.adapters import HTTPAdapter


def _encrypted_pem(key_pem: str, password: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


def load_chain(ctx: ssl.SSLContext, chain_pem: str, key_pem: str) -> None:
    """Load a certificate chain and its key into `ctx` through a memfd, never a file.

    Raises ValueError (bad PEM) or ssl.SSLError (key does not match the leaf).
    """
    password = secrets.token_bytes(32)
    blob = _encrypted_pem(key_pem, password) + chain_pem.encode()
    fd = os.memfd_create("sandbox-cred", os.MFD_CLOEXEC)
    try:
        os.write(fd, blob)
        ctx.load_cert_chain(f"/proc/self/fd/{fd}", password=password)
    finally:
        os.close(fd)


def server_context(
    chain_pem: str, key_pem: str, *, client_ca_pem: str | None = None
) -> ssl.SSLContext:
    """A server context; with `client_ca_pem`, client certificates are required (mTLS)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    load_chain(ctx, chain_pem, key_pem)
    if client_ca_pem is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca_pem)
    return ctx


def client_context(
    ca_pem: str, chain_pem: str | None = None, key_pem: str | None = None
) -> ssl.SSLContext:
    """A verifying client context that trusts only `ca_pem`, optionally with a client chain."""
    ctx = ssl.create_default_context(cadata=ca_pem)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if chain_pem is not None and key_pem is not None:
        load_chain(ctx, chain_pem, key_pem)
    return ctx


class ContextAdapter(HTTPAdapter):
    """Hands a prepared SSLContext to urllib3's pools (requests has no direct option)."""

    def __init__(self, ctx: ssl.SSLContext, **kwargs: Any) -> None:
        self._ctx = ctx
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._ctx
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["ssl_context"] = self._ctx
        return super().proxy_manager_for(*args, **kwargs)


def session(ctx: ssl.SSLContext) -> requests.Session:
    """A session that uses `ctx` for https and ignores REQUESTS_CA_BUNDLE and proxies.

    `trust_env = False` matters: with it on, requests would add the machine's CA bundle to
    the context and a client could trust more than the one CA it was given.
    """
    sess = requests.Session()
    sess.trust_env = False
    sess.mount("https://", ContextAdapter(ctx))
    return sess
