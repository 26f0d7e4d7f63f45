"""In-memory mTLS against a real loopback server that requires client certificates."""

from __future__ import annotations

import os
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from cf_fake import Call, HttpsServer, Reply, leaf_context
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.models import PrivateKey
from cpi_cert_rotate.mtls import (
    EnvProxySession,
    SSLContextAdapter,
    mtls_session,
    ssl_context_with_client_cert,
    trust_context,
)


@dataclass(frozen=True)
class Material:
    chain_pem: str
    key: PrivateKey


def _material(leaf: trustme.LeafCert) -> Material:
    chain = "".join(blob.bytes().decode() for blob in leaf.cert_chain_pems)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    return Material(chain, key)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Pki:
    server_ca: trustme.CA
    client: Material
    rogue: Material

    @property
    def server_ca_pem(self) -> str:
        return self.server_ca.cert_pem.bytes().decode()


@pytest.fixture(scope="module")
def client_root() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def pki(client_root: trustme.CA) -> Pki:
    intermediate = client_root.create_child_ca()
    return Pki(
        server_ca=trustme.CA(),
        client=_material(intermediate.issue_cert("client-1", common_name="client-1")),
        rogue=_material(trustme.CA().issue_cert("client-1", common_name="client-1")),
    )


@pytest.fixture(scope="module")
def server(pki: Pki, client_root: trustme.CA) -> Iterator[HttpsServer]:
    context = leaf_context(pki.server_ca.issue_cert("127.0.0.1"))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=client_root.cert_pem.bytes().decode())

    def answer(call: Call) -> Reply:
        return Reply(200, f"hello {call.peer_cn}".encode(), {"Content-Type": "text/plain"})

    https = HttpsServer(context, answer)
    yield https
    https.close()


def _server_error_after(server: HttpsServer, seen: int) -> str:
    """The server's handshake error (logged by its handler thread a moment later)."""
    deadline = time.monotonic() + 3
    while len(server.errors) <= seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not [c for c in server.calls if c.path == "/http/ping" and c.peer_cn != "client-1"]
    return " ".join(server.errors[seen:])


def test_right_client_certificate_gets_through(pki: Pki, server: HttpsServer) -> None:
    with mtls_session(pki.client.chain_pem, pki.client.key, ca_pem=pki.server_ca_pem) as session:
        response = session.post(f"{server.url}/http/ping", data=b"x", timeout=5)
    assert (response.status_code, response.text) == (200, "hello client-1")


def test_client_certificate_from_another_ca_is_refused(pki: Pki, server: HttpsServer) -> None:
    seen = len(server.errors)
    session_cm = mtls_session(pki.rogue.chain_pem, pki.rogue.key, ca_pem=pki.server_ca_pem)
    with session_cm as session, pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{server.url}/http/ping", timeout=5)
    assert "CERTIFICATE_VERIFY_FAILED" in _server_error_after(server, seen)


def test_no_client_certificate_is_refused(pki: Pki, server: HttpsServer) -> None:
    session = EnvProxySession(SSLContextAdapter(trust_context(pki.server_ca_pem)))
    seen = len(server.errors)
    with session, pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{server.url}/http/ping", timeout=5)
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in _server_error_after(server, seen)


def test_server_outside_the_trust_is_refused_even_with_verify_false(
    pki: Pki, server: HttpsServer
) -> None:
    with mtls_session(pki.client.chain_pem, pki.client.key) as session:
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            session.get(f"{server.url}/http/ping", timeout=5)
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"{server.url}/http/ping", timeout=5, verify=False)


def test_requests_ca_bundle_neither_adds_nor_replaces_trust(
    pki: Pki, server: HttpsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_ca_file = tmp_path / "server-ca.pem"  # public CA certificates only, never a key
    pki.server_ca.cert_pem.write_to_path(str(server_ca_file))
    unrelated_file = tmp_path / "unrelated-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(unrelated_file))

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server_ca_file))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(server_ca_file))
    with mtls_session(pki.client.chain_pem, pki.client.key) as session:
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"{server.url}/", timeout=5)
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"{server.url}/", timeout=5, verify=str(server_ca_file))

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(unrelated_file))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(unrelated_file))
    with mtls_session(pki.client.chain_pem, pki.client.key, ca_pem=pki.server_ca_pem) as session:
        assert session.get(f"{server.url}/", timeout=5).status_code == 200


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_WATCHED = {"tempfile.mkstemp", "tempfile.mkdtemp", "os.rename", "os.link", "os.symlink"}
_recording: list[list[tuple[str, Any]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _recording:
        return
    if event == "open":
        path, mode, flags = [*args, None, None, None][:3]
        writes_by_mode = isinstance(mode, str) and any(c in mode for c in "wax+")
        writes_by_flags = isinstance(flags, int) and flags & _WRITE_FLAGS
        if writes_by_mode or writes_by_flags:
            _recording[-1].append((event, path))
    elif event in _WATCHED:
        _recording[-1].append((event, args))


sys.addaudithook(_audit)  # hooks cannot be removed; `_audit` is idle unless recording


def test_no_file_is_opened_for_writing_while_building_and_using_the_session(
    pki: Pki, server: HttpsServer, tmp_path: Path
) -> None:
    _recording.append([])
    try:
        with mtls_session(
            pki.client.chain_pem, pki.client.key, ca_pem=pki.server_ca_pem
        ) as session:
            assert session.get(f"{server.url}/", timeout=5).status_code == 200
        during = list(_recording[-1])
        (tmp_path / "control.txt").write_text("the hook sees writes")  # positive control
        control = list(_recording[-1][len(during) :])
    finally:
        _recording.pop()
    assert during == []
    assert control == [("open", str(tmp_path / "control.txt"))]


def _memfds() -> list[str]:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return [link for link in links if "mtls-cred" in link]


def test_the_memfd_is_closed_once_the_key_is_loaded(pki: Pki) -> None:
    before = _memfds()
    context = ssl_context_with_client_cert(
        pki.client.chain_pem, pki.client.key, ca_pem=pki.server_ca_pem
    )
    assert _memfds() == before
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_a_key_that_does_not_match_the_leaf_is_an_input_error(pki: Pki) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InputError, match="could not be loaded") as caught:
        ssl_context_with_client_cert(pki.client.chain_pem, other_key)
    assert caught.value.code == "client-cert-unloadable"
    assert "PRIVATE" not in str(caught.value)


def test_a_ca_that_is_not_pem_is_an_input_error() -> None:
    with pytest.raises(InputError) as caught:
        trust_context("not a certificate")
    assert caught.value.code == "bad-ca-cert"


def test_plain_http_is_not_mounted(pki: Pki, server: HttpsServer) -> None:
    session_cm = mtls_session(pki.client.chain_pem, pki.client.key)
    with session_cm as session, pytest.raises(requests.exceptions.InvalidSchema):
        session.get(f"http://127.0.0.1:{server.port}/", timeout=5)


def test_netrc_credentials_are_not_sent(
    pki: Pki, server: HttpsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-pw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with mtls_session(pki.client.chain_pem, pki.client.key, ca_pem=pki.server_ca_pem) as session:
        assert session.get(f"{server.url}/netrc-probe", timeout=5).status_code == 200
    (call,) = [c for c in server.calls if c.path == "/netrc-probe"]
    assert "Authorization" not in call.headers
