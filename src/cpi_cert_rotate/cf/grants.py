"""The ways to log in to UAA: one class per grant, chosen once from `CfAuth` (`grant_for`).

Each builds the form of `POST <login>/oauth/token` (RFC 6749 section 4, form-encoded) the
way the cf CLI sends it (cloudfoundry/cli `command/v7/auth_command.go`,
`api/uaa/auth.go`), says which client authenticates it with HTTP Basic, and turns UAA's
refusal into an error that names the fix:

- `PasswordGrant`: client `cf` with an empty secret (Basic), `username`, `password`,
  and for a non-default identity provider `login_hint={"origin":"<key>"}`;
- `ClientSecretGrant`: `client_credentials` with `client_id`/`client_secret` in the body;
- `JwtBearerGrant` (`cf auth --assertion TOKEN [--origin KEY]`):
  `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion`, Basic with
  the UAA client (`cf` and an empty secret unless another is given), `login_hint` for
  the origin;
- `ClientAssertionGrant` (`cf auth CLIENT_ID --client-credentials --assertion TOKEN`):
  `client_credentials` with `client_id`, `client_assertion` and
  `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`, no Basic.

`login_hint` goes in the body, not the query string as the cf CLI sends it: UAA reads
either (`request.getParameter`), and an operator can refuse query strings on the token
endpoint (uaa `UaaTokenEndpoint.java`, `jwt.token.queryString.enabled`). The Basic
client and secret are form-encoded (`auth._basic`), which the cf CLI's Go `SetBasicAuth`
does not do: UAA URL-decodes them (uaa `ClientBasicAuthenticationFilter.java`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import CfApiError, RotationError
from ..models import CfAuth, OidcGrant
from .oidc import refused

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_CF_CLIENT = "cf"


@dataclass(frozen=True)
class GrantRequest:
    """One token request: the form, the Basic client (None: none), the values to redact."""

    form: dict[str, str] = field(repr=False)
    basic: tuple[str, str] | None = field(default=None, repr=False)


class Grant(Protocol):
    """A way to log in: what to send, who refreshes, and what a refusal means."""

    @property
    def name(self) -> str:
        """The grant type, for logs."""
        ...

    def request(self) -> GrantRequest:
        """A new request (a login with a token fetches a fresh one)."""
        ...

    @property
    def refresh_client(self) -> tuple[str, str]:
        """The Basic client of a refresh_token grant (the one the tokens were issued to)."""
        ...

    def refused(self, error: CfApiError) -> RotationError:
        """UAA's 400/401 as an error that says what to fix."""
        ...


def _origin_hint(form: dict[str, str], origin: str) -> dict[str, str]:
    if origin:
        form["login_hint"] = json.dumps({"origin": origin}, separators=(",", ":"))
    return form


def _restated(error: CfApiError, who: str) -> CfApiError:
    return CfApiError(
        f"UAA refused to log in {who}: {error.detail or error.title or 'bad credentials'}",
        status=401,
        code=error.code,
        title=error.title,
        detail=error.detail,
        request_id=error.request_id,
        method=error.method,
        path=error.path,
    )


@dataclass(frozen=True)
class PasswordGrant:
    """A user and password, of UAA or of the identity provider `origin`."""

    username: str
    password: str = field(repr=False)
    origin: str = ""
    client: tuple[str, str] = (_CF_CLIENT, "")
    name: str = "password"

    def request(self) -> GrantRequest:
        form = {"grant_type": "password", "username": self.username, "password": self.password}
        return GrantRequest(_origin_hint(form, self.origin), self.client)

    @property
    def refresh_client(self) -> tuple[str, str]:
        return self.client

    def refused(self, error: CfApiError) -> RotationError:
        origin = f" (origin {self.origin!r})" if self.origin else ""
        return _restated(error, f"user {self.username!r}{origin}")


@dataclass(frozen=True)
class ClientSecretGrant:
    """A UAA client and its secret (client credentials; UAA issues no refresh token)."""

    client_id: str
    secret: str = field(repr=False)
    name: str = "client_credentials"

    def request(self) -> GrantRequest:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.secret,
        }
        return GrantRequest(form)

    @property
    def refresh_client(self) -> tuple[str, str]:
        return (self.client_id, self.secret)

    def refused(self, error: CfApiError) -> RotationError:
        return _restated(error, f"client {self.client_id!r}")


@dataclass(frozen=True)
class JwtBearerGrant:
    """An OIDC token for a user of `origin` (UAA's JWT bearer grant)."""

    token: Callable[[], str] = field(repr=False)
    origin: str = ""
    client: tuple[str, str] = field(default=(_CF_CLIENT, ""), repr=False)
    source: str = "the OIDC token"
    exchanged: bool = False
    name: str = "jwt-bearer"

    def request(self) -> GrantRequest:
        form = {"grant_type": JWT_BEARER, "assertion": self.token()}
        return GrantRequest(_origin_hint(form, self.origin), self.client)

    @property
    def refresh_client(self) -> tuple[str, str]:
        return self.client

    def refused(self, error: CfApiError) -> RotationError:
        return refused(
            error,
            grant=OidcGrant.USER,
            client_id=self.client[0],
            origin=self.origin,
            source=self.source,
            exchanged=self.exchanged,
        )


@dataclass(frozen=True)
class ClientAssertionGrant:
    """A UAA client that proves itself with an OIDC token instead of a secret."""

    client_id: str
    token: Callable[[], str] = field(repr=False)
    source: str = "the OIDC token"
    exchanged: bool = False
    name: str = "client_credentials (client assertion)"

    def request(self) -> GrantRequest:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.token(),
        }
        return GrantRequest(form)

    @property
    def refresh_client(self) -> tuple[str, str]:
        return (self.client_id, "")

    def refused(self, error: CfApiError) -> RotationError:
        return refused(
            error,
            grant=OidcGrant.CLIENT,
            client_id=self.client_id,
            origin="",
            source=self.source,
            exchanged=self.exchanged,
        )


def grant_for(auth: CfAuth, token: Callable[[], str] | None = None) -> Grant:
    """The grant `auth` asks for; `token` gives the (exchanged) OIDC token of an assertion.

    The request builder (`request.build`) has refused every mix of credentials, so exactly
    one way is set here.
    """
    assertion = auth.assertion
    if assertion is not None:
        assert token is not None, "an OIDC login needs its token source"
        exchanged = assertion.exchange_url is not None
        if assertion.grant is OidcGrant.CLIENT:
            return ClientAssertionGrant(auth.client_id, token, assertion.source, exchanged)
        client = (auth.client_id or _CF_CLIENT, auth.client_secret)
        return JwtBearerGrant(token, auth.origin, client, assertion.source, exchanged)
    if auth.username:
        return PasswordGrant(auth.username, auth.password, auth.origin)
    return ClientSecretGrant(auth.client_id, auth.client_secret)
