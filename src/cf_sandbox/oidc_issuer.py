"""A local OIDC provider standing in for GitHub Actions' (`token.actions.githubusercontent.com`).

What a job sees of it, as the runner and @actions/core use it (docs.github.com, "OpenID
Connect reference" and "About security hardening with OpenID Connect"; actions/toolkit
`packages/core/src/oidc-utils.ts`, `OidcClient.getIDToken`): a token endpoint the
runner names in `ACTIONS_ID_TOKEN_REQUEST_URL`, called with `GET ...&audience=<aud>`
and `Authorization: bearer <ACTIONS_ID_TOKEN_REQUEST_TOKEN>`, answering
`{"count": 1, "value": "<JWT>"}`; without an `audience` the token's `aud` is the
repository owner's URL. What a relying party sees:
the discovery document at `/.well-known/openid-configuration` and the keys at
`/.well-known/jwks`, tokens signed RS256 (ES256 as an option) with a `kid`, and the claims
of GitHub's reference (`sub` as `repo:OWNER/REPO:environment:NAME` for a job with an
environment, `repository`, `repository_owner`, `environment`, `ref`, `job_workflow_ref`,
`run_id`, `iat`, `nbf`, `exp`, `jti`).

The issuer is the server's own URL, so a relying party can discover and fetch its keys;
`issued` keeps every token handed out, so tests can check that none leaked.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .jose import SigningKey
from .web import Request, Response, Router

DEFAULT_SUBJECT = "repo:acme/cpi-ops:environment:cpi-production"
"""The `sub` of a job in repository acme/cpi-ops that names environment cpi-production."""

_LIFETIME_S = 300
"""How long a token is valid; GitHub's are short-lived (minutes), so clients fetch anew."""
_NBF_SLACK_S = 5


@dataclass
class JobIdentity:
    """Who the job is: the claims GitHub derives from the repository, run and environment."""

    repository: str = "acme/cpi-ops"
    environment: str | None = "cpi-production"
    ref: str = "refs/heads/main"
    workflow: str = "Rotate CPI client certificate"
    run_id: str = "4242"

    @property
    def subject(self) -> str:
        """`sub` as GitHub builds it: the environment when the job names one, else the ref."""
        if self.environment:
            return f"repo:{self.repository}:environment:{self.environment}"
        return f"repo:{self.repository}:ref:{self.ref}"

    def claims(self) -> dict[str, Any]:
        owner = self.repository.split("/", 1)[0]
        claims: dict[str, Any] = {
            "sub": self.subject,
            "repository": self.repository,
            "repository_owner": owner,
            "ref": self.ref,
            "workflow": self.workflow,
            "job_workflow_ref": f"{self.repository}/.github/workflows/rotate.yml@{self.ref}",
            "run_id": self.run_id,
            "run_attempt": "1",
            "event_name": "schedule",
            "runner_environment": "github-hosted",
        }
        if self.environment:
            claims["environment"] = self.environment
        return claims


@dataclass
class OidcIssuer:
    """GitHub's token endpoint and OIDC discovery on one loopback server (see the module)."""

    url: str
    alg: str = "RS256"
    lifetime_s: int = _LIFETIME_S
    job: JobIdentity = field(default_factory=JobIdentity)
    bearer: str = field(default_factory=lambda: "runtime-" + secrets.token_urlsafe(24))
    issued: list[str] = field(default_factory=list)
    """Every token handed out, in order."""
    audiences: list[str | None] = field(default_factory=list)
    """The audience asked for with each token (None: the default)."""
    not_before_offset_s: int = 0
    """Added to `nbf` and `iat` (a positive value issues tokens not yet valid)."""

    def __post_init__(self) -> None:
        self.key = SigningKey(self.alg)
        self._lock = threading.Lock()

    @property
    def issuer(self) -> str:
        """The `iss` of every token: this server."""
        return self.url

    @property
    def token_url(self) -> str:
        """What the runner puts in `ACTIONS_ID_TOKEN_REQUEST_URL`."""
        return f"{self.url}/_apis/idtoken?api-version=2.0"

    def runner_env(self) -> dict[str, str]:
        """The two variables a job with `permissions: id-token: write` gets."""
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.token_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.bearer,
        }

    def jwks(self) -> list[dict[str, Any]]:
        """The `keys` of the JWKS a relying party fetches."""
        return [self.key.jwk()]

    def mint(self, audience: str | None = None, **extra: Any) -> str:
        """A token for this job; `extra` overrides claims (a test's bad `exp`, `iss`, ...)."""
        now = int(time.time()) + self.not_before_offset_s
        owner = self.job.repository.split("/", 1)[0]
        claims = {
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": audience or f"https://github.com/{owner}",
            "iat": now,
            "nbf": now - _NBF_SLACK_S,
            "exp": now + self.lifetime_s,
            **self.job.claims(),
            **extra,
        }
        token = self.key.sign(claims)
        with self._lock:
            self.issued.append(token)
            self.audiences.append(audience)
        return token

    def register(self, router: Router) -> None:
        """The token endpoint, the discovery document and the keys."""
        router.add("GET", "/_apis/idtoken", self._token, auth=False)
        router.add("GET", "/.well-known/openid-configuration", self._discovery, auth=False)
        router.add("GET", "/.well-known/jwks", self._keys, auth=False)

    def _token(self, req: Request) -> Response:
        scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(value.strip(), self.bearer):
            return Response(401, {"message": "Unauthorized"})
        audiences = req.query.get("audience")
        audience = audiences[0] if audiences else None
        return Response(200, {"count": 1, "value": self.mint(audience)})

    def _discovery(self, req: Request) -> Response:
        return Response(
            200,
            {
                "issuer": self.issuer,
                "jwks_uri": f"{self.url}/.well-known/jwks",
                "subject_types_supported": ["public", "pairwise"],
                "response_types_supported": ["id_token"],
                "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref"],
                "id_token_signing_alg_values_supported": [self.alg],
                "scopes_supported": ["openid"],
            },
        )

    def _keys(self, req: Request) -> Response:
        return Response(200, {"keys": self.jwks()})
