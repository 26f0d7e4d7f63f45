"""UAA tokens for the Cloud Controller: log in, refresh before expiry, renew after a 401.

How each login method asks UAA (password, client secret, an OIDC token as a user or as a
client's assertion) is `grants`; this module holds the token. All grants are form-encoded
POSTs to `<login>/oauth/token` (https://docs.cloudfoundry.org/api/uaa/, "Token"). A
refresh uses the refresh_token grant with the client the tokens were issued to; when UAA
issued no refresh token (client credentials, or an operator who restricts the refresh
grant) or refuses it (401/400), the original grant runs again: the credentials are still
in memory, and an OIDC login fetches a new token, so a run outlives the short-lived OIDC
token.

One `UaaAuth` may serve several `CfClient`s at once (a targets file's rotations share one
login): every step that touches the token runs under one lock, and a renewal after a 401
happens only when the rejected token is still the one held, so N calls rejected together
cost one refresh grant, not N in a row.

The token is renewed when a quarter of its lifetime (at most 30 s) is left. The lifetime
comes from the JWT (`exp - iat`, less one second: UAA's claims are whole seconds) or
`expires_in`, whichever is shorter, and is counted on the local monotonic clock from the
moment of the request, so a skewed runner clock does not matter. Token values, passwords
and secrets are registered with the `Redactor` and never appear in logs or errors.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..errors import CfApiError, InputError
from ..models import CfAuth
from .grants import Grant, grant_for
from .http import CfHttp, Redactor
from .oidc import token_source

__all__ = ["UaaAuth"]

logger = logging.getLogger(__name__)

# Renew when this share of the lifetime is left, but never earlier than this many seconds
# before expiry: short-lived test tokens (2 s) still get most of their life used.
_RENEW_SHARE = 0.25
_RENEW_MAX_MARGIN_S = 30.0
_UNKNOWN_LIFETIME_S = float("inf")  # no expiry known: rely on the 401 replay
_WHOLE_SECOND_S = 1.0


def _basic(client_id: str, secret: str) -> dict[str, str]:
    """HTTP Basic for a UAA client: id and secret form-encoded first (RFC 6749 section
    2.3.1), as UAA decodes them (uaa `ClientBasicAuthenticationFilter.java`: `URLDecoder`,
    so a raw `+` in a secret would arrive as a space), with `X-CF-ENCODED-CREDENTIALS`
    so that UAA decodes them also where the operator turned on
    `authentication.enableUriEncodingCompatibilityMode`."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return {
        "Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii"),
        "X-CF-ENCODED-CREDENTIALS": "true",
    }


def _jwt_claims(token: str) -> dict[str, Any]:
    """The JWT payload, unverified: only `exp`/`iat` are read, to schedule the renewal."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def _lifetime_s(access_token: str, expires_in: Any) -> float:
    candidates: list[float] = []
    if isinstance(expires_in, int | float) and expires_in > 0:
        candidates.append(float(expires_in))
    claims = _jwt_claims(access_token)
    exp, iat = claims.get("exp"), claims.get("iat")
    if isinstance(exp, int | float) and isinstance(iat, int | float) and exp > iat:
        # UAA writes both claims as whole seconds, rounded down (UaaTokenServices.java:
        # `getCurrentTimeMillis() / MILLIS_PER_SECOND`), so a token issued at x.9 s expires
        # up to a second sooner than `exp - iat` after the request: count one second less.
        candidates.append(float(exp - iat) - _WHOLE_SECOND_S)
    return min(candidates) if candidates else _UNKNOWN_LIFETIME_S


@dataclass(frozen=True)
class _Token:
    access: str = field(repr=False)
    refresh: str | None = field(repr=False)
    renew_at: float
    """`time.monotonic()` after which the token is renewed before use."""


class UaaAuth:
    """Holds the UAA token of one `CfClient`; a `BearerSource` for `CfHttp`."""

    def __init__(
        self,
        http: CfHttp,
        credentials: CfAuth,
        token_url: Callable[[], str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._token_url = token_url
        self._clock = clock
        self._token: _Token | None = None
        self._lock = threading.Lock()
        self._redactors: list[Redactor] = []
        self.redact_in(http.redact)
        assertion = credentials.assertion
        token = token_source(http, assertion) if assertion is not None else None
        self._grant: Grant = grant_for(credentials, token)

    def redact_in(self, redactor: Redactor) -> None:
        """Have `redactor` cut this login's secrets: the credentials, every token so far and
        every later one (a client that shares this login redacts its own errors with it)."""
        with self._lock:
            self._redactors.append(redactor)
            redactor.add(self._credentials.password, self._credentials.client_secret)
            if self._token is not None:
                redactor.add(self._token.access, self._token.refresh)

    def _redact(self, *values: str | None) -> None:
        for redactor in self._redactors:
            redactor.add(*values)

    @property
    def grant(self) -> str:
        """The grant type of the login (`password`, `client_credentials`, `jwt-bearer`)."""
        return self._grant.name

    def login(self) -> None:
        """Have a token now: run the configured grant unless one is held and not near
        expiry (a shared login logs in once); 401 means the credentials are wrong."""
        self.authorization()

    def authorization(self) -> str:
        with self._lock:
            if self._token is None:
                self._token = self._login()
            elif self._clock() >= self._token.renew_at:
                logger.debug("token near expiry; renewing before the call")
                self._token = self._refresh(self._token)
            return "bearer " + self._token.access

    def renew(self, rejected: str | None = None) -> None:
        """A new token after Cloud Controller rejected `rejected` (the `Authorization`
        value it was sent); nothing when another call renewed it meanwhile."""
        with self._lock:
            if self._token is None:
                self._token = self._login()
            elif rejected is None or rejected == "bearer " + self._token.access:
                self._token = self._refresh(self._token)
            else:
                logger.debug("token rejected, but another call renewed it already")

    def _login(self) -> _Token:
        creds = self._credentials
        if not creds.username and not creds.client_id and creds.assertion is None:
            raise InputError(
                "no Cloud Foundry credentials were given",
                code="missing-credentials",
                fix="Pass `cf-username` and `cf-password` (with `cf-origin` for a custom "
                "identity provider), `cf-client-id` and `cf-client-secret`, or `cf-oidc`.",
            )
        request = self._grant.request()
        try:
            return self._call(request.form, request.basic)
        except CfApiError as error:
            if error.status not in (400, 401):
                raise
            raise self._grant.refused(error) from error

    def _refresh(self, token: _Token) -> _Token:
        if token.refresh is None:
            return self._login()
        form = {"grant_type": "refresh_token", "refresh_token": token.refresh}
        try:
            return self._call(form, self._grant.refresh_client)
        except CfApiError as error:
            if error.status not in (400, 401):
                raise
            logger.debug("refresh token refused (%s); logging in again", error.title or "401")
            return self._login()

    def _call(self, form: dict[str, str], client: tuple[str, str] | None) -> _Token:
        url = self._token_url()
        self._http.allow_post_retries(url)
        self._redact(*(form.get(k) for k in ("assertion", "client_assertion")))
        headers = _basic(*client) if client else {}
        if client:
            self._redact(headers["Authorization"].split(" ", 1)[1])
        started = self._clock()
        response = self._http.request("POST", url, form=form, headers=headers, service="UAA")
        body = self._http.json(response, "a UAA token")
        access = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(access, str) or not access:
            raise CfApiError(
                "UAA answered without an access token",
                status=response.status_code,
                path="/oauth/token",
            )
        refresh = body.get("refresh_token")
        refresh = refresh if isinstance(refresh, str) and refresh else None
        self._redact(access, refresh)
        lifetime = _lifetime_s(access, body.get("expires_in"))
        margin = min(_RENEW_MAX_MARGIN_S, lifetime * _RENEW_SHARE)
        logger.debug("UAA %s grant ok; token lifetime %.0fs", form["grant_type"], lifetime)
        return _Token(access=access, refresh=refresh, renew_at=started + lifetime - margin)
