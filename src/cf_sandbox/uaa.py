"""UAA: `POST /oauth/token` (password, client_credentials, refresh_token, and with
`uaa_jwt_bearer` the JWT bearer grant and JWT client authentication) and `GET /login`.

Tokens are JWT-shaped (HS256 over a per-landscape secret) so clients can read `exp` and
refresh before expiry as the cf CLI does; `exp` and `iat` are integer seconds as in UAA's
tokens (uaa `server/.../oauth/UaaTokenServices.java` sets them from epoch seconds). Token
answers and OAuth errors carry `Cache-Control: no-store` and `Pragma: no-cache`
(uaa `server/.../oauth/provider/endpoint/TokenEndpoint.java`,
`.../provider/error/DefaultWebResponseExceptionTranslator.java`, RFC 6749 section 5.1).
The error bodies are UAA's `{"error","error_description"}`. `GET /login` with
`Accept: application/json` answers the login info the cf CLI reads its prompts from (cf CLI
`api/uaa/prompts.go`; uaa `server/.../login/LoginInfoEndpoint.java`, default prompts in
`model/.../zone/IdentityZoneConfiguration.java`; `passcode` only when an identity provider
shows a login link, the `uaa_passcode_prompt` option).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .state import Store
from .uaa_jwt_bearer import JWT_BEARER, JwtBearer, parse_login_hint
from .web import Request, Response, Router, basic_credentials

# Refresh tokens outlive access tokens, as UAA's default (30 days) does.
_REFRESH_TTL_S = 30 * 24 * 3600.0
_SCOPES = [
    "cloud_controller.read",
    "cloud_controller.write",
    "openid",
    "password.write",
    "uaa.user",
    "cloud_controller.admin_read_only",
]
_BAD_ORIGIN = (
    "The origin provided in the login_hint does not match an active Identity Provider, "
    "that supports password grant."
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PROMPTS = {
    "username": ["text", "Email"],
    "password": ["password", "Password"],
    "passcode": ["password", "Temporary Authentication Code (Get on at /passcode)"],
}
UAA_VERSION = "78.0.0"


def _error(status: int, error: str, description: str) -> Response:
    return Response(status, {"error": error, "error_description": description}, dict(_NO_STORE))


def _granted(body: dict[str, Any]) -> Response:
    return Response(200, body, dict(_NO_STORE))


@dataclass(frozen=True)
class Accounts:
    """Who may log in: one user of an origin, the `cf` client, one technical client."""

    username: str
    password: str
    origin: str
    client_id: str
    client_secret: str


class TokenIssuer:
    """Signs and checks tokens; remembers which refresh tokens are still valid."""

    def __init__(self, store: Store, accounts: Accounts, issuer_url: str) -> None:
        self._store = store
        self._secret = secrets.token_bytes(32)
        self.accounts = accounts
        self.issuer_url = issuer_url
        self._refresh: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.user_guid = str(uuid.uuid4())

    def _sign(self, payload: dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "kid": "sandbox", "typ": "JWT"}).encode())
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        mac = hmac.new(self._secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        return f"{header}.{body}.{_b64(mac)}"

    def decode(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this issuer signed that has not expired, else None."""
        try:
            header, body, mac = token.split(".")
            expected = hmac.new(self._secret, f"{header}.{body}".encode(), hashlib.sha256)
            if not hmac.compare_digest(_unb64(mac), expected.digest()):
                return None
            claims: dict[str, Any] = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return None
        if float(claims.get("exp", 0)) <= time.time():
            return None
        return claims

    def grant(
        self, subject: dict[str, Any], grant_type: str, refreshable: bool = True
    ) -> dict[str, Any]:
        """A 200 token response for `subject` (user or client claims); `refreshable`: the
        client has `refresh_token` among its grant types (UaaTokenServices.java creates a
        refresh token only then)."""
        ttl = self._store.options.token_ttl_s
        issued = time.time()
        jti = uuid.uuid4().hex
        claims = {
            "jti": jti,
            "scope": _SCOPES,
            "grant_type": grant_type,
            "iat": int(issued),
            "exp": int(issued + ttl),
            "iss": f"{self.issuer_url}/oauth/token",
            "zid": "uaa",
            "aud": ["cloud_controller", "openid", subject["client_id"]],
            **subject,
        }
        answer: dict[str, Any] = {
            "access_token": self._sign(claims),
            "token_type": "bearer",
            "expires_in": max(int(ttl), 0),
            "scope": " ".join(_SCOPES),
            "jti": jti,
        }
        # UAA issues no refresh token for client credentials, nor for any grant when the
        # operator restricts the refresh grant (`jwt.refresh.restrict_grant`,
        # RefreshTokenCreator.isRefreshTokenSupported) and the scope lacks uaa.offline_token.
        if (
            refreshable
            and grant_type != "client_credentials"
            and not self._store.options.uaa_restrict_refresh_grant
        ):
            refresh = {"jti": f"{jti}-r", "exp": int(issued + _REFRESH_TTL_S), **subject}
            with self._lock:
                self._refresh[refresh["jti"]] = subject
            answer["refresh_token"] = self._sign(refresh)
        return answer

    def query_string_allowed(self) -> bool:
        """UAA's `jwt.token.queryString.enabled` (the `uaa_token_query_string` option)."""
        return self._store.options.uaa_token_query_string

    def passcode_prompt(self) -> bool:
        """Whether `/login` lists the SSO passcode prompt (an option of the zone's IdPs)."""
        return self._store.options.uaa_passcode_prompt

    def redeem_refresh(self, token: str) -> dict[str, Any] | None:
        """The subject of a valid refresh token (each may be used many times, as UAA's)."""
        claims = self.decode(token)
        if claims is None:
            return None
        with self._lock:
            return self._refresh.get(str(claims.get("jti")))


class Uaa:
    """The token endpoint's routes."""

    def __init__(self, issuer: TokenIssuer, jwt_bearer: JwtBearer | None = None) -> None:
        self.issuer = issuer
        self.jwt_bearer = jwt_bearer

    def register(self, router: Router) -> None:
        """Add `/oauth/token`, `/login` and `/info` to a router."""
        router.add("POST", "/oauth/token", self.token, auth=False)
        router.add("GET", "/login", self.login_info, auth=False)
        router.add("GET", "/info", self.login_info, auth=False)

    def login_info(self, req: Request) -> Response:
        """`GET /login` (JSON when asked for; otherwise UAA's HTML login page)."""
        if "application/json" not in (req.headers.get("Accept") or ""):
            page = "<!DOCTYPE html><html><body>UAA login (cf-sandbox)</body></html>\n"
            return Response(200, page, content_type="text/html;charset=UTF-8")
        prompts = dict(_PROMPTS)
        show_links = self.issuer.passcode_prompt()
        if not show_links:
            del prompts["passcode"]
        base = self.issuer.issuer_url
        return Response(
            200,
            {
                "app": {"version": UAA_VERSION},
                "showLoginLinks": show_links,
                "links": {
                    "uaa": base,
                    "passwd": "/forgot_password",
                    "login": base,
                    "register": "/create_account",
                },
                "zone_name": "uaa",
                "entityID": "cloudfoundry-saml-login",
                "commit_id": "sandbox",
                "idpDefinitions": {},
                "prompts": prompts,
                "timestamp": "2026-01-01T00:00:00+0000",
            },
        )

    def token(self, req: Request) -> Response:
        """The token endpoint: the client and user are authenticated first (filters), then
        the endpoint refuses a query string if the operator turned them off (uaa
        `server/.../oauth/token/UaaTokenEndpoint.java` with
        `oauth/advice/HttpMethodNotSupportedAdvice.java`: 406 `query_string_not_allowed`)."""
        answer = self._token(req.form(), basic_credentials(req))
        if answer.status == 200 and req.query and not self.issuer.query_string_allowed():
            return _error(
                406,
                "query_string_not_allowed",
                "Parameters must be passed in the body of the request",
            )
        return answer

    def _token(self, form: dict[str, str], basic: tuple[str, str] | None) -> Response:
        """Dispatch on `grant_type` (`provider/endpoint/TokenEndpoint.java`)."""
        client = basic or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        grant_type = form.get("grant_type", "")
        if self.jwt_bearer is not None:
            if grant_type == JWT_BEARER:
                return self._jwt_bearer(form, client)
            if grant_type == "client_credentials" and "client_assertion" in form:
                return self._client_assertion(form)
        grants = {
            "password": self._password,
            "client_credentials": self._client_credentials,
            "refresh_token": self._refresh,
        }
        if grant_type in grants:
            return grants[grant_type](form, client)
        if not grant_type:
            return _error(400, "invalid_request", "Missing grant type")
        return _error(400, "unsupported_grant_type", "Unsupported grant type")

    def _client_credentials(self, form: dict[str, str], client: tuple[str, str]) -> Response:
        accounts = self.issuer.accounts
        if client != (accounts.client_id, accounts.client_secret):
            return _error(401, "invalid_client", "Bad credentials")
        subject = {"client_id": client[0], "cid": client[0], "sub": client[0]}
        return _granted(self.issuer.grant(subject, "client_credentials"))

    def _refresh(self, form: dict[str, str], client: tuple[str, str]) -> Response:
        """TokenEndpoint.java (no `refresh_token`: 400), AbstractTokenGranter (the client's
        grant types), UaaTokenServices.refreshAccessToken (the token's own client)."""
        if not self._known_client(client):
            return _error(401, "invalid_client", "Bad credentials")
        if not form.get("refresh_token"):
            return _error(400, "invalid_request", "refresh_token parameter not provided")
        if not self._may_refresh(client[0]):
            return _error(401, "invalid_client", "Unauthorized grant type")
        subject = self.issuer.redeem_refresh(form["refresh_token"])
        if subject is None:
            return _error(401, "invalid_token", "Invalid refresh token (expired)")
        if subject.get("client_id") != client[0]:
            cid = subject.get("client_id")
            return _error(400, "invalid_grant", f"Wrong client for this refresh token: {cid}")
        return _granted(self.issuer.grant(subject, "refresh_token"))

    def _may_refresh(self, client_id: str) -> bool:
        """The client has `refresh_token` among its grant types (the `cf` client of
        cf-deployment has)."""
        if self.jwt_bearer is None:
            return client_id == "cf"
        known = self.jwt_bearer.clients.get(client_id)
        return known is not None and "refresh_token" in known.grant_types

    def _known_client(self, client: tuple[str, str]) -> bool:
        """A registered client that authenticates with its secret (Basic or form)."""
        if self.jwt_bearer is None:
            return client == ("cf", "")
        known = self.jwt_bearer.clients.get(client[0])
        return (
            known is not None
            and known.secret is not None
            and hmac.compare_digest(known.secret, client[1])
        )

    def _jwt_bearer(self, form: dict[str, str], client: tuple[str, str]) -> Response:
        assert self.jwt_bearer is not None
        if not self._known_client(client):
            return _error(401, "invalid_client", "Bad credentials")
        subject = self.jwt_bearer.user_subject(form, client[0])
        if isinstance(subject, Response):
            return subject
        return _granted(self.issuer.grant(subject, JWT_BEARER, self._may_refresh(client[0])))

    def _client_assertion(self, form: dict[str, str]) -> Response:
        assert self.jwt_bearer is not None
        client = self.jwt_bearer.assertion_client(form)
        if isinstance(client, Response):
            return client
        if "client_credentials" not in client.grant_types:
            return _error(401, "invalid_client", "Unauthorized grant type")
        subject = {"client_id": client.client_id, "cid": client.client_id, "sub": client.client_id}
        return _granted(self.issuer.grant(subject, "client_credentials"))

    def _password(self, form: dict[str, str], client: tuple[str, str]) -> Response:
        accounts = self.issuer.accounts
        if client != ("cf", ""):
            return _error(401, "invalid_client", "Bad credentials")
        hint = parse_login_hint(form.get("login_hint"))
        if hint is not None and hint.origin != accounts.origin:
            return _error(401, "unauthorized", _BAD_ORIGIN)
        if "passcode" in form:
            return _error(401, "unauthorized", "Bad credentials")
        if (form.get("username"), form.get("password")) != (accounts.username, accounts.password):
            return _error(401, "invalid_client", "Bad credentials")
        subject = {
            "client_id": "cf",
            "cid": "cf",
            "sub": self.issuer.user_guid,
            "user_id": self.issuer.user_guid,
            "user_name": accounts.username,
            "email": accounts.username,
            "origin": accounts.origin,
        }
        return _granted(self.issuer.grant(subject, "password", self._may_refresh("cf")))
