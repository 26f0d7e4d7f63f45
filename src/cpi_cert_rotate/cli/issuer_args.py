"""The `rotate` flags that take the new certificate from Vault or OpenBao PKI.

They mirror the Action's `vault-*` inputs. As with the Vault CLI, the token comes from
`VAULT_TOKEN` unless another variable is named, and never from argv.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .. import material
from ..errors import InputError
from ..issuers import VaultPkiIssuer, VaultSettings
from .local_inputs import read_input, secret_from_env


def add_issuer_arguments(parser: argparse.ArgumentParser) -> None:
    """The `Vault/OpenBao issuer` group of `rotate`."""
    vault = parser.add_argument_group(
        "Vault/OpenBao issuer (instead of --chain/--key: a key made here, a CSR signed there)"
    )
    vault.add_argument("--vault-addr", metavar="URL", help="e.g. https://vault.example.com:8200")
    vault.add_argument("--vault-pki-mount", default="pki", help="PKI secrets engine mount")
    vault.add_argument("--vault-role", help="PKI role that signs client certificates")
    vault.add_argument(
        "--vault-token-env",
        metavar="NAME",
        help="env var holding a Vault token (default VAULT_TOKEN)",
    )
    vault.add_argument(
        "--vault-jwt-env", metavar="NAME", help="env var holding a JWT to log in with instead"
    )
    vault.add_argument("--vault-auth-role", help="role of the JWT auth method")
    vault.add_argument("--vault-auth-mount", default="jwt", help="JWT auth method mount")
    vault.add_argument("--vault-namespace", help="Vault Enterprise/HCP namespace")
    vault.add_argument("--vault-ca-cert", type=Path, help="PEM of a private CA for Vault")
    vault.add_argument("--vault-common-name", help="CN (default: the live certificate's subject)")
    vault.add_argument("--vault-ttl", help="requested lifetime, e.g. 2160h")
    vault.add_argument(
        "--key-type",
        choices=material.KEY_KINDS,
        help="key to generate (default: the live certificate's kind, else rsa-2048)",
    )


def issuer_from_args(args: argparse.Namespace) -> VaultPkiIssuer | None:
    """The issuer the flags describe, or None when no `--vault-addr` is given."""
    if not args.vault_addr:
        stray = [flag for flag in _VAULT_ONLY if getattr(args, flag.strip("-").replace("-", "_"))]
        if stray:
            raise InputError(
                f"{', '.join(stray)} given without --vault-addr",
                code="missing-input",
                fix="Add --vault-addr, or drop the Vault flags.",
            )
        return None
    if not args.vault_role:
        raise InputError("--vault-addr needs --vault-role", code="missing-input")
    jwt_name = args.vault_jwt_env
    token = None
    if not jwt_name:
        token = secret_from_env(
            args.vault_token_env or "VAULT_TOKEN",
            flag="--vault-token-env",
            fix=_LOGIN_FIX,
            show_name=not args.vault_token_env,
        )
    jwt = None
    if jwt_name:
        value = secret_from_env(jwt_name, flag="--vault-jwt-env", fix=_LOGIN_FIX)

        def jwt() -> str:
            return value

    return VaultPkiIssuer(
        VaultSettings(
            address=args.vault_addr,
            role=args.vault_role,
            pki_mount=args.vault_pki_mount,
            token=token,
            jwt=jwt,
            jwt_role=args.vault_auth_role,
            jwt_mount=args.vault_auth_mount,
            namespace=args.vault_namespace or os.environ.get("VAULT_NAMESPACE") or None,
            ca_pem=(
                read_input(str(args.vault_ca_cert), what="Vault CA").decode()
                if args.vault_ca_cert
                else None
            ),
            common_name=args.vault_common_name,
            ttl=args.vault_ttl,
            key_kind=args.key_type,
        )
    )


_VAULT_ONLY = (
    "--vault-role",
    "--vault-token-env",
    "--vault-jwt-env",
    "--vault-auth-role",
    "--vault-namespace",
    "--vault-ca-cert",
    "--vault-common-name",
    "--vault-ttl",
    "--key-type",
)


_LOGIN_FIX = (
    "Export the Vault token (or name its variable with --vault-token-env), or log in with "
    "a JWT (--vault-jwt-env and --vault-auth-role)."
)
