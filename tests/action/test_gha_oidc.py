"""`gha.id_token` against a real HTTPS server on loopback, as the runner's endpoint answers.

The function trusts the system store (OpenSSL's default paths, so `SSL_CERT_FILE`) and
certifi, never `REQUESTS_CA_BUNDLE`: the test CA is trusted through `SSL_CERT_FILE`, the
way a GHES with a private CA would be, and a bundle variable pointing at it is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from cpi_cert_rotate.action import gha
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.issuers import IssuerError
from unit.cf_fake import Call, HttpsServer, Reply, leaf_context

BEARER = "runtime-bearer-token-0123456789"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUvb3BzIn0.c2lnbmF0dXJl"

Handler = Callable[[Call], Reply]


@pytest.fixture(autouse=True)
def _fresh_parser_state() -> None:
    gha.resume_commands()
    gha._masked.clear()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def endpoint(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Handler], HttpsServer]]:
    """Start a token endpoint with `handler`; the runner's two variables point at it."""
    ca_file = tmp_path / "oidc-ca.pem"  # a CA certificate: public
    ca_file.write_bytes(ca.cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    servers: list[HttpsServer] = []

    def start(handler: Handler) -> HttpsServer:
        server = HttpsServer(leaf_context(ca.issue_cert("127.0.0.1")), handler)
        servers.append(server)
        monkeypatch.setenv(
            "ACTIONS_ID_TOKEN_REQUEST_URL", f"{server.url}/_apis/token?api-version=2.0"
        )
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", BEARER)
        return server

    yield start
    for server in servers:
        server.close()


def _token(call: Call) -> Reply:
    return Reply(200, {"count": 1, "value": JWT})


def test_the_token_is_fetched_with_the_bearer_and_the_audience(
    endpoint: Callable[[Handler], HttpsServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = endpoint(_token)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")  # never consulted
    assert gha.id_token("https://vault.example/ a&b") == JWT
    (call,) = server.calls
    assert call.method == "GET"
    assert call.path == "/_apis/token"
    assert call.query == {"api-version": "2.0", "audience": "https://vault.example/ a&b"}
    assert call.headers["Authorization"] == f"bearer {BEARER}"
    # the bearer before the call, the token before it is returned
    assert capsys.readouterr().out.splitlines() == [
        f"::add-mask::{BEARER}",
        f"::add-mask::{JWT}",
    ]


def test_no_audience_asks_for_the_default(endpoint: Callable[[Handler], HttpsServer]) -> None:
    server = endpoint(_token)
    assert gha.id_token(None) == JWT
    assert server.calls[0].query == {"api-version": "2.0"}


def test_an_untrusted_server_is_refused(
    endpoint: Callable[[Handler], HttpsServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    endpoint(_token)
    other = tmp_path / "other-ca.pem"
    other.write_bytes(trustme.CA().cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    with pytest.raises(IssuerError, match="cannot reach GitHub's OIDC token endpoint"):
        gha.id_token("aud")


def test_without_permission_the_fix_names_id_token_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", BEARER)
    with pytest.raises(InputError) as caught:
        gha.id_token("aud")
    assert caught.value.code == "no-id-token"
    assert "permissions: id-token: write" in caught.value.hint()
    assert "Dependabot" in caught.value.hint()
    assert BEARER not in caught.value.hint()


def test_a_refusal_says_the_status_and_the_permission(
    endpoint: Callable[[Handler], HttpsServer],
) -> None:
    endpoint(lambda call: Reply(403, {"message": "forbidden"}))
    with pytest.raises(IssuerError, match="answered 403") as caught:
        gha.id_token("aud")
    assert "id-token: write" in caught.value.hint()


def test_an_answer_without_a_token_is_an_error(
    endpoint: Callable[[Handler], HttpsServer],
) -> None:
    endpoint(lambda call: Reply(200, {"count": 0}))
    with pytest.raises(IssuerError, match="without a token"):
        gha.id_token("aud")


def test_a_passing_server_error_is_retried(endpoint: Callable[[Handler], HttpsServer]) -> None:
    answers = iter([Reply(503, {}), Reply(200, {"value": JWT})])
    server = endpoint(lambda call: next(answers))
    assert gha.id_token("aud") == JWT
    assert len(server.calls) == 2


def test_a_server_that_never_answers_times_out(
    endpoint: Callable[[Handler], HttpsServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    def stall(call: Call) -> Reply:
        time.sleep(3)
        return Reply(200, {"value": JWT})

    monkeypatch.setattr(gha, "OIDC_TIMEOUT_S", 0.3)
    endpoint(stall)
    began = time.monotonic()
    with pytest.raises(IssuerError, match="cannot reach"):
        gha.id_token("aud")
    assert time.monotonic() - began < 10


def test_a_plain_http_endpoint_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:9/token")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", BEARER)
    with pytest.raises(IssuerError, match="not an https:// URL"):
        gha.id_token("aud")
