"""Every input of a rotation, once: its name, default, whether it is secret, its size limit.

The names are the Action's inputs (action.yml, in its order; a test keeps the two in
step); the command line spells each as a flag (`cli.flags`). The defaults here are the
only ones: action.yml states the same values (a test compares them) and the command
line's help shows these.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rules import CA_BUNDLE_MAX, MATERIAL_MAX, NAME_MAX, SECRET_MAX, TEXT_MAX, URL_MAX


@dataclass(frozen=True)
class Field:
    """One input: `limit` is its longest accepted value (characters, bytes for a file)."""

    name: str
    default: str = ""
    secret: bool = False
    limit: int = TEXT_MAX
    multiline: bool = False
    """Certificates and keys span lines; every other value is one line (secrets are not
    checked for control characters: they may hold anything)."""
    action: bool = True
    """An input of the Action; False for a command-line flag only."""


FIELDS: tuple[Field, ...] = (
    Field("cf-api", limit=URL_MAX),
    Field("cf-username"),
    Field("cf-password", secret=True, limit=SECRET_MAX),
    Field("cf-origin"),
    Field("cf-client-id"),
    Field("cf-client-secret", secret=True, limit=SECRET_MAX),
    Field("cf-oidc"),
    Field("cf-oidc-audience"),
    Field("cf-oidc-exchange-url", limit=URL_MAX),
    Field("cf-oidc-exchange-client-id"),
    Field("cf-ca-cert", limit=CA_BUNDLE_MAX, multiline=True),
    Field("cf-org", limit=NAME_MAX),
    Field("cf-space", limit=NAME_MAX),
    Field("app", limit=NAME_MAX),
    Field("service-instance", limit=NAME_MAX),
    Field("cert-chain", limit=MATERIAL_MAX, multiline=True),
    Field("private-key", secret=True, limit=MATERIAL_MAX, multiline=True),
    Field("private-key-passphrase", secret=True, limit=SECRET_MAX),
    Field("pkcs12", secret=True, limit=MATERIAL_MAX, multiline=True),
    Field("pkcs12-password", secret=True, limit=SECRET_MAX),
    Field("vault-addr", limit=URL_MAX),
    Field("vault-pki-mount", default="pki"),
    Field("vault-role"),
    Field("vault-token", secret=True, limit=SECRET_MAX),
    Field("vault-auth-role"),
    Field("vault-auth-mount", default="jwt"),
    Field("vault-audience"),
    Field("vault-namespace"),
    Field("vault-ca-cert", limit=CA_BUNDLE_MAX, multiline=True),
    Field("vault-common-name", limit=64),  # RFC 5280 ub-common-name; longer fails the CSR
    Field("vault-ttl"),
    Field("key-type"),
    Field("chain-env-var", default="CLI_CHAIN", limit=NAME_MAX),
    Field("key-env-var", default="CLI_KEY", limit=NAME_MAX),
    Field("strategy", default="auto"),
    Field("renew-before"),
    Field("force", default="false"),
    Field("dry-run", default="false"),
    Field("verify-path", limit=URL_MAX),
    Field("verify-url", limit=URL_MAX),
    Field("keep-root", default="false"),
    Field("fail-if-expires-within"),
    Field("timeout", default="900"),
    Field("annotation-prefix"),
    Field("max-in-flight", default="1", action=False),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}

DEFAULT_WARN_DAYS = 30
"""Warn when the new certificate expires within this many days (unless
`fail-if-expires-within` gives another threshold)."""

VERIFY_TIMEOUT_S = 60.0
"""Test before promote retries while CPI picks up the new binding: up to a tenth of
`timeout`, at most this long."""

INPUTS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.action)
"""Every input of action.yml, in its order."""

SECRET_INPUTS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.secret)
"""Inputs masked line by line before anything else is printed."""

DEFAULTS: dict[str, str] = {f.name: f.default for f in FIELDS if f.default}

GIVEN_INPUTS: tuple[str, ...] = (
    "cert-chain",
    "private-key",
    "private-key-passphrase",
    "pkcs12",
    "pkcs12-password",
)
"""The inputs of a certificate given by the user."""

OIDC_INPUTS: tuple[str, ...] = (
    "cf-oidc-audience",
    "cf-oidc-exchange-url",
    "cf-oidc-exchange-client-id",
)
"""The inputs of a Cloud Foundry login with an OIDC token (`cf-oidc`)."""

VAULT_INPUTS: tuple[str, ...] = tuple(
    f.name for f in FIELDS if f.name.startswith("vault-") or f.name == "key-type"
)
"""The inputs of a certificate issued by Vault or OpenBao."""
