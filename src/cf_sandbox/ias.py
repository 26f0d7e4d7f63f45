"""An SAP Cloud Identity Services (IAS) tenant's JWT bearer token exchange, as documented.

`POST /oauth2/token` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
follows SAP's pages in `SAP-docs/btp-cloud-identity-services` (read 2026-08-21), all in
`docs/Operation-Guide/`:
- `configure-the-client-to-call-identity-authentication-jwt-bearer-token-01a0440.md`
  (read at c1af221 and 0002caa): the form parameters (`assertion`, `client_id`,
  `grant_type`, `client_secret`, ...); an external `id_token` is accepted when its
  issuer is a configured corporate identity provider *that is the application's default
  identity provider or chosen by its authentication rules* (conditional authentication),
  and its `aud` holds the tenant's issuer or (0002caa) that provider's client ID; "the
  value of email or sub claim" (the provider's subject name identifier) "will be used to
  search the user by e-mail"; public clients cannot exchange external tokens; the answer
  holds `access_token`, `id_token`, `token_type` and `expires_in`;
- `configure-openid-connect-oidc-application-for-jwt-bearer-flow-dd8cd7a.md`:
  the application must have the *JWT Bearer* grant type selected;
- `configure-jwt-for-oauth-client-authentication-db97a69.md`:
  a client authenticates with a JWT `client_assertion` trusted *by issuer* (issuer,
  the exact `sub`, an optional audience; `client_id` must be in the request), or with
  Basic / `client_secret`.
Signature, `exp` and `nbf` are checked as RFC 7523 section 3 requires. SAP publishes
neither the error texts nor the exact user lookup, so the answers are RFC 6749 section
5.2's codes (`invalid_request`, `invalid_client` 401, `invalid_grant`,
`unauthorized_client`, `unsupported_grant_type`) with descriptions of the sandbox's own:
a client must act on the code, never on the text. Keys are at `/oauth2/certs`, the
discovery document at `/.well-known/openid-configuration`.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .jose import Jwt, SigningKey, signed_by
from .web import Request, Response, Router, basic_credentials

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_TOKEN_TTL_S = 3600  # the lifetime in the documented answer (`expires_in: 3600`)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

Keys = Callable[[], list[dict[str, Any]]]
"""The JWKS `keys` of an issuer IAS trusts (fetched from its `jwks_uri` on a real tenant)."""


@dataclass(frozen=True)
class CorporateIdp:
    """An OpenID Connect corporate identity provider (GitHub's issuer, for the sandbox)."""

    issuer: str
    keys: Keys
    client_id: str
    """Its "client ID" in IAS: besides the tenant's issuer, the `aud` IAS accepts."""
    subject_name_identifier: str = "sub"
    """Which claim finds the user: `sub` or `email`."""


@dataclass(frozen=True)
class TrustByIssuer:
    """A JWT client credential (`Configure Trust by Issuer`): issuer, exact `sub`, audience."""

    issuer: str
    keys: Keys
    subject: str
    audience: str | None = None


@dataclass
class IasApplication:
    """An OIDC application: its client ID, how it may authenticate, its grant types."""

    client_id: str
    secret: str | None = None
    jwt_bearer: bool = True
    trusted: list[TrustByIssuer] = field(default_factory=list)
    corporate_idps: set[str] = field(default_factory=set)
    """Issuers of the corporate providers the application authenticates with: its default
    identity provider or one its conditional authentication rules select."""

    @property
    def public(self) -> bool:
        """A client with neither a secret nor a trusted JWT credential."""
        return self.secret is None and not self.trusted


@dataclass(frozen=True)
class IasUser:
    """A user of the tenant, found by `email` as SAP's page says.

    `identifier` is the sandbox's stand-in for what SAP does not document: how a token
    whose subject is no e-mail address (GitHub's `repo:OWNER/REPO:...`) reaches a user
    (identity federation, enriched attributes, ...). It is NOT verified against IAS.
    """

    identifier: str
    email: str
    user_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


class _Refused(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.response = Response(
            status, {"error": error, "error_description": description}, dict(_NO_STORE)
        )


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


def _time_valid(claims: dict[str, Any], now: float) -> str | None:
    """Why the token is outside its validity (RFC 7523 section 3, items 4 and 5), or None."""
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float) or now >= exp:
        return "expired"
    if isinstance(nbf, int | float) and now < nbf:
        return "not yet valid"
    return None


class IasTenant:
    """One tenant: applications, corporate identity providers, users; the token endpoint."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.key = SigningKey("RS256")
        self.applications: dict[str, IasApplication] = {}
        self.corporate_idps: list[CorporateIdp] = []
        self.users: list[IasUser] = []
        self.exchanges: list[dict[str, str]] = []
        """Every successful exchange: client, corporate issuer and user."""
        self.issued: list[str] = []
        """Every `id_token` handed out (tests check that none leaked)."""

    @property
    def issuer(self) -> str:
        """The tenant's issuer (a real tenant's is `https://<tenant>.accounts.ondemand.com`)."""
        return self.url

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/token"

    def jwks(self) -> list[dict[str, Any]]:
        return [self.key.jwk()]

    def register(self, router: Router) -> None:
        router.add("POST", "/oauth2/token", self._token_route, auth=False)
        router.add(
            "GET", "/oauth2/certs", lambda req: Response(200, {"keys": self.jwks()}), auth=False
        )
        router.add("GET", "/.well-known/openid-configuration", self._discovery, auth=False)

    def _discovery(self, req: Request) -> Response:
        return Response(
            200,
            {
                "issuer": self.issuer,
                "token_endpoint": self.token_url,
                "jwks_uri": f"{self.url}/oauth2/certs",
                "grant_types_supported": [JWT_BEARER, "client_credentials", "refresh_token"],
                "id_token_signing_alg_values_supported": ["RS256"],
            },
        )

    def _token_route(self, req: Request) -> Response:
        return self.token(req.form(), basic_credentials(req))

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> Response:
        """The token endpoint on a parsed form (UAA's proxy calls it the same way)."""
        try:
            return Response(200, self._exchange(form, basic), dict(_NO_STORE))
        except _Refused as refused:
            return refused.response

    def _exchange(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        grant = form.get("grant_type", "")
        if not grant:
            raise _Refused(400, "invalid_request", "grant_type is missing")
        if grant != JWT_BEARER:
            raise _Refused(400, "unsupported_grant_type", f"grant type {grant} is not supported")
        app = self._authenticate(form, basic)
        if not app.jwt_bearer:
            raise _Refused(
                400, "unauthorized_client", "the application does not allow the JWT bearer grant"
            )
        assertion = form.get("assertion", "")
        if not assertion:
            raise _Refused(400, "invalid_request", "assertion is missing")
        claims, idp = self._checked_assertion(assertion)
        if idp is not None and app.public:
            raise _Refused(
                400, "unauthorized_client", "a public client cannot exchange an external token"
            )
        if idp is not None and idp.issuer not in app.corporate_idps:
            raise _Refused(
                400,
                "invalid_grant",
                "the application does not authenticate with the assertion's identity provider",
            )
        user = self._user(claims, idp)
        self.exchanges.append(
            {"client_id": app.client_id, "issuer": str(claims.get("iss")), "user": user.email}
        )
        return self._answer(app, user)

    def _authenticate(self, form: dict[str, str], basic: tuple[str, str] | None) -> IasApplication:
        """RFC 6749 section 2.3: Basic, `client_secret`, or a `client_assertion` (RFC 7523 2.2)."""
        client_id = basic[0] if basic else form.get("client_id", "")
        app = self.applications.get(client_id)
        if app is None:
            raise _Refused(401, "invalid_client", "client authentication failed")
        secret = basic[1] if basic else form.get("client_secret")
        if secret is not None:
            if app.secret is None or not hmac.compare_digest(secret, app.secret):
                raise _Refused(401, "invalid_client", "client authentication failed")
            return app
        if "client_assertion" in form:
            if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
                raise _Refused(400, "invalid_request", "client_assertion_type is not supported")
            self._check_client_assertion(app, form["client_assertion"])
            return app
        if not app.public:
            raise _Refused(401, "invalid_client", "client authentication failed")
        return app

    def _check_client_assertion(self, app: IasApplication, assertion: str) -> None:
        try:
            jwt = Jwt.parse(assertion)
        except ValueError as error:
            raise _Refused(401, "invalid_client", "client_assertion is not a JWT") from error
        claims = jwt.claims
        trust = next(
            (
                t
                for t in app.trusted
                if t.issuer == claims.get("iss") and t.subject == claims.get("sub")
            ),
            None,
        )
        if trust is None:
            raise _Refused(
                401, "invalid_client", "no trust for the client_assertion's issuer and subject"
            )
        if not signed_by(jwt, trust.keys()):
            raise _Refused(401, "invalid_client", "client_assertion signature is invalid")
        why = _time_valid(claims, time.time())
        if why:
            raise _Refused(401, "invalid_client", f"client_assertion is {why}")
        if trust.audience is not None and trust.audience not in _audiences(claims):
            raise _Refused(401, "invalid_client", "client_assertion audience is not accepted")

    def _checked_assertion(self, assertion: str) -> tuple[dict[str, Any], CorporateIdp | None]:
        """The assertion's claims and its corporate provider (None: this tenant's own token)."""
        try:
            jwt = Jwt.parse(assertion)
        except ValueError as error:
            raise _Refused(400, "invalid_grant", "assertion is not a JWT") from error
        claims = jwt.claims
        issuer = claims.get("iss")
        idp = next((i for i in self.corporate_idps if i.issuer == issuer), None)
        keys = idp.keys() if idp else (self.jwks() if issuer == self.issuer else None)
        if keys is None:
            raise _Refused(400, "invalid_grant", "the assertion's issuer is not trusted")
        if not signed_by(jwt, keys):
            raise _Refused(400, "invalid_grant", "assertion signature is invalid")
        why = _time_valid(claims, time.time())
        if why:
            raise _Refused(400, "invalid_grant", f"assertion is {why}")
        accepted = {self.issuer} | ({idp.client_id} if idp else set())
        if not accepted & set(_audiences(claims)):
            raise _Refused(400, "invalid_grant", "assertion audience is not accepted")
        return claims, idp

    def _user(self, claims: dict[str, Any], idp: CorporateIdp | None) -> IasUser:
        """By e-mail with the claim's value (SAP's page), else the unverified `identifier`."""
        claim = idp.subject_name_identifier if idp else "sub"
        value = claims.get(claim)
        if not isinstance(value, str):
            value = ""
        user = next((u for u in self.users if u.email.lower() == value.lower()), None)
        if user is None:
            user = next((u for u in self.users if value and u.identifier == value), None)
        if user is None:
            raise _Refused(400, "invalid_grant", "no user for the assertion's subject")
        return user

    def _answer(self, app: IasApplication, user: IasUser) -> dict[str, Any]:
        now = int(time.time())
        id_token = self.key.sign(
            {
                "iss": self.issuer,
                "sub": user.email,
                "aud": app.client_id,
                "azp": app.client_id,
                "email": user.email,
                "user_uuid": user.user_uuid,
                "iat": now,
                "exp": now + _TOKEN_TTL_S,
                "jti": str(uuid.uuid4()),
            }
        )
        self.issued.append(id_token)
        return {
            "access_token": secrets.token_urlsafe(32),
            "id_token": id_token,
            "token_type": "Bearer",
            "expires_in": _TOKEN_TTL_S,
        }
