"""The sandbox's passwordless login over HTTP: GitHub's stand-in, the IAS tenant, UAA.

Each answer is the one the cited source gives (cf_sandbox/uaa_jwt_bearer.py, ias.py,
oidc_issuer.py name the files): UAA's `error` and `error_description` texts exactly,
IAS's RFC 6749 codes. Tokens are real RS256/ES256 JWTs checked with `cryptography`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from cf_sandbox import Landscape
from cf_sandbox.jose import Jwt, SigningKey, b64url, signed_by
from cf_sandbox.memtls import client_context, session
from cf_sandbox.oidc_issuer import DEFAULT_SUBJECT, JobIdentity, OidcIssuer
from cf_sandbox.oidc_landscape import (
    DIRECT_AUDIENCE,
    DIRECT_ORIGIN,
    FEDERATED_CLIENT,
    PLATFORM_ORIGIN,
    ROTATOR_EMAIL,
)
from cf_sandbox.uaa_jwt_bearer import JWT_BEARER

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def ls() -> Iterator[Landscape]:
    with Landscape(instances=1, oidc=True) as landscape:
        yield landscape


@pytest.fixture
def http(ls: Landscape) -> requests.Session:
    return session(client_context(ls.ca_pem))


def _github(ls: Landscape) -> OidcIssuer:
    assert ls.oidc is not None
    return ls.oidc.github


def _state(ls: Landscape) -> dict[str, str]:
    assert ls.oidc is not None
    return ls.oidc.state()


def _uaa(
    ls: Landscape,
    http: requests.Session,
    form: dict[str, str],
    client: tuple[str, str] | None = ("cf", ""),
) -> requests.Response:
    return http.post(f"{ls.uaa_url}/oauth/token", data=form, auth=client, timeout=10)


def _bearer(
    ls: Landscape, http: requests.Session, assertion: str, origin: str | None = None
) -> requests.Response:
    form = {"grant_type": JWT_BEARER, "assertion": assertion}
    if origin is not None:
        form["login_hint"] = json.dumps({"origin": origin})
    return _uaa(ls, http, form)


def _refused(resp: requests.Response, error: str, description: str) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.json() == {"error": error, "error_description": description}
    assert resp.headers["Cache-Control"] == "no-store"


# -- GitHub's stand-in ------------------------------------------------------------


def test_the_token_endpoint_wants_the_runner_bearer_and_honours_the_audience(
    ls: Landscape, http: requests.Session
) -> None:
    github = _github(ls)
    refused = http.get(github.token_url, headers={"Authorization": "bearer nope"}, timeout=10)
    assert refused.status_code == 401
    answer = http.get(
        github.token_url + "&audience=https%3A%2F%2Fx.example",
        headers={"Authorization": f"bearer {github.bearer}"},
        timeout=10,
    ).json()
    assert answer["count"] == 1
    jwt = Jwt.parse(answer["value"])
    assert jwt.header["alg"] == "RS256"
    assert jwt.claims["aud"] == "https://x.example"
    assert jwt.claims["sub"] == DEFAULT_SUBJECT
    assert jwt.claims["iss"] == github.issuer
    assert jwt.claims["nbf"] <= jwt.claims["iat"] < jwt.claims["exp"]
    default = Jwt.parse(github.mint())
    assert default.claims["aud"] == "https://github.com/acme"


def test_discovery_names_the_keys_that_verify_its_tokens(
    ls: Landscape, http: requests.Session
) -> None:
    github = _github(ls)
    config = http.get(f"{github.url}/.well-known/openid-configuration", timeout=10).json()
    assert config["issuer"] == github.issuer
    keys = http.get(config["jwks_uri"], timeout=10).json()["keys"]
    token = Jwt.parse(github.mint("aud"))
    assert signed_by(token, keys)
    other = SigningKey("RS256")
    assert not signed_by(token, [other.jwk()])


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_signatures_verify_only_with_the_signing_key(alg: str) -> None:
    key, other = SigningKey(alg), SigningKey(alg)
    token = key.sign({"sub": "x"})
    assert signed_by(Jwt.parse(token), [key.jwk()])
    assert not signed_by(Jwt.parse(token), [other.jwk() | {"kid": key.kid}])
    head, _, sig = token.split(".")
    tampered = f"{head}.{b64url(json.dumps({'sub': 'y'}).encode())}.{sig}"
    assert not signed_by(Jwt.parse(tampered), [key.jwk()])


def test_a_subject_names_the_environment_or_else_the_ref() -> None:
    assert JobIdentity().subject == DEFAULT_SUBJECT
    assert JobIdentity(environment=None).subject == "repo:acme/cpi-ops:ref:refs/heads/main"


# -- UAA: the JWT bearer grant ---------------------------------------------------


def test_one_step_uaa_passes_the_token_to_ias_and_logs_in_the_mapped_user(
    ls: Landscape, http: requests.Session
) -> None:
    assert ls.oidc is not None
    before = len(ls.oidc.ias.exchanges)
    resp = _bearer(ls, http, _github(ls).mint(ls.oidc.ias.issuer), PLATFORM_ORIGIN)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    claims = Jwt.parse(body["access_token"]).claims
    assert claims["origin"] == PLATFORM_ORIGIN
    assert claims["user_name"] == ROTATOR_EMAIL
    assert claims["grant_type"] == JWT_BEARER
    assert body["refresh_token"]
    assert ls.oidc.ias.exchanges[before:] == [
        {
            "client_id": ls.oidc.platform_client_id,
            "issuer": _github(ls).issuer,
            "user": ROTATOR_EMAIL,
        }
    ]
    apps = http.get(
        f"{ls.api_url}/v3/apps", headers={"Authorization": f"bearer {body['access_token']}"}
    )
    assert apps.status_code == 200


def test_direct_trust_checks_the_audience_against_the_relying_party(
    ls: Landscape, http: requests.Session
) -> None:
    github = _github(ls)
    ok = _bearer(ls, http, github.mint(DIRECT_AUDIENCE), DIRECT_ORIGIN)
    assert ok.status_code == 200, ok.text
    assert Jwt.parse(ok.json()["access_token"]).claims["user_name"] == DEFAULT_SUBJECT
    _refused(
        _bearer(ls, http, github.mint("https://github.com/acme")),
        "invalid_token",
        f"Some parties were not in the token audience: {DIRECT_AUDIENCE}",
    )


def test_an_es256_issuer_is_trusted_like_an_rs256_one(
    ls: Landscape, http: requests.Session
) -> None:
    from cf_sandbox.uaa_jwt_bearer import OidcOrigin

    issuer = OidcIssuer("https://token.es256.example", alg="ES256")
    ls.jwt_bearer.origins.append(OidcOrigin("es256-ci", issuer.issuer, issuer.jwks, "cf-es"))
    token = issuer.mint("cf-es")
    assert Jwt.parse(token).header["alg"] == "ES256"
    ok = _bearer(ls, http, token, "es256-ci")
    assert ok.status_code == 200, ok.text
    assert Jwt.parse(ok.json()["access_token"]).claims["origin"] == "es256-ci"
    forged = OidcIssuer(issuer.url, alg="ES256").mint("cf-es")
    _refused(_bearer(ls, http, forged), "invalid_token", "Could not verify token signature.")


def test_an_unknown_origin_is_ignored_and_the_issuer_decides(
    ls: Landscape, http: requests.Session
) -> None:
    stranger = OidcIssuer("https://token.stranger.example")
    _refused(
        _bearer(ls, http, stranger.mint("aud"), "no-such-origin"),
        "unauthorized",
        "Unable to map issuer, https://token.stranger.example , to a single registered provider",
    )


def test_a_forged_signature_an_expired_token_and_no_assertion_are_refused(
    ls: Landscape, http: requests.Session
) -> None:
    github = _github(ls)
    forged = OidcIssuer(github.url).mint(DIRECT_AUDIENCE)  # same issuer, another key
    _refused(_bearer(ls, http, forged), "invalid_token", "Could not verify token signature.")
    expired = github.mint(DIRECT_AUDIENCE, exp=int(time.time()) - 5)
    _refused(_bearer(ls, http, expired), "invalid_token", "Token does not bear a valid EXP claim.")
    _refused(_uaa(ls, http, {"grant_type": JWT_BEARER}), "unauthorized", "Assertion is missing")
    _refused(_bearer(ls, http, "not-a-jwt"), "unauthorized", "Unable to decode expected id_token")


def test_ias_refusal_comes_back_as_invalid_client_with_its_body(
    ls: Landscape, http: requests.Session
) -> None:
    other_repo = _github(ls).mint(
        _state(ls)["ias_url"], sub="repo:evil/fork:environment:cpi-production"
    )
    resp = _bearer(ls, http, other_repo, PLATFORM_ORIGIN)
    assert resp.status_code == 401
    body = resp.json()
    assert body["error"] == "invalid_client"
    assert json.loads(body["error_description"])["error"] == "invalid_grant"


def test_a_user_not_created_beforehand_is_refused(ls: Landscape, http: requests.Session) -> None:
    assert ls.oidc is not None
    from cf_sandbox.ias import IasUser

    ls.oidc.ias.users.append(IasUser("repo:acme/other:environment:x", "someone@acme.example"))
    token = _github(ls).mint(ls.oidc.ias.issuer, sub="repo:acme/other:environment:x")
    _refused(
        _bearer(ls, http, token, PLATFORM_ORIGIN),
        "unauthorized",
        "The user account must be pre-created. Please contact your system administrator.",
    )


def test_a_client_without_the_grant_type_is_refused(ls: Landscape, http: requests.Session) -> None:
    resp = _uaa(
        ls,
        http,
        {"grant_type": JWT_BEARER, "assertion": _github(ls).mint(DIRECT_AUDIENCE)},
        client=(ls.client_id, ls.client_secret),
    )
    _refused(resp, "invalid_client", "Unauthorized grant type")
    bad_secret = _uaa(
        ls, http, {"grant_type": JWT_BEARER, "assertion": "x"}, client=(ls.client_id, "nope")
    )
    _refused(bad_secret, "invalid_client", "Bad credentials")


def test_refresh_tokens_follow_the_operator_setting(ls: Landscape, http: requests.Session) -> None:
    token = _github(ls).mint(DIRECT_AUDIENCE)
    first = _bearer(ls, http, token).json()
    again = _uaa(ls, http, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert again.status_code == 200
    technical = _uaa(
        ls,
        http,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        client=(ls.client_id, ls.client_secret),
    )
    _refused(technical, "invalid_client", "Unauthorized grant type")  # no refresh grant
    ls.set_options(uaa_restrict_refresh_grant=True)
    try:
        assert "refresh_token" not in _bearer(ls, http, _github(ls).mint(DIRECT_AUDIENCE)).json()
    finally:
        ls.set_options(uaa_restrict_refresh_grant=False)


# -- UAA: JWT client authentication ----------------------------------------------


def _client_assertion(ls: Landscape, http: requests.Session, **form: str) -> requests.Response:
    base = {
        "grant_type": "client_credentials",
        "client_id": FEDERATED_CLIENT,
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
    }
    return _uaa(ls, http, base | form, client=None)


def test_a_federated_client_logs_in_with_the_jobs_token(
    ls: Landscape, http: requests.Session
) -> None:
    token = _github(ls).mint(_state(ls)["uaa_token_url"])
    resp = _client_assertion(ls, http, client_assertion=token)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert Jwt.parse(body["access_token"]).claims["client_id"] == FEDERATED_CLIENT
    assert "refresh_token" not in body


def _from_now(change: dict[str, Any]) -> dict[str, Any]:
    """`exp` and `nbf` given as seconds from now, resolved when the test runs (a time
    taken when the tests are collected may lie in the past by then)."""
    now = int(time.time())
    return {k: now + v if k in ("exp", "nbf") else v for k, v in change.items()}


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"aud": "https://elsewhere.example"}, "Unauthorized client_assertion"),
        ({"sub": "repo:acme/cpi-ops:ref:refs/heads/main"}, "Wrong client_assertion"),
        ({"exp": -120}, "Unauthorized client_assertion"),
        ({"nbf": 600}, "Unauthorized client_assertion"),
    ],
)
def test_a_client_assertion_is_checked_like_uaa(
    ls: Landscape, http: requests.Session, change: dict[str, Any], description: str
) -> None:
    token = _github(ls).mint(_state(ls)["uaa_token_url"], **_from_now(change))
    _refused(_client_assertion(ls, http, client_assertion=token), "invalid_client", description)


def test_client_assertion_type_and_kid_matter(ls: Landscape, http: requests.Session) -> None:
    token = _github(ls).mint(_state(ls)["uaa_token_url"])
    _refused(
        _client_assertion(ls, http, client_assertion=token, client_assertion_type="x"),
        "invalid_client",
        "Bad client_assertion type",
    )
    stranger = OidcIssuer(_github(ls).url).mint(_state(ls)["uaa_token_url"])
    _refused(
        _client_assertion(ls, http, client_assertion=stranger),
        "invalid_client",
        "Untrusted client_assertion",
    )


# -- IAS: the token exchange ------------------------------------------------------


def _ias(ls: Landscape, http: requests.Session, **form: str) -> requests.Response:
    base = {"grant_type": JWT_BEARER, "client_id": _state(ls)["platform_client_id"]}
    return http.post(_state(ls)["ias_token_url"], data=base | form, timeout=10)


def test_two_step_ias_answers_an_id_token_that_uaa_takes(
    ls: Landscape, http: requests.Session
) -> None:
    token = _github(ls).mint(_state(ls)["ias_url"])
    resp = _ias(
        ls,
        http,
        assertion=token,
        client_assertion=token,
        client_assertion_type=CLIENT_ASSERTION_TYPE,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer"
    id_token = Jwt.parse(body["id_token"])
    assert id_token.claims["iss"] == _state(ls)["ias_url"]
    assert id_token.claims["aud"] == _state(ls)["platform_client_id"]
    assert id_token.claims["email"] == ROTATOR_EMAIL
    keys = http.get(f"{_state(ls)['ias_url']}/oauth2/certs", timeout=10).json()["keys"]
    assert signed_by(id_token, keys)
    uaa = _bearer(ls, http, body["id_token"])  # UAA finds the origin by IAS's issuer
    assert uaa.status_code == 200, uaa.text
    assert Jwt.parse(uaa.json()["access_token"]).claims["origin"] == PLATFORM_ORIGIN


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({}, 401, "invalid_client"),  # a confidential client without credentials
        ({"client_id": "unknown"}, 401, "invalid_client"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"client_assertion_type": "x"}, 400, "invalid_request"),
    ],
)
def test_ias_refuses_with_rfc_6749_codes(
    ls: Landscape, http: requests.Session, form: dict[str, str], status: int, error: str
) -> None:
    token = _github(ls).mint(_state(ls)["ias_url"])
    if "client_assertion_type" in form:
        form = form | {"client_assertion": token}
    resp = _ias(ls, http, assertion=token, **form)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == error


@pytest.mark.parametrize(
    ("assertion_change", "error"),
    [
        (lambda: {"aud": "https://github.com/acme"}, "invalid_grant"),
        (lambda: {"exp": int(time.time()) - 1}, "invalid_grant"),
        (lambda: {"nbf": int(time.time()) + 300}, "invalid_grant"),
        (lambda: {"iss": "https://token.stranger.example"}, "invalid_grant"),
    ],
)
def test_ias_checks_the_external_tokens_audience_and_time(
    ls: Landscape,
    http: requests.Session,
    assertion_change: Callable[[], dict[str, Any]],
    error: str,
) -> None:
    # the times are taken when the test runs: a suite can run longer than 300 s after
    # collecting it
    client_token = _github(ls).mint(_state(ls)["ias_url"])
    token = _github(ls).mint(_state(ls)["ias_url"], **assertion_change())
    resp = _ias(
        ls,
        http,
        assertion=token,
        client_assertion=client_token,
        client_assertion_type=CLIENT_ASSERTION_TYPE,
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == error


def test_ias_trusts_a_client_assertion_only_for_its_exact_subject(
    ls: Landscape, http: requests.Session
) -> None:
    other = _github(ls).mint(_state(ls)["ias_url"], sub="repo:acme/cpi-ops:ref:refs/heads/dev")
    resp = _ias(
        ls,
        http,
        assertion=other,
        client_assertion=other,
        client_assertion_type=CLIENT_ASSERTION_TYPE,
    )
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"
