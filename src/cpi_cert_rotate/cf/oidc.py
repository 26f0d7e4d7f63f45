"""The OIDC side of a Cloud Foundry login: a fresh token per login, the optional exchange at
SAP Cloud Identity Services, and what UAA's or IAS's refusal means.

The exchange is IAS's JWT bearer grant (SAP-docs/btp-cloud-identity-services,
`docs/Operation-Guide/configure-the-client-to-call-identity-authentication-jwt-bearer-token-01a0440.md`):
`POST https://<tenant>.accounts.ondemand.com/oauth2/token` with
`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `client_id`, the token as
`assertion`, and the same token as `client_assertion` (`Configure JWT for OAuth Client
Authentication`: a JWT trusted by issuer and exact `sub` authenticates the client, and
`client_id` must then be sent). The answer's `id_token` is what UAA gets.

UAA's answers (cloudfoundry/uaa, see `cf_sandbox.uaa_jwt_bearer` for the files) are
matched on their `error` and the start of their `error_description`; IAS publishes no
error texts, so its refusals are matched on the RFC 6749 `error` code only. Tokens never
appear in a message: the `CfHttp` redactor knows each one before it is sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from ..errors import CfApiError, LoginRefused, RotationError
from ..models import CfAssertion, OidcGrant
from .http import CfHttp

logger = logging.getLogger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

_AUDIENCE = re.compile(r"Some parties were not in the token audience: (.+)$")
_ISSUER = re.compile(r"Unable to map issuer, (.+) , to a single registered provider")
_CLIENT_ASSERTION = (
    "Wrong client_assertion",
    "Unauthorized client_assertion",
    "Untrusted client_assertion",
    "Bad client_assertion",
    "Bad empty jwk_set",
)
_FETCH_FIX = (
    "Check that the job has `permissions: id-token: write` and that nothing overrides "
    "ACTIONS_ID_TOKEN_REQUEST_URL; on the command line, export a fresh token in the "
    "variable `--cf-assertion-env` names."
)


def token_source(http: CfHttp, assertion: CfAssertion) -> Callable[[], str]:
    """A callable that returns the token to present to UAA, fresh on every call."""

    def token() -> str:
        try:
            jwt = assertion.fetch()
        except RotationError as error:
            raise LoginRefused(
                f"could not get {assertion.source} for the Cloud Foundry login: {error}",
                code="oidc-token-unavailable",
                fix=_FETCH_FIX,
            ) from error
        http.redact.add(jwt)
        if assertion.exchange_url is None:
            return jwt
        return _exchange(http, assertion, jwt)

    return token


def _exchange(http: CfHttp, assertion: CfAssertion, jwt: str) -> str:
    """IAS's JWT bearer grant: the job's token for an `id_token` of the IAS tenant."""
    assert assertion.exchange_url is not None
    assert assertion.exchange_client_id is not None
    url, client_id = assertion.exchange_url, assertion.exchange_client_id
    form = {
        "grant_type": JWT_BEARER,
        "client_id": client_id,
        "assertion": jwt,
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": jwt,
    }
    http.allow_post_retries(url)  # a grant changes nothing: safe to repeat
    try:
        response = http.request("POST", url, form=form, service="the token exchange")
    except CfApiError as error:
        if error.status not in (400, 401):
            raise
        raise _exchange_refused(error, client_id, assertion.source) from error
    body = http.json(response, "the token exchange's answer")
    id_token = body.get("id_token") if isinstance(body, dict) else None
    if not isinstance(id_token, str) or not id_token:
        raise LoginRefused(
            f"the token exchange at {url} answered without an id_token",
            code="oidc-exchange-refused",
            fix="Check `cf-oidc-exchange-url`: it must be the tenant's token endpoint "
            "(`https://<tenant>.accounts.ondemand.com/oauth2/token`).",
        )
    http.redact.add(id_token)
    assertion.on_secret(id_token)
    logger.debug("token exchange ok: an id_token of the identity provider for UAA")
    return id_token


def _exchange_refused(error: CfApiError, client_id: str, source: str) -> LoginRefused:
    what = error.title or f"HTTP {error.status}"
    said = f"{what}: {error.detail}" if error.detail else what
    fixes = {
        "invalid_client": f"SAP Cloud Identity Services did not accept the client "
        f"`{client_id}` (`cf-oidc-exchange-client-id`) authenticated by {source}: in the "
        "administration console, open that application, Trust > Client Authentication > "
        "JSON Web Tokens > Configure Trust by Issuer, with GitHub's issuer "
        "`https://token.actions.githubusercontent.com` and this job's exact `sub` "
        "(`repo:OWNER/REPO:environment:NAME`).",
        "unauthorized_client": f"The application `{client_id}` may not use the JWT bearer "
        "grant: select the *JWT Bearer* grant type in its OpenID Connect configuration "
        "(a public client cannot exchange external tokens).",
        "invalid_grant": f"SAP Cloud Identity Services did not accept {source}: its issuer "
        "must be a corporate identity provider of the tenant (OpenID Connect, GitHub's "
        "issuer), its audience the tenant's issuer or that provider's client ID "
        "(`cf-oidc-audience`), and its subject must map to a user.",
    }
    return LoginRefused(
        f"the token exchange refused {source} ({said})",
        code="oidc-exchange-refused",
        fix=fixes.get(error.title, "See the identity provider's answer above."),
        status=error.status,
    )


def refused(
    error: CfApiError,
    *,
    grant: OidcGrant,
    client_id: str,
    origin: str,
    source: str,
    exchanged: bool,
) -> LoginRefused:
    """What UAA's 400/401 to an OIDC login means, and what to configure where."""
    kind, text = error.title, error.detail
    code, fix = "oidc-login-refused", "See UAA's answer above."
    if kind == "invalid_token" and (found := _AUDIENCE.search(text)):
        expected = found.group(1).strip()
        code = "oidc-wrong-audience"
        fix = (
            f"UAA's identity provider expects the audience `{expected}` (its relying party "
            f"ID): set `cf-oidc-audience: {expected}`"
            + (
                ", and make the token exchange's client that ID (`cf-oidc-exchange-client-id`)."
                if exchanged
                else "."
            )
        )
    elif kind == "invalid_token" and text == "The token does not bear an AUD claim.":
        code = "oidc-wrong-audience"
        fix = (
            f"{source} has no audience: set `cf-oidc-audience` to the relying party ID of "
            "UAA's identity provider (or, after an exchange, the exchange's client ID)."
        )
    elif kind == "unauthorized_client" and text.startswith("Client is not authorized for"):
        code = "oidc-origin-not-allowed"
        whose = f"origin `{origin}`" if origin else "the origin that trusts the token's issuer"
        fix = (
            f"The UAA client `{client_id}` may not log in users of {whose}: its "
            "`allowedproviders` must list that origin (an operator setting; or name another "
            "client in `cf-client-id`)."
        )
    elif kind == "unauthorized" and (found := _ISSUER.search(text)):
        code = "oidc-untrusted-issuer"
        fix = _untrusted_issuer_fix(found.group(1).strip(), origin, exchanged)
    elif kind == "invalid_token" and "EXP claim" in text:
        code = "oidc-token-expired"
        fix = (
            f"{source} had expired when UAA checked it. The Action fetches a new one for "
            "every login; on the command line, export a fresh token (they live minutes)."
        )
    elif kind == "invalid_token" and "signature" in text:
        code = "oidc-untrusted-issuer"
        fix = (
            "UAA could not verify the token's signature with its identity provider's keys: "
            "the provider's issuer or keys (JWKS) in UAA do not belong to the token's issuer."
        )
    elif "pre-created" in text or "map claim to a username" in text:
        code = "oidc-user-unknown"
        fix = (
            f"The token maps to no user of origin `{origin or '?'}` that UAA knows. Add the "
            "user (the e-mail the identity provider puts in the token) to the org and space "
            f"with a space role: `cf set-space-role EMAIL ORG SPACE SpaceDeveloper --origin "
            f"{origin or 'ORIGIN'}` (or in the BTP cockpit), then run again."
        )
    elif kind == "invalid_client" and text == "Unauthorized grant type":
        code = "oidc-grant-not-allowed"
        fix = f"The UAA client `{client_id}` may not use this grant" + (
            " (`urn:ietf:params:oauth:grant-type:jwt-bearer` must be among its "
            "authorized grant types; ask the platform's operators, or name another "
            "client in `cf-client-id`)."
            if grant is OidcGrant.USER
            else " (`client_credentials` must be among its authorized grant types)."
        )
    elif kind == "invalid_client" and text.startswith("{"):
        code = "oidc-exchange-refused"
        fix = (
            f"UAA passed {source} to the identity provider of origin `{origin}`, which refused "
            "it (its answer is above): in SAP Cloud Identity Services, GitHub's issuer must "
            "be a corporate identity provider, the token's audience the tenant's issuer or "
            "that provider's client ID (`cf-oidc-audience`), and its subject must map to a "
            "user."
        )
    elif grant is OidcGrant.CLIENT and kind == "invalid_client":
        code = "oidc-client-refused"
        fix = _client_fix(client_id, text)
    message = f"UAA refused {source}: {kind or error.status}" + (f" ({text})" if text else "")
    return LoginRefused(
        message, code=code, fix=fix, status=error.status, request_id=error.request_id
    )


def _untrusted_issuer_fix(issuer: str, origin: str, exchanged: bool) -> str:
    if exchanged:
        return (
            f"No identity provider of UAA has the issuer `{issuer}` (the exchanged token's): "
            "the SAP Cloud Identity Services tenant of `cf-oidc-exchange-url` must be the "
            "one the global account trusts for platform users (BTP cockpit: Security > Trust "
            "Configuration)."
        )
    if origin:
        return (
            f"No identity provider of UAA has the issuer `{issuer}`. UAA ignores an origin it "
            f"cannot pass the token to, so check that the origin `{origin}` (`cf-origin`) "
            "exists (its key ends with `-platform` on SAP BTP), that its provider has token "
            "exchange enabled, and that the UAA client may use it; or exchange the token at "
            "SAP Cloud Identity Services first (`cf-oidc-exchange-url`, "
            "`cf-oidc-exchange-client-id`)."
        )
    return (
        f"No identity provider of UAA has the issuer `{issuer}`: set `cf-origin` to the "
        "origin whose provider accepts this token (on SAP BTP the platform origin, ending "
        "with `-platform`), or exchange the token at SAP Cloud Identity Services first "
        "(`cf-oidc-exchange-url`, `cf-oidc-exchange-client-id`)."
    )


def _client_fix(client_id: str, text: str) -> str:
    if text == "Wrong client_assertion":
        return (
            f"The UAA client `{client_id}` has no JWT credential for this token's issuer and "
            "subject: its `client_jwt_credentials` need GitHub's issuer and this job's "
            "exact `sub` (`repo:OWNER/REPO:environment:NAME`)."
        )
    if text.startswith(_CLIENT_ASSERTION):
        return (
            f"UAA did not accept the token as the client assertion of `{client_id}`: its "
            "audience must be the credential's audience (by default UAA's token endpoint, "
            "`https://<uaa>/oauth/token`: set `cf-oidc-audience`), it must be unexpired "
            "and signed by a key of the issuer's JWKS."
        )
    return f"Check the client ID `{client_id}` (`cf-client-id`): UAA does not know it."
