"""UAA grants and token renewal against a real loopback UAA + Cloud Controller fake."""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import pytest
import trustme
from cf_fake import CLIENT_ID, CLIENT_SECRET, ORIGIN, PASSWORD, USERNAME, FakeCf, Reply, user_auth

from cpi_cert_rotate.cf import CfApiError, CfClient
from cpi_cert_rotate.cf.auth import _jwt_claims, _lifetime_s
from cpi_cert_rotate.errors import InputError


def _token_calls(fake: FakeCf) -> list[dict[str, str]]:
    return [
        {k: v[-1] for k, v in parse_qs(c.body.decode()).items()}
        for c in fake.calls
        if c.path == "/oauth/token"
    ]


def _sequence(fake: FakeCf) -> list[str]:
    """Calls after `GET /` as `METHOD path status-ish` markers for order assertions."""
    out = []
    for call in fake.calls:
        if call.path == "/oauth/token":
            out.append("token:" + parse_qs(call.body.decode())["grant_type"][0])
        elif call.path != "/":
            out.append(f"{call.method} {call.path}")
    return out


def test_password_grant_sends_origin_in_the_body_with_client_cf(
    fake: FakeCf, ca: trustme.CA
) -> None:
    with CfClient(fake.url, user_auth(ca)) as client:
        client.authenticate()
    (call,) = [c for c in fake.calls if c.path == "/oauth/token"]
    assert call.query == {}
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(b"cf:").decode()
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = _token_calls(fake)[0]
    assert form == {
        "grant_type": "password",
        "username": USERNAME,
        "password": PASSWORD,
        "login_hint": '{"origin":"corp-idp"}',
    }


def test_password_grant_without_origin_sends_no_login_hint(fake: FakeCf, ca: trustme.CA) -> None:
    with CfClient(fake.url, user_auth(ca, origin="")) as client:
        client.authenticate()
    assert "login_hint" not in _token_calls(fake)[0]


def test_client_credentials_put_the_client_in_the_body(fake: FakeCf, ca: trustme.CA) -> None:
    auth = user_auth(ca, username="", password="", client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with CfClient(fake.url, auth) as client:
        assert client.get_app("app-1").name == "orders"
    form = _token_calls(fake)[0]
    assert form["grant_type"] == "client_credentials"
    assert (form["client_id"], form["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)


def test_wrong_password_is_a_401_that_names_the_user_not_the_password(
    fake: FakeCf, ca: trustme.CA
) -> None:
    client = CfClient(fake.url, user_auth(ca, password="nope-nope"))
    with client, pytest.raises(CfApiError) as caught:
        client.authenticate()
    assert caught.value.status == 401
    assert f"user {USERNAME!r} (origin {ORIGIN!r})" in str(caught.value)
    assert "Bad credentials" in str(caught.value)
    assert "nope-nope" not in str(caught.value)
    assert "cf-origin" in caught.value.hint()


def test_missing_credentials_are_an_input_error(fake: FakeCf, ca: trustme.CA) -> None:
    client = CfClient(fake.url, user_auth(ca, username="", password=""))
    with client, pytest.raises(InputError, match="no Cloud Foundry credentials"):
        client.authenticate()
    assert fake.calls == []


def test_invalid_token_401_refreshes_and_replays_once(fake: FakeCf, ca: trustme.CA) -> None:
    with CfClient(fake.url, user_auth(ca)) as client:
        client.get_app("app-1")
        fake.revoke_tokens()
        assert client.patch_env_vars("app-1", {"X": "1"})["X"] == "1"
    assert _sequence(fake) == [
        "token:password",
        "GET /v3/apps/app-1",
        "PATCH /v3/apps/app-1/environment_variables",  # 401 CF-InvalidAuthToken
        "token:refresh_token",
        "PATCH /v3/apps/app-1/environment_variables",
    ]


def test_refused_refresh_token_falls_back_to_a_new_login(fake: FakeCf, ca: trustme.CA) -> None:
    with CfClient(fake.url, user_auth(ca)) as client:
        client.get_app("app-1")
        fake.revoke_tokens(refresh_too=True)
        client.get_app("app-1")
    assert _sequence(fake)[2:] == [
        "GET /v3/apps/app-1",
        "token:refresh_token",
        "token:password",
        "GET /v3/apps/app-1",
    ]


def test_a_second_401_is_raised_not_looped(fake: FakeCf, ca: trustme.CA) -> None:
    invalid = Reply(
        401, {"errors": [{"code": 1000, "title": "CF-InvalidAuthToken", "detail": "x"}]}
    )
    with CfClient(fake.url, user_auth(ca)) as client:
        client.authenticate()
        fake.fail("GET", "/v3/apps/app-1", invalid, invalid, invalid)
        with pytest.raises(CfApiError) as caught:
            client.get_app("app-1")
    assert (caught.value.status, caught.value.title) == (401, "CF-InvalidAuthToken")
    assert fake.count("GET", "/v3/apps/app-1") == 2


def test_token_is_renewed_before_it_expires(ca: trustme.CA) -> None:
    fake = FakeCf(ca, token_ttl=2)
    try:
        with CfClient(fake.url, user_auth(ca)) as client:
            client.get_app("app-1")
            time.sleep(1.6)  # past 3/4 of the lifetime, before the server expires it
            client.get_app("app-1")
    finally:
        fake.close()
    assert _sequence(fake) == [
        "token:password",
        "GET /v3/apps/app-1",
        "token:refresh_token",
        "GET /v3/apps/app-1",
    ]


def test_fresh_token_is_reused(fake: FakeCf, ca: trustme.CA) -> None:
    with CfClient(fake.url, user_auth(ca)) as client:
        for _ in range(3):
            client.get_app("app-1")
    assert [s for s in _sequence(fake) if s.startswith("token:")] == ["token:password"]


def test_lifetime_is_the_shorter_of_expires_in_and_the_jwt() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    claims = base64.urlsafe_b64encode(b'{"iat":1000,"exp":1300}').rstrip(b"=").decode()
    token = f"{header}.{claims}.sig"
    assert _jwt_claims(token) == {"iat": 1000, "exp": 1300}
    assert _lifetime_s(token, 600) == 299  # whole-second claims: one second less
    assert _lifetime_s(token, 120) == 120
    assert _lifetime_s("opaque-token", 120) == 120
    assert _lifetime_s("opaque-token", None) == float("inf")
    assert _jwt_claims("a.!!!.c") == {}


def test_clients_sharing_a_login_log_in_once(fake: FakeCf, ca: trustme.CA) -> None:
    """A targets file's rotations share one login: one grant, whoever calls first."""
    with CfClient(fake.url, user_auth(ca)) as first:
        first.authenticate()
        others = [CfClient(fake.url, user_auth(ca), login=first.login) for _ in range(3)]
        for client in others:
            client.authenticate()  # already logged in: no second grant
            assert client.get_app("app-1").name == "orders"
            client.close()
    assert [c["grant_type"] for c in _token_calls(fake)] == ["password"]


def test_calls_rejected_together_renew_the_shared_token_once(fake: FakeCf, ca: trustme.CA) -> None:
    """Eight clients on one login, their token revoked, all calling at once: each call is
    replayed with a new token, and that token came from one refresh grant, not eight
    (each rejected call used to renew again, one after the other)."""
    with CfClient(fake.url, user_auth(ca)) as first:
        first.authenticate()
        clients = [CfClient(fake.url, user_auth(ca), login=first.login) for _ in range(8)]
        fake.revoke_tokens()
        start = threading.Barrier(len(clients))

        def call(client: CfClient) -> str:
            start.wait()
            return client.get_app("app-1").name

        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            names = list(pool.map(call, clients))
        for client in clients:
            client.close()
    assert names == ["orders"] * len(clients)
    rejected = [c for c in fake.calls if c.path == "/v3/apps/app-1"]
    assert len(rejected) > len(clients)  # some calls were rejected and replayed
    assert [c["grant_type"] for c in _token_calls(fake)] == ["password", "refresh_token"]
