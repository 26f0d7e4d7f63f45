"""CfHttp against a real loopback HTTPS server: retries, errors, warnings, trust, secrets."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator

import pytest
import trustme
from cf_fake import (
    CLIENT_SECRET,
    PASSWORD,
    FakeCf,
    Reply,
    error_body,
    fast_retries,
    user_auth,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cpi_cert_rotate import material
from cpi_cert_rotate.cf import CfApiError, CfClient, CfUnreachable
from cpi_cert_rotate.cf.http import Redactor, decode_warnings
from cpi_cert_rotate.errors import CfTimeout


@pytest.fixture
def client(fake: FakeCf, ca: trustme.CA) -> Iterator[CfClient]:
    with CfClient(fake.url, user_auth(ca), timeout_s=5) as cf:
        cf.authenticate()
        yield cf


def _rate_limited(retry_after: str) -> Reply:
    reply = error_body(429, "CF-RateLimitExceeded", 10013, "Rate Limit Exceeded")
    # CC's 429 quirk: text/plain over a JSON envelope.
    reply.headers.update({"Retry-After": retry_after, "Content-Type": "text/plain; charset=utf-8"})
    return reply


def test_429_waits_for_retry_after_then_succeeds(fake: FakeCf, client: CfClient) -> None:
    fake.fail("GET", "/v3/apps/app-1", _rate_limited("1"))
    started = time.monotonic()
    assert client.get_app("app-1").name == "orders"
    assert time.monotonic() - started >= 1.0
    assert fake.count("GET", "/v3/apps/app-1") == 2


def test_429_on_post_is_retried_because_no_handler_ran(fake: FakeCf, client: CfClient) -> None:
    fake.fail("POST", "/v3/deployments", _rate_limited("0"))
    deployment = client.create_deployment("app-1")
    assert deployment.state == "ACTIVE"
    assert fake.count("POST", "/v3/deployments") == 2
    assert len(fake.deployments) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("GET", "/v3/apps/app-1", lambda c, _: c.get_app("app-1")),
        (
            "PATCH",
            "/v3/apps/app-1/environment_variables",
            lambda c, _: c.patch_env_vars("app-1", {"A": "1"}),
        ),
        (
            "DELETE",
            "/v3/service_credential_bindings/.*",
            lambda c, guid: c.delete_binding(guid, deadline=time.monotonic() + 10),
        ),
    ],
)
def test_idempotent_calls_are_retried_on_gateway_errors(
    fake: FakeCf,
    ca: trustme.CA,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    method: str,
    path: str,
    call: Callable[[CfClient, str], object],
) -> None:
    fast_retries(monkeypatch)
    guid = fake.add_binding()
    with CfClient(fake.url, user_auth(ca), timeout_s=5) as client:
        client.authenticate()
        fake.fail(method, path, Reply(status, b"<html>bad gateway</html>"), Reply(status, b""))
        call(client, guid)
    assert fake.count(method, path) == 3
    assert fake.env["app-1"].get("A") == "1" or method != "PATCH"
    assert guid not in fake.bindings or method != "DELETE"


def test_post_is_not_replayed_after_a_gateway_error(fake: FakeCf, client: CfClient) -> None:
    fake.fail("POST", "/v3/deployments", Reply(502, b"Bad Gateway"))
    with pytest.raises(CfApiError) as caught:
        client.create_deployment("app-1")
    assert caught.value.status == 502
    assert caught.value.detail == "Bad Gateway"
    assert fake.count("POST", "/v3/deployments") == 1


def test_post_binding_is_not_replayed_after_a_server_error(fake: FakeCf, client: CfClient) -> None:
    fake.fail(
        "POST",
        "/v3/service_credential_bindings",
        error_body(503, "CF-ServiceUnavailable", 10015, "down"),
    )
    with pytest.raises(CfApiError, match="503 CF-ServiceUnavailable"):
        client.create_app_binding(
            "app-1", "si-1", name=None, parameters={}, strategy=None, deadline=time.monotonic() + 5
        )
    assert fake.count("POST", "/v3/service_credential_bindings") == 1


def test_retries_give_up_with_the_last_error_envelope(
    fake: FakeCf, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_retries(monkeypatch)
    unavailable = error_body(503, "CF-ServiceUnavailable", 10015, "Cloud Controller is down")
    fake.fail("GET", "/v3/apps/app-1", *[unavailable] * 10)
    with CfClient(fake.url, user_auth(ca), timeout_s=5) as client:
        client.authenticate()
        with pytest.raises(CfApiError) as caught:
            client.get_app("app-1")
    assert (caught.value.status, caught.value.code) == (503, 10015)
    assert fake.count("GET", "/v3/apps/app-1") == 5  # the first try + 4 retries


def test_dropped_connection_is_retried_for_get(fake: FakeCf, client: CfClient) -> None:
    fake.fail("GET", "/v3/apps/app-1", Reply(drop=True))
    assert client.get_app("app-1").guid == "app-1"
    assert fake.count("GET", "/v3/apps/app-1") == 2


def test_dropped_connection_on_post_is_unreachable_with_unknown_outcome(
    fake: FakeCf, client: CfClient
) -> None:
    fake.fail("POST", "/v3/deployments", Reply(drop=True))
    with pytest.raises(CfUnreachable, match="whether the POST took effect is unknown"):
        client.create_deployment("app-1")
    assert fake.count("POST", "/v3/deployments") == 1


def test_error_envelope_becomes_typed_fields(fake: FakeCf, client: CfClient) -> None:
    fake.add_binding()
    with pytest.raises(CfApiError) as caught:
        client.create_app_binding(
            "app-1", "si-1", name="cpi", parameters={}, strategy=None, deadline=time.monotonic() + 5
        )
    error = caught.value
    assert error.status == 422
    assert error.code == 10008
    assert error.title == "CF-UnprocessableEntity"
    assert error.detail == "The app is already bound to the service instance"
    assert error.request_id.startswith("req-")
    assert (error.method, error.path) == ("POST", "/v3/service_credential_bindings")
    assert str(error) == (
        "Cloud Controller answered 422 CF-UnprocessableEntity (10008) to POST "
        "/v3/service_credential_bindings: The app is already bound to the service instance"
    )
    assert error.request_id in error.hint()


def test_warnings_header_is_decoded_and_kept_once(fake: FakeCf, client: CfClient) -> None:
    fake.header_warnings = ["Rate limit 90% used, slow down", "a+b = c"]
    client.get_app("app-1")
    client.get_app("app-1")
    assert client.warnings == ["Rate limit 90% used, slow down", "a+b = c"]


def test_decode_warnings_splits_on_encoded_commas_only() -> None:
    assert decode_warnings("one%2C+two,three") == ["one, two", "three"]
    assert decode_warnings(None) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_names_the_host_and_what_to_check(ca: trustme.CA) -> None:
    port = _free_port()
    client = CfClient(f"https://127.0.0.1:{port}", user_auth(ca), timeout_s=2)
    with client, pytest.raises(CfUnreachable) as caught:
        client.root()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "cf-ca-cert" in message
    assert "proxy" in message


def test_untrusted_server_fails_even_when_requests_ca_bundle_trusts_it(
    fake: FakeCf, ca: trustme.CA, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"  # type: ignore[operator]
    ca.cert_pem.write_to_path(str(bundle))  # a public CA certificate, not a key
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))
    client = CfClient(fake.url, user_auth(ca, ca_pem=None), timeout_s=5)
    with client, pytest.raises(CfUnreachable, match="TLS handshake failed"):
        client.root()


def test_https_proxy_from_the_environment_is_used_unless_no_proxy(
    fake: FakeCf, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with CfClient(fake.url, user_auth(ca), timeout_s=2) as client, pytest.raises(CfUnreachable):
        client.root()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with CfClient(fake.url, user_auth(ca), timeout_s=2) as client:
        assert client.root().v3_version == (3, 205, 0)


def test_plain_http_api_url_is_refused(ca: trustme.CA) -> None:
    from cpi_cert_rotate.errors import InputError

    with pytest.raises(InputError, match="must be an https:// URL"):
        CfClient("http://api.example.com", user_auth(ca))


def test_no_secret_reaches_a_log_record_or_an_exception(
    fake: FakeCf, ca: trustme.CA, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_retries(monkeypatch)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with CfClient(fake.url, user_auth(ca), timeout_s=5) as client:
        client.authenticate()
        fake.revoke_tokens(refresh_too=True)  # 401 -> refresh refused -> password grant again
        client.patch_env_vars(
            "app-1", {"CLI_KEY": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"}
        )
        fake.fail(
            "GET",
            "/v3/apps/app-1",
            Reply(500, f"oops bearer {fake.issued[-1]} {PASSWORD}".encode()),
        )
        with pytest.raises(CfApiError) as caught:
            client.get_app("app-1")
        texts += [str(caught.value), caught.value.hint(), caught.value.detail]
    for auth in (
        user_auth(ca, password="wrong-" + PASSWORD),
        user_auth(ca, username="", client_id="rotator-client", client_secret=CLIENT_SECRET + "x"),
    ):
        with CfClient(fake.url, auth, timeout_s=5) as client, pytest.raises(CfApiError) as caught:
            client.authenticate()
        texts += [str(caught.value), caught.value.hint()]
    texts += [r.getMessage() for r in caught_records(caplog)]
    secrets = [PASSWORD, CLIENT_SECRET, "PRIVATE KEY", "MIIE", *fake.issued]
    assert len(fake.issued) >= 3
    leaks = [(s, t) for s in secrets for t in texts if s in t]
    assert leaks == []
    assert any("/oauth/token" in t for t in texts)  # the records were really captured


def caught_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return list(caplog.records)


def test_redactor_removes_known_values_keys_and_tokens() -> None:
    redact = Redactor()
    redact.add("s3cret value", None, "ab")
    text = redact(
        "pw=s3cret+value and s3cret value; Authorization: Bearer abc.def-ghi-jkl-mno "
        "eyJhbGciOi.eyJleHAiOjF9.c2ln "
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY----- ab"
    )
    assert "s3cret" not in text
    assert "abc.def" not in text
    assert "eyJ" not in text
    assert "AAAA" not in text
    assert text.endswith(" ab")  # values shorter than 4 characters are not treated as secrets
    assert redact("Basic authentication failed") == "Basic authentication failed"


def test_no_call_is_sent_after_the_deadline(fake: FakeCf, client: CfClient) -> None:
    client.set_deadline(time.monotonic() - 1)
    with pytest.raises(CfTimeout, match="time is up: GET /v3/apps/app-1 was not sent"):
        client.get_app("app-1")
    assert fake.count("GET", "/v3/apps/app-1") == 0
    client.set_deadline(None)
    assert client.get_app("app-1").name == "orders"


def test_retry_after_beyond_the_deadline_is_not_waited_for(fake: FakeCf, client: CfClient) -> None:
    fake.fail("GET", "/v3/apps/app-1", *[_rate_limited("30")] * 5)
    client.set_deadline(time.monotonic() + 1.0)
    started = time.monotonic()
    with pytest.raises(CfApiError) as caught:
        client.get_app("app-1")
    took = time.monotonic() - started
    assert caught.value.status == 429
    assert took < 5, f"waited {took:.1f}s for a Retry-After of 30 s with 1 s left"
    assert fake.count("GET", "/v3/apps/app-1") <= 2


def test_a_silent_server_costs_what_is_left_not_the_whole_timeout(ca: trustme.CA) -> None:
    """A listener that never completes the TLS handshake: the call ends near the deadline."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"https://127.0.0.1:{silent.getsockname()[1]}"
        with CfClient(url, user_auth(ca), timeout_s=30) as client:
            client.set_deadline(time.monotonic() + 1.5)
            started = time.monotonic()
            with pytest.raises((CfUnreachable, CfTimeout)):
                client.root()
            took = time.monotonic() - started
    assert took < 6, f"took {took:.1f}s with 1.5 s left (timeout 30 s)"


def test_a_bare_base64_key_line_echoed_by_cc_never_reaches_the_error(
    fake: FakeCf, client: CfClient
) -> None:
    """CC (or a proxy) echoing part of a request body: the key's base64 lines without their
    BEGIN/END armour. Long lines are cut by their shape; the short tail because the engine
    registered the key's lines with the client."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    body_lines = [line for line in pem.splitlines() if not line.startswith("-----")]
    assert len(body_lines) > 20
    echoed = " ".join(body_lines[3:6])
    fake.fail(
        "PATCH",
        "/v3/apps/app-1/environment_variables",
        error_body(422, "CF-UnprocessableEntity", 10008, f"Var invalid value '{echoed}'"),
    )
    with pytest.raises(CfApiError) as caught:
        client.patch_env_vars("app-1", {"CLI_KEY": "x"})
    texts = [str(caught.value), caught.value.hint(), caught.value.detail]
    assert "[redacted]" in texts[0]
    for line in body_lines[3:6]:
        assert not any(line in text for text in texts), line

    tail = body_lines[-1]  # shorter than the shape rule's 40 characters
    client.add_secrets(*material.secret_lines(material.secret_forms(key)))
    fake.fail(
        "GET",
        "/v3/apps/app-1",
        error_body(400, "CF-BadRequest", 10000, f"echo {tail} and {body_lines[7]}"),
    )
    with pytest.raises(CfApiError) as caught:
        client.get_app("app-1")
    assert tail not in str(caught.value)
    assert body_lines[7] not in str(caught.value)


def test_redactor_keeps_fingerprints_guids_and_words() -> None:
    redact = Redactor()
    fingerprint = "5e89fc5b" * 8
    guid = "2b746acd-0d3f-4c1e-9a5e-6f0b3c1d2e4f"
    text = f"binding {guid} holds {fingerprint}; The service instance name is taken: x."
    assert redact(text) == text
