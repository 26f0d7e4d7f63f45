"""The values `rotate`'s flags give, keyed by the Action's input names.

Files and `--...-env` variables are read here, so that `request.build` sees what the
Action would: one place for `rotate` and `rotate --targets` alike.
"""

from __future__ import annotations

import argparse
import os

from ..request.certificate import JwtSource
from ..request.rules import CA_BUNDLE_MAX
from .cf_args import cf_login_values, flag_values
from .issuer_args import issuer_values
from .local_inputs import read_input, secret_from_env, stdin_once


def values_from_args(
    args: argparse.Namespace,
) -> tuple[dict[str, str | bytes], dict[str, str], JwtSource]:
    """The values the flags give, keyed by input name (files and secret variables read),
    the flags chosen where two give one input, and the JWT source of a Vault JWT login."""
    stdin_once(args.chain, args.key, args.targets)
    used: dict[str, str] = {}
    values: dict[str, str | bytes] = cf_login_values(args)
    values |= flag_values(
        args,
        (
            "cf-org",
            "cf-space",
            "app",
            "service-instance",
            "chain-env-var",
            "key-env-var",
            "strategy",
            "renew-before",
            "verify-path",
            "verify-url",
            "timeout",
            "max-in-flight",
            "annotation-prefix",
            "fail-if-expires-within",
            "targets",
            "parallel",
        ),
    )
    for name in ("force", "dry-run", "keep-root"):
        values[name] = "true" if getattr(args, name.replace("-", "_")) else ""
    if args.trusted_roots:
        values["trusted-roots"] = read_input(
            args.trusted_roots, what="trusted roots", flag="--trusted-roots", limit=CA_BUNDLE_MAX
        )
    if args.passphrase_env:
        values["private-key-passphrase"] = secret_from_env(
            args.passphrase_env, flag="--passphrase-env"
        )
    for name, path_flag, env_flag in (
        ("cert-chain", "chain", "chain_env"),
        ("private-key", "key", "key_env"),
    ):
        path, variable = getattr(args, path_flag), getattr(args, env_flag)
        if variable:
            used[name] = "--" + env_flag.replace("_", "-")
            values[name] = secret_from_env(variable, flag=used[name])
        elif path:
            values[name] = read_input(path, what=path_flag, flag="--" + path_flag)
    issuer_values_, jwt = issuer_values(args, os.environ)
    values.update(issuer_values_)
    return values, used, jwt
