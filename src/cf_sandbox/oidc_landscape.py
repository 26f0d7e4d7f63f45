"""The passwordless login of a landscape: GitHub's issuer, an IAS tenant, UAA's trust in both.

The rules live in `oidc_issuer`, `ias` and `uaa_jwt_bearer` (which cite cloudfoundry/uaa
`ExternalOAuthAuthenticationManager.java` and the SAP-docs pages); this module only
configures them.

`Landscape(oidc=True)` wires three ways a job's OIDC token becomes a Cloud Foundry token,
each as the platform's sources describe it (see `uaa_jwt_bearer` and `ias`):

- one step, SAP's model: `login_hint` names the platform origin `ias-platform`, whose
  provider (the IAS tenant) has token exchange enabled; UAA sends the GitHub token to IAS
  as a JWT bearer grant with its own client credentials and logs in with the `id_token`
  IAS answers. IAS trusts GitHub as a corporate identity provider (audience: the IAS
  issuer), the platform application authenticates with it (SAP: its default identity
  provider or a conditional authentication rule), and the job's `sub` maps to the user
  `ROTATOR_EMAIL` (`IasUser.identifier`: how IAS maps a subject that is no e-mail address
  is not documented, so this mapping is the sandbox's, not verified).
- two steps: the job exchanges the GitHub token at IAS itself (the platform application's
  client ID, client authentication by a JWT trusted by issuer and exact `sub`), then
  presents IAS's `id_token` to UAA; UAA finds `ias-platform` by its issuer.
- direct trust (a community Cloud Foundry): the origin `github-actions` trusts GitHub's
  issuer itself; the token's audience must be `DIRECT_AUDIENCE`.
And a client: `FEDERATED_CLIENT` authenticates with a GitHub token whose `sub` is the
job's (audience: UAA's token endpoint) for the client credentials grant.

On SAP BTP a platform user must exist in the origin before it can log in (a space role
given in the cockpit or with `cf set-space-role --origin` creates it), so `ias-platform`
adds no shadow users and `ROTATOR_EMAIL` is added beforehand.
"""

from __future__ import annotations

import secrets

from .ias import CorporateIdp, IasApplication, IasTenant, IasUser, TrustByIssuer
from .oidc_issuer import DEFAULT_SUBJECT, OidcIssuer
from .uaa_jwt_bearer import (
    JWT_BEARER,
    ClientJwtCredential,
    JwtBearer,
    OidcOrigin,
    UaaClient,
)
from .web import Response

PLATFORM_ORIGIN = "ias-platform"
DIRECT_ORIGIN = "github-actions"
DIRECT_AUDIENCE = "cf-sandbox"
FEDERATED_CLIENT = "cpi-rotator-oidc"
ROTATOR_EMAIL = "cpi-rotator@acme.example"
GITHUB_IDP_CLIENT_ID = "github-actions-idp"


def uaa_clients(jwt: JwtBearer, technical: tuple[str, str]) -> None:
    """The zone's clients: `cf` (public, empty secret) and the technical client.

    cf-deployment gives `cf` the password and refresh_token grants; the JWT bearer grant
    is added here, as `cf auth --assertion` needs it (an operator setting).
    """
    jwt.clients["cf"] = UaaClient("cf", "", {"password", "refresh_token", JWT_BEARER})
    jwt.clients[technical[0]] = UaaClient(technical[0], technical[1], {"client_credentials"})


class OidcParts:
    """GitHub's stand-in, the IAS tenant, and UAA's origins and client (see the module)."""

    def __init__(self, github_url: str, ias_url: str, jwt: JwtBearer) -> None:
        self.github = OidcIssuer(github_url)
        self.ias = IasTenant(ias_url)
        self.jwt = jwt
        self.platform_client_id = "btp-platform-" + secrets.token_hex(4)
        self._platform_secret = secrets.token_urlsafe(18)
        self._configure_ias()
        self._configure_uaa()

    def _configure_ias(self) -> None:
        github = self.github
        self.ias.corporate_idps.append(
            CorporateIdp(github.issuer, github.jwks, GITHUB_IDP_CLIENT_ID, "sub")
        )
        self.ias.applications[self.platform_client_id] = IasApplication(
            self.platform_client_id,
            secret=self._platform_secret,
            jwt_bearer=True,
            trusted=[TrustByIssuer(github.issuer, github.jwks, DEFAULT_SUBJECT)],
            corporate_idps={github.issuer},
        )
        self.ias.users.append(IasUser(DEFAULT_SUBJECT, ROTATOR_EMAIL))

    def _proxy(self, assertion: str) -> Response:
        """UAA's `oidcJwtBearerGrant`: its relying party's credentials, `response_type`."""
        form = {"grant_type": JWT_BEARER, "assertion": assertion, "response_type": "id_token"}
        return self.ias.token(form, (self.platform_client_id, self._platform_secret))

    def _configure_uaa(self) -> None:
        github, ias = self.github, self.ias
        self.jwt.origins.append(
            OidcOrigin(
                PLATFORM_ORIGIN,
                ias.issuer,
                ias.jwks,
                self.platform_client_id,
                user_name_claim="email",
                add_shadow_user=False,
                proxy=self._proxy,
            )
        )
        self.jwt.add_user(PLATFORM_ORIGIN, ROTATOR_EMAIL)
        self.jwt.origins.append(
            OidcOrigin(DIRECT_ORIGIN, github.issuer, github.jwks, DIRECT_AUDIENCE)
        )
        self.jwt.discoverable[github.issuer] = github.jwks
        self.jwt.clients[FEDERATED_CLIENT] = UaaClient(
            FEDERATED_CLIENT,
            None,
            {"client_credentials"},
            [ClientJwtCredential(github.issuer, DEFAULT_SUBJECT)],
        )

    def state(self) -> dict[str, str]:
        """What a client needs for a passwordless login; `github_bearer` is what the runner
        gives a job with `id-token: write` (the state file is the owner's only)."""
        return {
            "github_issuer": self.github.issuer,
            "github_token_url": self.github.token_url,
            "github_bearer": self.github.bearer,
            "ias_url": self.ias.url,
            "ias_token_url": self.ias.token_url,
            "platform_origin": PLATFORM_ORIGIN,
            "platform_client_id": self.platform_client_id,
            "direct_origin": DIRECT_ORIGIN,
            "direct_audience": DIRECT_AUDIENCE,
            "federated_client": FEDERATED_CLIENT,
            "uaa_token_url": self.jwt.token_endpoint,
            "rotator_email": ROTATOR_EMAIL,
        }
