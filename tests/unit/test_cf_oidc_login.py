"""The OIDC login of the CF client against a loopback UAA (and IAS) that records every form.

What is sent must be what the cf CLI sends (cloudfoundry/cli `api/uaa/auth.go`,
`command/v7/auth_command.go`), with `login_hint` in the body; what UAA answers must come
back as an error that names the fix. The UAA answers scripted here are UAA's own texts
(see cf_sandbox/uaa_jwt_bearer.py for the files); tests/e2e/test_oidc_login.py gets the
same answers from the sandbox instead.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, unquote_plus

import pytest
import trustme
from cf_fake import Call, FakeCf, HttpsServer, Reply, ca_pem, leaf_context

from cpi_cert_rotate.cf import CfClient
from cpi_cert_rotate.errors import LoginRefused
from cpi_cert_rotate.models import CfAssertion, CfAuth, OidcGrant

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GITHUB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUvb3BzIn0.c2lnLWdpdGh1Yi0xMjM0NQ"
IAS_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lhcyJ9.c2lnLWlhcy02Nzg5MA"


class Tokens:
    """A token source that counts its calls; each call gives a new token."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"{GITHUB_TOKEN}{self.calls}"


def _form(call: Call) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(call.body.decode()).items()}


def _token_calls(fake: FakeCf) -> list[Call]:
    return [c for c in fake.calls if c.path == "/oauth/token"]


@pytest.fixture
def uaa(fake: FakeCf, monkeypatch: pytest.MonkeyPatch) -> FakeCf:
    """The fake's UAA, taught the JWT bearer grant and client assertions."""

    def token(call: Call) -> Reply:
        form = _form(call)
        if form.get("grant_type") == JWT_BEARER and form.get("assertion"):
            return fake._issue(refresh=True)
        if form.get("client_assertion_type") == CLIENT_ASSERTION_TYPE:
            return fake._issue(refresh=False)
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") in fake.refresh_tokens:
                return fake._issue(refresh=True)
            return Reply(401, {"error": "invalid_token", "error_description": "expired"})
        return Reply(400, {"error": "unsupported_grant_type"})

    monkeypatch.setattr(fake, "_token", token)
    return fake


def _auth(
    ca: trustme.CA,
    grant: OidcGrant = OidcGrant.USER,
    fetch: Callable[[], str] | None = None,
    **changes: object,
) -> CfAuth:
    assertion = CfAssertion(
        grant,
        fetch=fetch or Tokens(),
        exchange_url=changes.pop("exchange_url", None),  # type: ignore[arg-type]
        exchange_client_id=changes.pop("exchange_client_id", None),  # type: ignore[arg-type]
        source="the job's GitHub OIDC token (audience `aud`)",
        on_secret=changes.pop("on_secret", lambda _t: None),  # type: ignore[arg-type]
    )
    return CfAuth(ca_pem=ca_pem(ca), assertion=assertion, **changes)  # type: ignore[arg-type]


def test_user_login_is_the_cf_clis_jwt_bearer_grant_with_client_cf(
    uaa: FakeCf, ca: trustme.CA
) -> None:
    with CfClient(uaa.url, _auth(ca, origin="acme-platform")) as client:
        client.authenticate()
    (call,) = _token_calls(uaa)
    assert call.query == {}  # login_hint in the body: UAA may refuse query strings
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(b"cf:").decode()
    assert _form(call) == {
        "grant_type": JWT_BEARER,
        "assertion": f"{GITHUB_TOKEN}1",
        "login_hint": '{"origin":"acme-platform"}',
    }


def test_user_login_with_another_uaa_client_authenticates_as_that_client(
    uaa: FakeCf, ca: trustme.CA
) -> None:
    auth = _auth(ca, client_id="pipeline", client_secret="s3cret-value")
    with CfClient(uaa.url, auth) as client:
        client.authenticate()
    (call,) = _token_calls(uaa)
    expected = base64.b64encode(b"pipeline:s3cret-value").decode()
    assert call.headers["Authorization"] == f"Basic {expected}"
    assert "login_hint" not in _form(call)


def test_a_client_and_secret_are_form_encoded_in_basic(uaa: FakeCf, ca: trustme.CA) -> None:
    """UAA URL-decodes Basic credentials (uaa `ClientBasicAuthenticationFilter.java`): a raw
    `+` would arrive as a space, a raw `%` could fail to decode."""
    secret = "p+ss/w=rd%x"
    with CfClient(uaa.url, _auth(ca, client_id="pipe line", client_secret=secret)) as client:
        client.authenticate()
    (call,) = _token_calls(uaa)
    scheme, value = call.headers["Authorization"].split(" ", 1)
    client_id, _, sent = base64.b64decode(value).decode().partition(":")
    assert scheme == "Basic"
    assert (client_id, sent) == ("pipe%20line", "p%2Bss%2Fw%3Drd%25x")
    assert (unquote_plus(client_id), unquote_plus(sent)) == ("pipe line", secret)
    assert call.headers["X-CF-ENCODED-CREDENTIALS"] == "true"


def test_client_login_sends_the_token_as_client_assertion_without_basic(
    uaa: FakeCf, ca: trustme.CA
) -> None:
    with CfClient(uaa.url, _auth(ca, OidcGrant.CLIENT, client_id="rotator")) as client:
        client.authenticate()
    (call,) = _token_calls(uaa)
    assert "Authorization" not in call.headers
    assert _form(call) == {
        "grant_type": "client_credentials",
        "client_id": "rotator",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": f"{GITHUB_TOKEN}1",
    }


def test_a_refresh_needs_no_new_token_and_a_refused_refresh_fetches_one(
    uaa: FakeCf, ca: trustme.CA
) -> None:
    uaa.token_ttl = 2.0
    tokens = Tokens()
    with CfClient(uaa.url, _auth(ca, fetch=tokens)) as client:
        client.authenticate()
        uaa.revoke_tokens()  # the access token is refused: refresh_token grant
        client.get_app("app-1")
        assert tokens.calls == 1
        uaa.revoke_tokens(refresh_too=True)  # the refresh token too: a new login
        client.get_app("app-1")
    assert tokens.calls == 2
    grants = [_form(c)["grant_type"] for c in _token_calls(uaa)]
    assert grants == [JWT_BEARER, "refresh_token", "refresh_token", JWT_BEARER]
    assert _form(_token_calls(uaa)[-1])["assertion"] == f"{GITHUB_TOKEN}2"


def test_a_client_token_is_renewed_with_a_fresh_assertion(uaa: FakeCf, ca: trustme.CA) -> None:
    tokens = Tokens()
    with CfClient(uaa.url, _auth(ca, OidcGrant.CLIENT, fetch=tokens, client_id="c")) as client:
        client.authenticate()
        uaa.revoke_tokens()
        client.get_app("app-1")
    assert tokens.calls == 2  # no refresh token for client credentials: log in again


@pytest.fixture
def ias(ca: trustme.CA) -> Iterator[tuple[HttpsServer, list[Reply]]]:
    replies: list[Reply] = []
    server = HttpsServer(
        leaf_context(ca.issue_cert("127.0.0.1")),
        lambda call: replies.pop(0) if replies else Reply(200, {"id_token": IAS_TOKEN}),
    )
    yield server, replies
    server.close()


def test_the_exchange_posts_the_token_to_ias_and_uaa_gets_the_id_token(
    uaa: FakeCf, ca: trustme.CA, ias: tuple[HttpsServer, list[Reply]]
) -> None:
    server, _ = ias
    seen: list[str] = []
    auth = _auth(
        ca,
        exchange_url=f"{server.url}/oauth2/token",
        exchange_client_id="btp-app",
        on_secret=seen.append,
    )
    with CfClient(uaa.url, auth) as client:
        client.authenticate()
    (exchange,) = server.calls
    assert exchange.path == "/oauth2/token"
    assert "Authorization" not in exchange.headers
    assert _form(exchange) == {
        "grant_type": JWT_BEARER,
        "client_id": "btp-app",
        "assertion": f"{GITHUB_TOKEN}1",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": f"{GITHUB_TOKEN}1",
    }
    assert _form(_token_calls(uaa)[0])["assertion"] == IAS_TOKEN
    assert seen == [IAS_TOKEN]  # masked before UAA gets it


@pytest.mark.parametrize(
    ("reply", "fix_part"),
    [
        (Reply(401, {"error": "invalid_client", "error_description": "x"}), "Trust by Issuer"),
        (Reply(400, {"error": "invalid_grant"}), "corporate identity provider"),
        (Reply(400, {"error": "unauthorized_client"}), "*JWT Bearer* grant type"),
        (Reply(200, {"access_token": "opaque"}), "tenant's token endpoint"),
    ],
)
def test_a_refused_exchange_names_what_to_configure_in_ias(
    uaa: FakeCf,
    ca: trustme.CA,
    ias: tuple[HttpsServer, list[Reply]],
    reply: Reply,
    fix_part: str,
) -> None:
    server, replies = ias
    replies.append(reply)
    auth = _auth(ca, exchange_url=f"{server.url}/oauth2/token", exchange_client_id="btp-app")
    with CfClient(uaa.url, auth) as client, pytest.raises(LoginRefused) as caught:
        client.authenticate()
    assert caught.value.code == "oidc-exchange-refused"
    assert fix_part in caught.value.hint()
    assert _token_calls(uaa) == []  # UAA never saw anything
    assert GITHUB_TOKEN not in caught.value.hint()


UAA_ANSWERS = [
    (
        "unauthorized",
        "Unable to map issuer, https://token.actions.githubusercontent.com , to a single "
        "registered provider",
        "oidc-untrusted-issuer",
        "set `cf-origin`",
    ),
    (
        "invalid_token",
        "Some parties were not in the token audience: btp-platform-1234",
        "oidc-wrong-audience",
        "set `cf-oidc-audience: btp-platform-1234`",
    ),
    (
        "invalid_token",
        "Token does not bear a valid EXP claim.",
        "oidc-token-expired",
        "fetches a new one for every login",
    ),
    ("invalid_token", "Could not verify token signature.", "oidc-untrusted-issuer", "JWKS"),
    (
        "unauthorized",
        "The user account must be pre-created. Please contact your system administrator.",
        "oidc-user-unknown",
        "cf set-space-role EMAIL ORG SPACE SpaceDeveloper --origin",
    ),
    (
        "invalid_client",
        "Unauthorized grant type",
        "oidc-grant-not-allowed",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ),
    (
        "invalid_client",
        '{"error":"invalid_grant","error_description":"no user"}',
        "oidc-exchange-refused",
        "corporate identity provider",
    ),
    ("unauthorized", "Assertion is missing", "oidc-login-refused", "UAA's answer"),
    (
        "unauthorized_client",
        "Client is not authorized for specified user's identity provider.",
        "oidc-origin-not-allowed",
        "`allowedproviders`",
    ),
    (
        "invalid_token",
        "The token does not bear an AUD claim.",
        "oidc-wrong-audience",
        "set `cf-oidc-audience`",
    ),
]


@pytest.mark.parametrize(("error", "description", "code", "fix_part"), UAA_ANSWERS)
def test_uaa_refusals_name_the_fix(
    fake: FakeCf,
    ca: trustme.CA,
    error: str,
    description: str,
    code: str,
    fix_part: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="cpi_cert_rotate")
    fake.fail(
        "POST", "/oauth/token", Reply(401, {"error": error, "error_description": description})
    )
    with CfClient(fake.url, _auth(ca)) as client, pytest.raises(LoginRefused) as caught:
        client.authenticate()
    assert caught.value.code == code
    assert fix_part in caught.value.hint()
    assert description in str(caught.value)  # UAA's words are quoted
    assert caught.value.exit_code == 1
    assert GITHUB_TOKEN not in caught.value.hint() + caplog.text


def test_an_unknown_origin_is_named_among_the_causes(fake: FakeCf, ca: trustme.CA) -> None:
    description = (
        "Unable to map issuer, https://token.actions.githubusercontent.com , to a single "
        "registered provider"
    )
    fake.fail(
        "POST",
        "/oauth/token",
        Reply(401, {"error": "unauthorized", "error_description": description}),
    )
    auth = _auth(ca, origin="typo-platform")
    with CfClient(fake.url, auth) as client, pytest.raises(LoginRefused) as caught:
        client.authenticate()
    assert "the origin `typo-platform` (`cf-origin`) exists" in caught.value.hint()


@pytest.mark.parametrize(
    ("description", "fix_part"),
    [
        ("Wrong client_assertion", "exact `sub`"),
        ("Unauthorized client_assertion", "`https://<uaa>/oauth/token`"),
        ("Bad credentials", "UAA does not know it"),
    ],
)
def test_client_refusals_name_the_credential(
    fake: FakeCf, ca: trustme.CA, description: str, fix_part: str
) -> None:
    fake.fail(
        "POST",
        "/oauth/token",
        Reply(401, {"error": "invalid_client", "error_description": description}),
    )
    auth = _auth(ca, OidcGrant.CLIENT, client_id="rotator")
    with CfClient(fake.url, auth) as client, pytest.raises(LoginRefused) as caught:
        client.authenticate()
    assert caught.value.code == "oidc-client-refused"
    assert fix_part in caught.value.hint()


def test_a_token_that_cannot_be_fetched_says_so_before_uaa_is_asked(
    fake: FakeCf, ca: trustme.CA
) -> None:
    from cpi_cert_rotate.issuers import IssuerError

    def fetch() -> str:
        raise IssuerError("GitHub's OIDC token endpoint answered 500")

    with CfClient(fake.url, _auth(ca, fetch=fetch)) as client, pytest.raises(LoginRefused) as c:
        client.authenticate()
    assert c.value.code == "oidc-token-unavailable"
    assert "answered 500" in str(c.value)
    assert _token_calls(fake) == []
