"""Vault / OpenBao PKI: a certificate signed for a CSR whose key never leaves this process.

The API is the same in HashiCorp Vault and OpenBao:
- optional login with a JWT (GitHub's OIDC token in a workflow):
  `POST /v1/auth/<mount>/login {"role", "jwt"}` -> `auth.client_token`;
- `POST /v1/<pki mount>/sign/<role> {"csr", "common_name", ...}` ->
  `data.certificate`, `data.ca_chain[]` (older servers: `data.issuing_ca`).
Errors come as `{"errors": ["..."]}`. `sign` rather than `issue`, because `issue` makes
the server generate the key and send it back over the wire.

The role decides what the certificate looks like: `client_flag=true`, `server_flag=false`,
the subject's O/OU/C (`sign` takes only the common name from the CSR), TTL and key type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from .. import material
from ..errors import InputError
from ..mtls import EnvProxySession, SSLContextAdapter, trust_context
from ..request.rules import https_url, key_kind
from ..retries import retry_policy
from .base import IssuedMaterial, IssuerError

__all__ = ["VaultPkiIssuer", "VaultSettings"]

DEFAULT_KEY_KIND = "rsa-2048"
_ERROR_TEXT_MAX = 300
# A connection that could not be opened, and 429 (answered before any handler ran):
# a signing POST that may have reached Vault (a proxy's 502/504) is not replayed, it
# would issue a second certificate.
_RETRY = retry_policy(methods=None, statuses=(429,), total=3, connect=2, read=0, status=2, other=0)


@dataclass(frozen=True)
class VaultSettings:
    """Where to sign and how to log in (a token, or a JWT exchanged for one)."""

    address: str
    """`https://vault.example.com:8200`: TLS is always verified (`ca_pem` for a private CA)."""
    role: str
    pki_mount: str = "pki"
    token: str | None = field(default=None, repr=False)
    jwt: Callable[[], str] | None = field(default=None, repr=False)
    """Fetches a JWT when (and only when) a certificate is needed, e.g. GitHub's OIDC token."""
    jwt_role: str | None = None
    jwt_mount: str = "jwt"
    namespace: str | None = None
    ca_pem: str | None = None
    common_name: str | None = None
    """CN for the CSR; by default the live leaf's subject is copied."""
    ttl: str | None = None
    key_kind: str | None = None
    """One of `material.KEY_KINDS`; by default the live leaf's kind, else rsa-2048."""
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        https_url(self.address, "the Vault address", ca_label="its CA certificate")
        if (self.token is None) == (self.jwt is None):
            raise InputError(
                "Vault needs exactly one way to log in: a token, or a JWT and its role",
                code="ambiguous-vault-auth" if self.token is not None else "missing-vault-auth",
                fix="Give a Vault token, or the JWT auth role (in a workflow with "
                "`permissions: id-token: write` the GitHub OIDC token is used).",
            )
        if self.jwt is not None and not self.jwt_role:
            raise InputError(
                "Vault JWT login needs the role to log in as",
                code="missing-vault-auth",
                fix="Name the role of the JWT auth method (`bao write auth/jwt/role/<name>`).",
            )
        if self.key_kind is not None:
            key_kind(self.key_kind, "the key type", material.KEY_KINDS)


class VaultPkiIssuer:
    """Signs a CSR with a Vault or OpenBao PKI role; see the module docstring."""

    def __init__(self, settings: VaultSettings) -> None:
        self.settings = settings
        self._base = settings.address.rstrip("/") + "/v1/"

    def describe(self) -> str:
        s = self.settings
        return f"Vault PKI {s.address.rstrip('/')} ({s.pki_mount}/sign/{s.role})"

    def issue(
        self,
        *,
        copy_subject_from: x509.Certificate | None,
        on_secret: Callable[[str], None],
    ) -> IssuedMaterial:
        subject = self._subject(copy_subject_from)
        kind = self.settings.key_kind or _kind_of(copy_subject_from) or DEFAULT_KEY_KIND
        key = material.generate_key(kind)
        csr = material.build_csr(key, subject=subject, copy_from=copy_subject_from)
        session = EnvProxySession(
            SSLContextAdapter(trust_context(self.settings.ca_pem), max_retries=_RETRY)
        )
        with session:
            token = self._token(session, on_secret)
            data = self._sign(session, token, csr, subject)
        return IssuedMaterial(chain=_chain_of(data), key=key)

    def _subject(self, live: x509.Certificate | None) -> x509.Name:
        common_name = self.settings.common_name
        if live is None and not common_name:
            raise InputError(
                "the app has no live certificate to copy the subject from, so the common "
                "name for the new certificate is unknown",
                code="vault-common-name",
                fix="Give the common name (`vault-common-name`) for the first rotation.",
            )
        if live is None:
            assert common_name is not None
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        if not common_name:
            return live.subject
        kept = [a for a in live.subject if a.oid != NameOID.COMMON_NAME]
        return x509.Name([*kept, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def _token(self, session: requests.Session, on_secret: Callable[[str], None]) -> str:
        s = self.settings
        if s.token is not None:
            return s.token
        assert s.jwt is not None
        jwt = s.jwt()
        on_secret(jwt)
        body = self._post(
            session, f"auth/{_path(s.jwt_mount)}/login", {"role": s.jwt_role, "jwt": jwt}, None
        )
        auth = body.get("auth")
        token = auth.get("client_token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise IssuerError(f"Vault's JWT login ({s.jwt_mount}) answered without a token")
        on_secret(token)
        return token

    def _sign(
        self,
        session: requests.Session,
        token: str,
        csr: x509.CertificateSigningRequest,
        subject: x509.Name,
    ) -> dict[str, Any]:
        s = self.settings
        common_names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        payload: dict[str, Any] = {
            "csr": csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            "format": "pem",
            "exclude_cn_from_sans": True,
        }
        if common_names:
            payload["common_name"] = str(common_names[0].value)
        if s.ttl:
            payload["ttl"] = s.ttl
        body = self._post(session, f"{_path(s.pki_mount)}/sign/{_path(s.role)}", payload, token)
        data = body.get("data")
        if not isinstance(data, dict):
            raise IssuerError("Vault's sign answer has no `data`")
        return data

    def _post(
        self, session: requests.Session, path: str, payload: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["X-Vault-Token"] = token
        if self.settings.namespace:
            headers["X-Vault-Namespace"] = self.settings.namespace
        url = self._base + path
        try:
            response = session.post(
                url,
                json=payload,
                headers=headers,
                timeout=(min(10.0, self.settings.timeout_s), self.settings.timeout_s),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            why = (
                "TLS handshake failed (is the server's CA trusted? a private CA: `vault-ca-cert`)"
                if isinstance(error, requests.exceptions.SSLError)
                else f"{type(error).__name__}"
            )
            raise IssuerError(
                f"cannot reach Vault at {self.settings.address} (POST /v1/{path}): {why}",
                fix="Check the address, the proxy settings and the CA certificate.",
            ) from error
        if response.status_code >= 300:
            raise _refusal(response, path)
        try:
            body = response.json()
        except ValueError as error:
            raise IssuerError(f"Vault answered POST /v1/{path} with no JSON") from error
        if not isinstance(body, dict):
            raise IssuerError(f"Vault answered POST /v1/{path} with no JSON object")
        return body


def _refusal(response: requests.Response, path: str) -> IssuerError:
    """An `IssuerError` with Vault's own messages and what usually fixes that status."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        errors = None
    if isinstance(errors, list) and errors:
        detail = "; ".join(str(e) for e in errors)
    else:
        detail = " ".join(response.text.split())
    detail = detail[:_ERROR_TEXT_MAX]
    refused = (
        "Vault refused the JWT login: the JWT auth role's `bound_audiences`, "
        "`bound_subject`/`bound_claims` and `user_claim` must match the token's claims."
        if path.startswith("auth/")
        else "Vault refused the request: the role (does it exist?), its "
        "`allowed_domains`/`allow_any_name`, `enforce_hostnames`/`cn_validations`, "
        "`key_type`/`key_bits` and `max_ttl` decide what it signs."
    )
    fixes = {
        400: refused,
        403: "The token may not do this: its policy needs `update` on "
        "`<pki mount>/sign/<role>` (and a JWT login needs a role bound to this workflow).",
        404: "No such path: check the PKI mount, the role and the namespace.",
        503: "Vault is sealed or in standby.",
    }
    return IssuerError(
        f"Vault answered {response.status_code} to POST /v1/{path}"
        + (f": {detail}" if detail else ""),
        fix=fixes.get(response.status_code, ""),
    )


def _chain_of(data: dict[str, Any]) -> tuple[x509.Certificate, ...]:
    """Leaf, then `ca_chain` (or `issuing_ca`): the certificates the app must send."""
    leaf = data.get("certificate")
    if not isinstance(leaf, str) or not leaf.strip():
        raise IssuerError("Vault's sign answer has no certificate")
    chain = data.get("ca_chain")
    issuers = [c for c in chain if isinstance(c, str)] if isinstance(chain, list) else []
    if not issuers and isinstance(data.get("issuing_ca"), str):
        issuers = [data["issuing_ca"]]
    try:
        return material.load_chain("\n".join([leaf, *issuers]))
    except InputError as error:
        raise IssuerError(f"Vault's sign answer holds no readable chain: {error}") from error


def _kind_of(cert: x509.Certificate | None) -> str | None:
    return material.key_kind_of(cert.public_key()) if cert is not None else None


def _path(segment: str) -> str:
    """One or more path segments as given (`pki/int`), each percent-encoded."""
    return "/".join(quote(part, safe="") for part in segment.strip("/").split("/"))
