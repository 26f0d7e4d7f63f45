"""UAA's token endpoint rules the sandbox got wrong before the UAA audit, one test each.

Each rule names the cloudfoundry/uaa file that makes it (the files are cited again in
`cf_sandbox/uaa.py` and `cf_sandbox/uaa_jwt_bearer.py`); SAP's IAS rules name the SAP
page (`cf_sandbox/ias.py`). Every test here failed on the sandbox as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests

from cf_sandbox import Landscape
from cf_sandbox.ias import IasApplication, IasUser
from cf_sandbox.jose import Jwt
from cf_sandbox.memtls import client_context, session
from cf_sandbox.oidc_issuer import DEFAULT_SUBJECT, OidcIssuer
from cf_sandbox.oidc_landscape import DIRECT_AUDIENCE, PLATFORM_ORIGIN
from cf_sandbox.uaa_jwt_bearer import JWT_BEARER, OidcOrigin, UaaClient

SECRET_WITH_PLUS = "s3cr+t/=x"


@pytest.fixture(scope="module")
def ls() -> Iterator[Landscape]:
    with Landscape(instances=1, oidc=True) as landscape:
        clients = landscape.jwt_bearer.clients
        clients["plus-client"] = UaaClient("plus-client", SECRET_WITH_PLUS, {JWT_BEARER})
        clients["cli-two"] = UaaClient("cli-two", "two", {JWT_BEARER, "refresh_token"})
        clients["only-platform"] = UaaClient(
            "only-platform", "p", {JWT_BEARER}, allowed_providers={PLATFORM_ORIGIN}
        )
        clients["no-origin"] = UaaClient("no-origin", "n", {JWT_BEARER}, allowed_providers=set())
        yield landscape


@pytest.fixture
def http(ls: Landscape) -> requests.Session:
    return session(client_context(ls.ca_pem))


def _token(
    ls: Landscape,
    http: requests.Session,
    form: dict[str, str],
    auth: tuple[str, str] | None = ("cf", ""),
    query: str = "",
) -> requests.Response:
    url = f"{ls.uaa_url}/oauth/token" + (f"?{query}" if query else "")
    return http.post(url, data=form, auth=auth, timeout=10)


def _direct(ls: Landscape) -> str:
    """A GitHub token the origin that trusts GitHub directly takes."""
    assert ls.oidc is not None
    return ls.oidc.github.mint(DIRECT_AUDIENCE)


def _password(ls: Landscape) -> dict[str, str]:
    return {"grant_type": "password", "username": ls.username, "password": ls.password}


def _hint(origin: str) -> str:
    return json.dumps({"origin": origin})


def _answer(resp: requests.Response, status: int, error: str, description: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json() == {"error": error, "error_description": description}


# -- how the endpoint reads a request ------------------------------------------------


def test_basic_credentials_are_form_decoded(ls: Landscape, http: requests.Session) -> None:
    """ClientBasicAuthenticationFilter.java: `URLDecoder.decode` of id and secret."""
    form = {"grant_type": JWT_BEARER, "assertion": _direct(ls)}
    raw = _token(ls, http, form, auth=("plus-client", SECRET_WITH_PLUS))
    _answer(raw, 401, "invalid_client", "Bad credentials")  # "+" read as a space
    encoded = _token(ls, http, form, auth=("plus-client", quote(SECRET_WITH_PLUS, safe="")))
    assert encoded.status_code == 200, encoded.text


def test_a_query_parameter_comes_before_the_body(ls: Landscape, http: requests.Session) -> None:
    """`HttpServletRequest.getParameter`: the query string's value first."""
    body = {**_password(ls), "login_hint": _hint(ls.origin)}
    resp = _token(ls, http, body, query="login_hint=" + quote(_hint("other-idp")))
    assert resp.status_code == 401, resp.text


def test_an_unreadable_login_hint_is_no_hint(ls: Landscape, http: requests.Session) -> None:
    """UaaLoginHint.parseRequestParameter: unparsable or another key -> null (no hint);
    `{}` is a hint that names no origin (PasswordGrantAuthenticationManager refuses it)."""
    for hint in ("not json", json.dumps({"origin": "other-idp", "x": 1})):
        resp = _token(ls, http, {**_password(ls), "login_hint": hint})
        assert resp.status_code == 200, (hint, resp.text)
    _answer(
        _token(ls, http, {**_password(ls), "login_hint": "{}"}),
        401,
        "unauthorized",
        "The origin provided in the login_hint does not match an active Identity Provider, "
        "that supports password grant.",
    )


def test_an_operator_can_refuse_query_strings(ls: Landscape, http: requests.Session) -> None:
    """UaaTokenEndpoint.java with `jwt.token.queryString.enabled: false`, answered by
    HttpMethodNotSupportedAdvice.java; the cf CLI sends `login_hint` in the query
    (cloudfoundry/cli `api/uaa/auth.go`), this project in the body."""
    ls.set_options(uaa_token_query_string=False)
    try:
        as_cli = _token(ls, http, _password(ls), query="login_hint=" + quote(_hint(ls.origin)))
        _answer(
            as_cli,
            406,
            "query_string_not_allowed",
            "Parameters must be passed in the body of the request",
        )
        wrong = _token(
            ls,
            http,
            {**_password(ls), "password": "x"},
            query="login_hint=" + quote(_hint(ls.origin)),
        )
        _answer(wrong, 401, "invalid_client", "Bad credentials")  # the filters come first
        in_body = _token(ls, http, {**_password(ls), "login_hint": _hint(ls.origin)})
        assert in_body.status_code == 200, in_body.text
    finally:
        ls.set_options(uaa_token_query_string=True)


def test_an_unknown_grant_type(ls: Landscape, http: requests.Session) -> None:
    """TokenEndpoint.java: no granter answers -> "Unsupported grant type"."""
    _answer(
        _token(ls, http, {"grant_type": "magic"}),
        400,
        "unsupported_grant_type",
        "Unsupported grant type",
    )


# -- refresh tokens ------------------------------------------------------------------


def test_no_refresh_token_for_a_client_without_the_refresh_grant(
    ls: Landscape, http: requests.Session
) -> None:
    """UaaTokenServices.java creates a refresh token only for a client with `refresh_token`
    among its grant types; AbstractTokenGranter refuses that client the refresh grant."""
    form = {"grant_type": JWT_BEARER, "assertion": _direct(ls)}
    with_refresh = _token(ls, http, form).json()
    assert with_refresh["refresh_token"]  # `cf` has the refresh grant
    without = _token(ls, http, form, auth=("plus-client", quote(SECRET_WITH_PLUS, safe="")))
    assert without.status_code == 200, without.text
    assert "refresh_token" not in without.json()
    refresh = {"grant_type": "refresh_token", "refresh_token": with_refresh["refresh_token"]}
    _answer(
        _token(ls, http, refresh, auth=("plus-client", quote(SECRET_WITH_PLUS, safe=""))),
        401,
        "invalid_client",
        "Unauthorized grant type",
    )
    _answer(
        _token(ls, http, {"grant_type": "refresh_token"}),
        400,
        "invalid_request",
        "refresh_token parameter not provided",
    )


def test_a_refresh_by_another_client_names_the_tokens_client(
    ls: Landscape, http: requests.Session
) -> None:
    """UaaTokenServices.refreshAccessToken: "Wrong client for this refresh token: <cid>"."""
    first = _token(ls, http, {"grant_type": JWT_BEARER, "assertion": _direct(ls)}).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    _answer(
        _token(ls, http, refresh, auth=("cli-two", "two")),
        400,
        "invalid_grant",
        "Wrong client for this refresh token: cf",
    )


# -- the JWT bearer grant ------------------------------------------------------------


def test_a_clients_allowed_providers_must_hold_the_users_origin(
    ls: Landscape, http: requests.Session
) -> None:
    """UaaAuthorizationRequestManager.checkClientIdpAuthorization (an OAuth2Exception in
    BackwardsCompatibleTokenEndpointAuthenticationFilter: 401 `unauthorized_client`)."""
    form = {"grant_type": JWT_BEARER, "assertion": _direct(ls)}
    _answer(
        _token(ls, http, form, auth=("only-platform", "p")),
        401,
        "unauthorized_client",
        "Client is not authorized for specified user's identity provider.",
    )
    _answer(
        _token(ls, http, form, auth=("no-origin", "n")),
        401,
        "unauthorized_client",
        "Client is not authorized for any identity providers.",
    )


def test_a_user_added_beforehand_is_found_by_email(ls: Landscape, http: requests.Session) -> None:
    """ExternalLoginAuthenticationManager.authenticate: by user name, then by e-mail."""
    issuer = OidcIssuer("https://token.email-lookup.example")
    ls.jwt_bearer.origins.append(
        OidcOrigin("email-lookup", issuer.issuer, issuer.jwks, "cf-mail", add_shadow_user=False)
    )
    user_id = ls.jwt_bearer.add_user("email-lookup", "ci-bot", email="ci-bot@acme.example")
    form = {"grant_type": JWT_BEARER}
    found = _token(
        ls, http, form | {"assertion": issuer.mint("cf-mail", email="CI-Bot@acme.example")}
    )
    assert found.status_code == 200, found.text
    assert Jwt.parse(found.json()["access_token"]).claims["user_id"] == user_id
    _answer(
        _token(ls, http, form | {"assertion": issuer.mint("cf-mail")}),
        401,
        "unauthorized",
        "The user account must be pre-created. Please contact your system administrator.",
    )


def test_a_token_without_an_audience(ls: Landscape, http: requests.Session) -> None:
    """JwtTokenSignedByThisUAA.checkAudience: "The token does not bear an AUD claim."."""
    assert ls.oidc is not None
    github = ls.oidc.github
    now = int(time.time())
    claims = {"iss": github.issuer, "sub": DEFAULT_SUBJECT, "iat": now, "exp": now + 60}
    resp = _token(ls, http, {"grant_type": JWT_BEARER, "assertion": github.key.sign(claims)})
    _answer(resp, 401, "invalid_token", "The token does not bear an AUD claim.")


# -- SAP Cloud Identity Services -----------------------------------------------------


def _ias_exchange(ls: Landscape, http: requests.Session, client_id: str) -> requests.Response:
    assert ls.oidc is not None
    ias = ls.oidc.ias
    token = ls.oidc.github.mint(ias.issuer)
    form = {
        "grant_type": JWT_BEARER,
        "client_id": client_id,
        "assertion": token,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": token,
    }
    return http.post(ias.token_url, data=form, timeout=10)


def test_ias_takes_an_external_token_only_for_an_application_that_uses_its_provider(
    ls: Landscape, http: requests.Session
) -> None:
    """SAP, "Configure the Client to Call Identity Authentication JWT Bearer Token": the
    corporate provider must be the application's default one or chosen by its rules."""
    assert ls.oidc is not None
    platform = ls.oidc.ias.applications[ls.oidc.platform_client_id]
    other = IasApplication("no-github-app", trusted=platform.trusted)
    ls.oidc.ias.applications[other.client_id] = other
    refused = _ias_exchange(ls, http, other.client_id)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_grant"
    other.corporate_idps = set(platform.corporate_idps)
    assert _ias_exchange(ls, http, other.client_id).status_code == 200


def test_ias_searches_the_user_by_email(ls: Landscape, http: requests.Session) -> None:
    """SAP's page: the value of the `email` or `sub` claim "will be used to search the
    user by e-mail"."""
    assert ls.oidc is not None
    ias = ls.oidc.ias
    by_mail = IasUser("not-this-identifier", "Mail.User@acme.example")
    ias.users.append(by_mail)
    idp = ias.corporate_idps[0]
    token = ls.oidc.github.mint(ias.issuer, sub="mail.user@acme.example")
    form = {
        "grant_type": JWT_BEARER,
        "client_id": ls.oidc.platform_client_id,
        "assertion": token,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": ls.oidc.github.mint(ias.issuer),
    }
    assert idp.subject_name_identifier == "sub"
    resp = http.post(ias.token_url, data=form, timeout=10)
    assert resp.status_code == 200, resp.text
    assert Jwt.parse(resp.json()["id_token"]).claims["user_uuid"] == by_mail.user_uuid
