"""Every input, once: its name, default, whether it is secret, its size limit.

Two sections: `ROTATE`, the inputs of a rotation (action.yml, in its order) and `SCAN`,
those of the fleet scan (scan/action.yml, in its order); the login rows are the same
objects in both. A test keeps each section and its action.yml in step; the command line
spells each input as a flag (`cli.spelling`). The defaults here are the only ones:
action.yml states the same values (a test compares them) and the command line's help
shows these.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rules import (
    CA_BUNDLE_MAX,
    MATERIAL_MAX,
    NAME_MAX,
    SECRET_MAX,
    TARGETS_FILE_MAX,
    TEXT_MAX,
    URL_MAX,
)

DEFAULT_WARN_DAYS = 30
"""Warn when the new certificate expires within this many days (unless
`fail-if-expires-within` gives another threshold)."""


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


class Section:
    """The inputs of one command: its rows in order, and what adapters derive from them."""

    def __init__(self, *fields: Field) -> None:
        self.fields = fields
        self.by_name: dict[str, Field] = {f.name: f for f in fields}
        self.inputs: tuple[str, ...] = tuple(f.name for f in fields if f.action)
        """Every input of the command's action.yml, in its order."""
        self.secret_inputs: tuple[str, ...] = tuple(f.name for f in fields if f.secret)
        """Inputs masked line by line before anything else is printed."""
        self.defaults: dict[str, str] = {f.name: f.default for f in fields if f.default}
        """The default of every field that has one (also of command-line-only fields)."""
        self.action_defaults: dict[str, str] = {
            name: value for name, value in self.defaults.items() if name in self.inputs
        }
        """The defaults action.yml states."""


LOGIN: tuple[Field, ...] = (
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
)
"""How to reach and log in to Cloud Foundry: every command that calls it takes these."""

ROTATE = Section(
    *LOGIN,
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
    Field("trusted-roots", limit=CA_BUNDLE_MAX, multiline=True),
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
    # many apps in one run: a targets file's path, or its YAML inline (`request.targets`)
    Field("targets", limit=TARGETS_FILE_MAX, multiline=True),
    Field("parallel", default="4"),  # targets rotated at once (with `targets` only)
    Field("max-in-flight", default="1", action=False),
)

SCAN = Section(
    *LOGIN,
    Field("scope", limit=64 * 1024, multiline=True),  # items on lines or between blanks
    Field("offering", default="it-rt"),  # the Process Integration Runtime's name in CF
    Field("plan", default="integration-flow"),  # iFlow senders; `api` is for OData
    Field("chain-env-var", default="CLI_CHAIN", limit=NAME_MAX),
    Field("renew-before", default="30d"),
    Field("annotation-prefix"),
    Field("environment", default="cpi-{app}"),  # one GitHub environment per app
    Field("matrix-limit", default="256"),
    Field("fail-if-expires-within"),
    Field("parallel", default="4"),
    Field("timeout", default="300"),
    Field("warn-days", default=str(DEFAULT_WARN_DAYS), action=False),
)

FIELDS: tuple[Field, ...] = ROTATE.fields
BY_NAME: dict[str, Field] = ROTATE.by_name


VERIFY_TIMEOUT_S = 60.0
"""Test before promote retries while CPI picks up the new binding: up to a tenth of
`timeout`, at most this long."""

INPUTS: tuple[str, ...] = ROTATE.inputs
"""Every input of action.yml, in its order."""

SECRET_INPUTS: tuple[str, ...] = ROTATE.secret_inputs
"""Inputs masked line by line before anything else is printed."""

DEFAULTS: dict[str, str] = ROTATE.defaults

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
