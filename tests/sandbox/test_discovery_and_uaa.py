"""Discovery (`/`, `/v3`, `/v3/info`) and UAA `POST /oauth/token` against reference section 1."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import quote

import pytest
from sandbox_client import Cf

from cf_sandbox import Landscape


def _jwt_claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_root_links_login_uaa_and_v3_version(cf: Cf) -> None:
    resp = cf.http.get(f"{cf.ls.api_url}/", timeout=10)  # no token needed
    links = resp.json()["links"]
    assert resp.status_code == 200
    assert links["cloud_controller_v3"] == {
        "href": f"{cf.ls.api_url}/v3",
        "meta": {"version": "3.228.0"},
    }
    assert links["login"] == {"href": cf.ls.login_url}
    assert links["uaa"] == {"href": cf.ls.uaa_url}
    assert links["credhub"] is None
    assert {"self", "routing", "logging", "log_cache", "app_ssh"} <= set(links)
    assert "cloud_controller_v2" not in links


def test_root_version_follows_the_option(ls: Landscape, cf: Cf) -> None:
    ls.set_options(api_version="3.204.0")
    links = cf.ok(cf.get("/"))["links"]
    assert links["cloud_controller_v3"]["meta"]["version"] == "3.204.0"


def test_v3_info_shape_without_token(cf: Cf) -> None:
    resp = cf.http.get(f"{cf.ls.api_url}/v3/info", timeout=10)
    body = resp.json()
    assert resp.status_code == 200
    assert {
        "build",
        "cli_version",
        "custom",
        "description",
        "name",
        "version",
        "osbapi_version",
        "rate_limits",
        "links",
    } <= set(body)
    assert set(body["rate_limits"]) == {"enabled", "general_limit", "reset_interval_in_minutes"}
    assert body["rate_limits"]["enabled"] is False


def test_v3_lists_resource_links(cf: Cf) -> None:
    links = cf.ok(cf.get("/v3"))["links"]
    for name in ("apps", "deployments", "service_credential_bindings", "service_instances"):
        assert links[name]["href"] == f"{cf.ls.api_url}/v3/{name}"


def _token(cf: Cf, data: dict[str, str], auth: tuple[str, str] | None = ("cf", "")):
    return cf.http.post(
        f"{cf.ls.uaa_url}/oauth/token",
        data=data,
        auth=auth,
        headers={"Accept": "application/json"},
        timeout=10,
    )


def test_password_grant_answers_bearer_token_with_refresh(cf: Cf) -> None:
    resp = _token(
        cf, {"grant_type": "password", "username": cf.ls.username, "password": cf.ls.password}
    )
    body = resp.json()
    assert resp.status_code == 200
    assert body["token_type"] == "bearer"
    assert {"access_token", "refresh_token", "expires_in", "scope", "jti"} <= set(body)
    claims = _jwt_claims(body["access_token"])
    assert claims["user_name"] == cf.ls.username
    assert claims["origin"] == cf.ls.origin
    assert float(str(claims["exp"])) > time.time() + 500  # default ttl 600 s


def test_login_hint_origin_in_body_and_the_wrong_origin(cf: Cf) -> None:
    base = {"grant_type": "password", "username": cf.ls.username, "password": cf.ls.password}
    good = _token(cf, {**base, "login_hint": json.dumps({"origin": cf.ls.origin})})
    assert good.status_code == 200
    bad = _token(cf, {**base, "login_hint": quote(json.dumps({"origin": "other-idp"}))})
    assert bad.status_code == 401
    assert bad.json()["error_description"] == (
        "The origin provided in the login_hint does not match an active Identity Provider, "
        "that supports password grant."
    )


def test_bad_password_is_401_with_uaa_error_body(cf: Cf) -> None:
    resp = _token(cf, {"grant_type": "password", "username": cf.ls.username, "password": "x"})
    assert resp.status_code == 401
    assert resp.json() == {"error": "invalid_client", "error_description": "Bad credentials"}


def test_bad_client_is_401_invalid_client(cf: Cf) -> None:
    resp = _token(
        cf,
        {"grant_type": "password", "username": cf.ls.username, "password": cf.ls.password},
        auth=("cf", "not-empty"),
    )
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"


def test_client_credentials_grant_with_body_credentials(cf: Cf) -> None:
    resp = _token(
        cf,
        {
            "grant_type": "client_credentials",
            "client_id": cf.ls.client_id,
            "client_secret": cf.ls.client_secret,
        },
        auth=None,
    )
    assert resp.status_code == 200
    assert "refresh_token" not in resp.json()
    token = resp.json()["access_token"]
    apps = cf.http.get(
        f"{cf.ls.api_url}/v3/apps", headers={"Authorization": f"bearer {token}"}, timeout=10
    )
    assert apps.status_code == 200


def test_refresh_grant_and_an_invalid_refresh_token(cf: Cf) -> None:
    first = _token(
        cf, {"grant_type": "password", "username": cf.ls.username, "password": cf.ls.password}
    ).json()
    again = _token(cf, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert again.status_code == 200
    assert again.json()["access_token"] != first["access_token"]
    bad = _token(cf, {"grant_type": "refresh_token", "refresh_token": "nope"})
    assert bad.status_code in (400, 401)
    assert bad.json()["error"] in ("invalid_token", "invalid_grant")


def test_unsupported_grant_is_400(cf: Cf) -> None:
    resp = _token(cf, {"grant_type": "magic"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "unsupported_grant_type"


def test_missing_token_is_cf_not_authenticated(cf: Cf) -> None:
    resp = cf.http.get(f"{cf.ls.api_url}/v3/apps", timeout=10)
    assert cf.error(resp, 401) == {
        "code": 10002,
        "title": "CF-NotAuthenticated",
        "detail": "Authentication error",
    }


@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
def test_invalid_token_is_cf_invalid_auth_token(cf: Cf, token: str) -> None:
    resp = cf.get("/v3/apps", headers={"Authorization": f"bearer {token}"})
    error = cf.error(resp, 401)
    assert (error["code"], error["title"]) == (1000, "CF-InvalidAuthToken")


def test_expired_token_is_cf_invalid_auth_token_and_refresh_helps() -> None:
    # UAA's exp is whole seconds: a 2 s token lives more than 1 s and less than 2 s.
    with Landscape(token_ttl_s=2.0) as ls:
        cf = Cf(ls)
        assert cf.get("/v3/apps").status_code == 200
        time.sleep(2.1)
        error = cf.error(cf.get("/v3/apps"), 401)
        assert (error["code"], error["title"]) == (1000, "CF-InvalidAuthToken")
        cf.token = cf.login()
        assert cf.get("/v3/apps").status_code == 200
