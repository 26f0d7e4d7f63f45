"""The `rotate` flags that take the new certificate from Vault or OpenBao PKI.

They give the Action's `vault-*` inputs (`cli.spelling.FLAGS`), checked by the same
`request.build`. As with the Vault CLI, the token comes from `VAULT_TOKEN` unless
another variable is named, and never from argv; a JWT login takes the JWT from a named
variable (a CI system's OIDC token) instead of GitHub's token endpoint.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from .. import material
from ..errors import InputError
from ..request.rules import CA_BUNDLE_MAX, compact_jwt
from .local_inputs import read_input, secret_from_env
from .spelling import Flag, add_flags

_LOGIN_FIX = (
    "Export the Vault token (or name its variable with --vault-token-env), or log in with "
    "a JWT (--vault-jwt-env and --vault-auth-role)."
)
_TEXT_FLAGS = (
    "vault-addr",
    "vault-pki-mount",
    "vault-role",
    "vault-auth-role",
    "vault-auth-mount",
    "vault-namespace",
    "vault-common-name",
    "vault-ttl",
    "key-type",
)


_VAULT_FLAGS: tuple[Flag, ...] = (
    ("--vault-addr", "URL", "e.g. https://vault.example.com:8200"),
    ("--vault-pki-mount", "PATH", "PKI secrets engine mount"),
    ("--vault-role", "ROLE", "PKI role that signs the certificate"),
    (
        "--vault-token-env",
        "NAME",
        "environment variable holding a Vault token (default: VAULT_TOKEN)",
    ),
    (
        "--vault-jwt-env",
        "NAME",
        "environment variable holding a JWT to log in with instead of a token",
    ),
    ("--vault-auth-role", "ROLE", "role of the JWT auth method"),
    ("--vault-auth-mount", "PATH", "JWT auth method mount"),
    ("--vault-namespace", "NS", "Vault Enterprise/HCP namespace (default: $VAULT_NAMESPACE)"),
    ("--vault-ca-cert", "PATH", "PEM of a private CA for Vault"),
    ("--vault-common-name", "CN", "CN (default: the live certificate's)"),
    ("--vault-ttl", "DURATION", "lifetime to ask for, e.g. 2160h (default: the role's)"),
    (
        "--key-type",
        "{" + ",".join(material.KEY_KINDS) + "}",
        "key to generate (default: the live certificate's kind, else rsa-2048)",
    ),
)


def add_issuer_arguments(parser: argparse.ArgumentParser) -> None:
    """The `Vault/OpenBao issuer` group of `rotate`."""
    group = parser.add_argument_group(
        "Vault/OpenBao issuer (instead of --chain/--key: a key made here, a CSR signed there)"
    )
    add_flags(group, _VAULT_FLAGS)


class ExportedJwt:
    """A JWT from the environment variable a flag names; `check` fails without one, or
    when the variable holds something else (`rules.compact_jwt`), before any call.

    The value is read once, when the command starts: a run that outlives the token cannot
    get a new one (the Action asks GitHub for a fresh token at each login instead).
    """

    def __init__(
        self, value: str | None, *, flag: str, needed_by: str, code: str, name: str = ""
    ) -> None:
        self._value = value
        self._flag = flag
        self._needed_by = needed_by
        self._code = code
        self._name = name

    def check(self) -> None:
        if self._value is None:
            raise InputError(
                f"{self._needed_by} logs in with a JWT, but `{self._flag}` is not given",
                code=self._code,
                fix=f"Name the variable that holds the JWT with {self._flag}.",
            )
        self()

    def __call__(self, audience: str | None = None) -> str:
        assert self._value is not None
        return compact_jwt(self._value, f"the environment variable named by `{self._flag}`")

    def describe(self, audience: str | None) -> str:
        return f"the JWT in ${self._name}" if self._name else f"the JWT of `{self._flag}`"


def issuer_values(
    args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[dict[str, str | bytes], ExportedJwt]:
    """The `vault-*` values the flags give, and the JWT source of a JWT login.

    Without `--vault-addr` only the flags are passed on (the builder refuses them alone).
    With it and no JWT login, the token comes from `--vault-token-env` or `VAULT_TOKEN`.
    """
    values: dict[str, str | bytes] = {
        name: getattr(args, name.replace("-", "_")) or "" for name in _TEXT_FLAGS
    }
    if args.vault_token_env:
        values["vault-token"] = secret_from_env(
            args.vault_token_env, flag="--vault-token-env", fix=_LOGIN_FIX
        )
    jwt = None
    if args.vault_jwt_env:
        jwt = secret_from_env(args.vault_jwt_env, flag="--vault-jwt-env", fix=_LOGIN_FIX)
    if args.vault_ca_cert:
        values["vault-ca-cert"] = read_input(
            args.vault_ca_cert, what="Vault CA", flag="--vault-ca-cert", limit=CA_BUNDLE_MAX
        )
    if args.vault_addr:
        values["vault-namespace"] = values["vault-namespace"] or env.get("VAULT_NAMESPACE", "")
        if args.vault_jwt_env and not args.vault_auth_role:
            raise InputError(
                "`--vault-jwt-env` needs `--vault-auth-role`, the JWT auth role to log in as",
                code="missing-vault-auth",
                fix="Add --vault-auth-role ROLE, or log in with a token instead.",
            )
        if not (args.vault_auth_role or args.vault_token_env):
            values["vault-token"] = secret_from_env(
                "VAULT_TOKEN", flag="--vault-token-env", fix=_LOGIN_FIX, show_name=True
            )
    exported = ExportedJwt(
        jwt,
        flag="--vault-jwt-env",
        needed_by="`--vault-auth-role`",
        code="missing-vault-auth",
        name=args.vault_jwt_env or "",
    )
    return values, exported
