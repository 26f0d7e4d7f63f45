"""UAA's JWT bearer grant and JWT client authentication, as cloudfoundry/uaa runs them.

Read in `cloudfoundry/uaa` (develop at 13dc87a, 2024-10-24, and the 2025 files at 942f505,
08fbde8 and 0067298; docs/sandbox-conformance.md, "The UAA audit"):
- the grant: `server/.../authentication/BackwardsCompatibleTokenEndpointAuthenticationFilter.java`
  (`assertion` missing: "Assertion is missing"; with `login_hint` naming an active OIDC
  origin that has `tokenExchangeEnabled` and that the client may use, the assertion is
  first sent to that provider's token endpoint as a JWT bearer grant and its `id_token`
  used instead: `ExternalOAuthAuthenticationManager.getOidcProxyIdpForTokenExchange` and
  `oidcJwtBearerGrant`, added by uaa PR #3309 "Proxy jwt bearer to support corporate trust"
  for SAP's model; an unknown origin is ignored), then
  `server/.../provider/oauth/ExternalOAuthAuthenticationManager.java`: the origin is found
  by the token's `iss` ("Unable to map issuer, %s , to a single registered provider"),
  the signature checked against the provider's keys, then `aud` against its
  `relyingPartyId` and `exp` (`server/.../util/JwtTokenSignedByThisUAA.java`: "Could not
  verify token signature.", "The token does not bear an AUD claim.", "Some parties were
  not in the token audience: %s", "Token does not bear a valid EXP claim."; `nbf` and
  `iat` are not checked there), the user name taken from the `user_name` attribute
  mapping or `sub` ("Unable to map claim to a username"), the user found by that name,
  else by the `email` claim (or the generated `<name>@user.from.<origin>.cf`), in the
  origin, and a shadow user added unless the provider says otherwise
  (`ExternalLoginAuthenticationManager.java`: "The user account must be pre-created.
  Please contact your system administrator."); then the client's `allowedproviders`
  must hold the user's origin (`oauth/UaaAuthorizationRequestManager.java`
  `checkClientIdpAuthorization`, called by the filter: 401 `unauthorized_client`
  "Client is not authorized for specified user's identity provider."); finally
  `oauth/token/JwtTokenGranter.java` via `AbstractTokenGranter.validateGrantType`:
  "Unauthorized grant type".
- how failures answer: the filter's entry point is `basicAuthenticationEntryPoint` with
  `UaaExceptionTranslator` (`uaa/src/main/webapp/WEB-INF/spring/oauth-endpoints.xml`,
  `spring-servlet.xml`): a token problem (`InvalidTokenException`) is 401 `invalid_token`,
  a bad credential (`BadCredentialsException`, also the proxied provider's refusal, whose
  body becomes the description) 401 `invalid_client`, any other authentication problem
  401 `unauthorized` (`DefaultWebResponseExceptionTranslator.java`).
- JWT client authentication: `authentication/ClientDetailsAuthenticationProvider.java`
  (`client_assertion` and its type instead of a secret; a wrong type: "Bad client_assertion
  type") and `oauth/jwt/JwtClientAuthentication.java` with federated credentials
  (`ClientJwtCredential`: issuer, subject, optional audience, defaulting to UAA's token
  endpoint; none matches: "Wrong client_assertion"; unparsable: "Bad client_assertion";
  no keys: "Bad empty jwk_set"; HS* or none: "Bad client_assertion algorithm"; signature,
  `iss`/`sub`/`aud`, `exp`/`nbf` (nimbus `DefaultJWTClaimsVerifier`, 60 s skew) or a
  missing `iss`/`sub`/`aud`/`exp`/`jti`: "Unauthorized client_assertion"; no key for the
  `kid`: "Untrusted client_assertion"), each 401 `invalid_client`.
- refresh tokens are issued for this grant as for the password grant
  (`oauth/refresh/RefreshTokenCreator.isRefreshTokenSupported`) unless the operator
  restricts the refresh grant (`jwt.refresh.restrict_grant`; the sandbox's
  `uaa_restrict_refresh_grant` option).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from .jose import Jwt, signed_by
from .web import Response

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CLOCK_SKEW_S = 60  # nimbus-jose-jwt DefaultJWTClaimsVerifier.DEFAULT_MAX_CLOCK_SKEW_SECONDS
_CLIENT_JWT_CLAIMS = (
    "iss",
    "sub",
    "aud",
    "exp",
    "jti",
)  # JwtClientAuthentication.JWT_REQUIRED_CLAIMS
_NOT_PRECREATED = "The user account must be pre-created. Please contact your system administrator."

Keys = Callable[[], list[dict[str, Any]]]
Proxy = Callable[[str], Response]
"""Sends an assertion to the origin's provider as a JWT bearer grant; its answer."""


def _error(error: str, description: str) -> Response:
    return Response(401, {"error": error, "error_description": description}, dict(_NO_STORE))


@dataclass
class OidcOrigin:
    """An OIDC identity provider of the zone (`OIDCIdentityProviderDefinition`)."""

    origin: str
    issuer: str
    keys: Keys
    relying_party_id: str
    user_name_claim: str = "sub"
    """`attributeMappings.user_name`; UAA takes `sub` when none is mapped."""
    email_claim: str = "email"
    add_shadow_user: bool = True
    """`addShadowUserOnLogin` (UAA's default: true)."""
    proxy: Proxy | None = None
    """`tokenExchangeEnabled`: the provider's JWT bearer grant, called with the assertion."""
    active: bool = True


@dataclass(frozen=True)
class ClientJwtCredential:
    """A federated credential of a client: who may sign its `client_assertion`."""

    issuer: str
    subject: str
    audience: str | None = None


@dataclass
class UaaClient:
    """A registered client: its secret (None: none), grant types, JWT credentials."""

    client_id: str
    secret: str | None
    grant_types: set[str]
    jwt_credentials: list[ClientJwtCredential] = field(default_factory=list)
    allowed_providers: set[str] | None = None
    """`allowedproviders`; None: every origin."""


@dataclass
class Refusal(Exception):
    """A 401 answer from inside the grant."""

    response: Response


def _generated_email(user_name: str, origin: str) -> str:
    """`ExternalLoginAuthenticationManager.generateEmailIfNullOrEmpty`."""
    parts = user_name.split("@")
    if "@" in user_name and len(parts) == 2 and all(parts):
        return user_name
    return user_name.replace("@", "") + f"@user.from.{origin}.cf"


def _disallowed_origin(client: UaaClient | None, origin: str) -> Response | None:
    """`UaaAuthorizationRequestManager.checkClientIdpAuthorization`: a client's
    `allowedproviders` (None: any) must hold the user's origin."""
    allowed = client.allowed_providers if client else None
    if allowed is None:
        return None
    if not allowed:
        return _error("unauthorized_client", "Client is not authorized for any identity providers.")
    if origin not in allowed:
        return _error(
            "unauthorized_client",
            "Client is not authorized for specified user's identity provider.",
        )
    return None


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


@dataclass(frozen=True)
class LoginHint:
    """A parsed `login_hint`; `origin` None for `{}` (a hint that names no origin)."""

    origin: str | None


def parse_login_hint(raw: str | None) -> LoginHint | None:
    """`login_hint={"origin":"..."}` as uaa `UaaLoginHint.parseRequestParameter` reads it:
    URL-decoded once more, then read by a default Jackson `ObjectMapper`, so anything but
    a JSON object whose only key is `origin` (unparsable text, another key) is no hint at
    all (None); absent is None too."""
    if raw is None:
        return None
    try:
        hint = json.loads(unquote_plus(raw))
    except ValueError:
        return None
    if not isinstance(hint, dict) or set(hint) - {"origin"}:
        return None
    origin = hint.get("origin")
    if origin is not None and not isinstance(origin, str):
        return None
    return LoginHint(origin)


def login_hint_origin(raw: str | None) -> str | None:
    """The origin a `login_hint` names; None when it names none or is no hint."""
    hint = parse_login_hint(raw)
    return hint.origin if hint else None


class JwtBearer:
    """The zone's OIDC origins, clients with JWT credentials, and shadow users."""

    def __init__(self, token_endpoint: str) -> None:
        self.token_endpoint = token_endpoint
        """UAA's own token URL: the default audience of a client assertion."""
        self.origins: list[OidcOrigin] = []
        self.clients: dict[str, UaaClient] = {}
        self.discoverable: dict[str, Keys] = {}
        """Issuers whose keys UAA finds by OIDC discovery (for client assertions)."""
        self.users: dict[tuple[str, str], str] = {}
        """(origin, user name) -> user id: shadow users and users added beforehand."""
        self.emails: dict[tuple[str, str], str] = {}
        """(origin, lower-cased e-mail) -> user id, for the lookup by e-mail."""
        self._lock = threading.Lock()

    def add_user(self, origin: str, user_name: str, email: str | None = None) -> str:
        """A user added beforehand (as `cf set-space-role ... --origin` or the BTP cockpit do:
        the name is the e-mail unless `email` says otherwise)."""
        with self._lock:
            return self._add(origin, user_name, email or user_name)

    def _add(self, origin: str, user_name: str, email: str) -> str:
        user_id = self.users.setdefault((origin, user_name), str(uuid.uuid4()))
        self.emails.setdefault((origin, email.lower()), user_id)
        return user_id

    def origin(self, key: str) -> OidcOrigin | None:
        return next((o for o in self.origins if o.origin == key), None)

    # -- the JWT bearer grant -----------------------------------------------------

    def user_subject(self, form: dict[str, str], client_id: str) -> dict[str, Any] | Response:
        """The token subject for `form`'s assertion, or UAA's refusal (see the module)."""
        assertion = form.get("assertion")
        if assertion is None:
            return _error("unauthorized", "Assertion is missing")
        try:
            assertion = self._proxied(assertion, form.get("login_hint"), client_id)
            origin, claims = self._validated(assertion)
            user_name = self._user_name(origin, claims)
        except Refusal as refusal:
            return refusal.response
        email = claims.get(origin.email_claim)
        if not isinstance(email, str) or not email:
            email = _generated_email(user_name, origin.origin)
        user_id = self._user(origin, user_name, email)
        if isinstance(user_id, Response):
            return user_id
        client = self.clients.get(client_id)
        refused = _disallowed_origin(client, origin.origin)
        if refused is not None:
            return refused
        if client is None or JWT_BEARER not in client.grant_types:
            return _error("invalid_client", "Unauthorized grant type")
        return {
            "client_id": client_id,
            "cid": client_id,
            "sub": user_id,
            "user_id": user_id,
            "user_name": user_name,
            "email": email,
            "origin": origin.origin,
        }

    def _proxied(self, assertion: str, login_hint: str | None, client_id: str) -> str:
        key = login_hint_origin(login_hint)
        origin = self.origin(key) if key else None
        client = self.clients.get(client_id)
        allowed = (
            client is None or client.allowed_providers is None or (key in client.allowed_providers)
        )
        if origin is None or not origin.active or origin.proxy is None or not allowed:
            return assertion
        answer = origin.proxy(assertion)
        if answer.status >= 300:
            body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
            raise Refusal(_error("invalid_client", body))
        token = answer.body.get("id_token") if isinstance(answer.body, dict) else None
        return token if isinstance(token, str) else assertion

    def _validated(self, assertion: str) -> tuple[OidcOrigin, dict[str, Any]]:
        try:
            jwt = Jwt.parse(assertion)
        except ValueError as error:
            raise Refusal(_error("unauthorized", "Unable to decode expected id_token")) from error
        issuer = jwt.claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise Refusal(_error("unauthorized", "Issuer is missing in id_token"))
        matches = [o for o in self.origins if o.issuer == issuer and o.active]
        if len(matches) != 1:
            raise Refusal(
                _error(
                    "unauthorized",
                    f"Unable to map issuer, {issuer} , to a single registered provider",
                )
            )
        (origin,) = matches
        if not signed_by(jwt, origin.keys()):
            raise Refusal(_error("invalid_token", "Could not verify token signature."))
        if "aud" not in jwt.claims:
            raise Refusal(_error("invalid_token", "The token does not bear an AUD claim."))
        if origin.relying_party_id not in _audiences(jwt.claims):
            party = origin.relying_party_id or "EMPTY_VALUE"
            raise Refusal(
                _error("invalid_token", f"Some parties were not in the token audience: {party}")
            )
        exp = jwt.claims.get("exp")
        if not isinstance(exp, int | float) or time.time() > exp:
            raise Refusal(_error("invalid_token", "Token does not bear a valid EXP claim."))
        return origin, jwt.claims

    def _user_name(self, origin: OidcOrigin, claims: dict[str, Any]) -> str:
        name = claims.get(origin.user_name_claim)
        if not isinstance(name, str) or not name:
            raise Refusal(_error("unauthorized", "Unable to map claim to a username"))
        return name

    def _user(self, origin: OidcOrigin, user_name: str, email: str) -> str | Response:
        """By user name, then by e-mail, in the origin; else a shadow user if allowed."""
        with self._lock:
            known = self.users.get((origin.origin, user_name))
            if known is None:
                known = self.emails.get((origin.origin, email.lower()))
            if known is not None:
                return known
            if not origin.add_shadow_user:
                return _error("unauthorized", _NOT_PRECREATED)
            return self._add(origin.origin, user_name, email)

    # -- JWT client authentication ------------------------------------------------

    def assertion_client(self, form: dict[str, str]) -> UaaClient | Response:
        """The client a `client_assertion` authenticates, or UAA's 401 `invalid_client`."""
        try:
            return self._assertion_client(form)
        except Refusal as refusal:
            return refusal.response

    def _assertion_client(self, form: dict[str, str]) -> UaaClient:
        def refuse(description: str) -> Refusal:
            return Refusal(_error("invalid_client", description))

        client = self.clients.get(form.get("client_id", ""))
        if client is None or form.get("client_secret"):
            raise refuse("Bad credentials")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise refuse("Bad client_assertion type")
        try:
            jwt = Jwt.parse(form.get("client_assertion", ""))
        except ValueError as error:
            raise refuse("Bad client_assertion") from error
        credential = self._credential(client, jwt.claims)
        if credential is None:
            raise refuse("Wrong client_assertion")
        keys_of = self._issuer_keys(credential.issuer)
        keys = keys_of() if keys_of else []
        if not keys:
            raise refuse("Bad empty jwk_set")
        if jwt.header.get("alg") in (None, "none", "HS256", "HS384", "HS512"):
            raise refuse("Bad client_assertion algorithm")
        kid = jwt.header.get("kid")
        if kid is not None and not any(k.get("kid") == kid for k in keys):
            raise refuse("Untrusted client_assertion")
        expected_aud = credential.audience or self.token_endpoint
        if not signed_by(jwt, keys) or not self._client_claims_valid(jwt.claims, expected_aud):
            raise refuse("Unauthorized client_assertion")
        return client

    @staticmethod
    def _credential(client: UaaClient, claims: dict[str, Any]) -> ClientJwtCredential | None:
        """`JwtClientAuthentication.getClientJwtFederation`: issuer and subject exactly, and
        the audience when both the credential and the token have one."""
        audiences = _audiences(claims)
        return next(
            (
                c
                for c in client.jwt_credentials
                if c.subject == claims.get("sub")
                and c.issuer == claims.get("iss")
                and (c.audience is None or not audiences or c.audience in audiences)
            ),
            None,
        )

    def _issuer_keys(self, issuer: str) -> Keys | None:
        origin = next((o for o in self.origins if o.issuer == issuer), None)
        return origin.keys if origin else self.discoverable.get(issuer)

    @staticmethod
    def _client_claims_valid(claims: dict[str, Any], audience: str) -> bool:
        if any(name not in claims for name in _CLIENT_JWT_CLAIMS):
            return False
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or now > exp + _CLOCK_SKEW_S:
            return False
        if isinstance(nbf, int | float) and now + _CLOCK_SKEW_S < nbf:
            return False
        return audience in _audiences(claims)
