"""The Cloud Foundry login flags, for commands that only read (`scan`).

Same names and rules as `rotate`'s: a user with a password, or a UAA client with a secret,
each secret read from a named env var; a private CA from a file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..models import CfAuth
from .local_inputs import read_input, secret_from_env


def add_cf_login_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """`--cf-api` and the login flags, in a group the caller may add to."""
    cf = parser.add_argument_group("Cloud Foundry")
    cf.add_argument(
        "--cf-api", required=True, help="CF API URL, e.g. https://api.cf.eu10.hana.ondemand.com"
    )
    cf.add_argument("--cf-username", default="", help="technical user")
    cf.add_argument(
        "--cf-password-env", default="", metavar="NAME", help="env var holding the password"
    )
    cf.add_argument("--cf-origin", default="", help="identity provider origin key, e.g. sap.ids")
    cf.add_argument("--cf-client-id", default="", help="UAA client (instead of a user)")
    cf.add_argument(
        "--cf-client-secret-env",
        default="",
        metavar="NAME",
        help="env var holding the client secret",
    )
    cf.add_argument(
        "--cf-ca-cert", type=Path, help="PEM of a private CA for the CF API (never skipped)"
    )
    return cf


def cf_auth_from_args(args: argparse.Namespace) -> CfAuth:
    """The login the flags describe; `InputError` (exit 2) when it is incomplete."""
    if bool(args.cf_username) == bool(args.cf_client_id):
        raise InputError(
            "give exactly one of --cf-username (with --cf-password-env) or --cf-client-id "
            "(with --cf-client-secret-env)",
            code="auth-missing",
        )
    if args.cf_username and not args.cf_password_env:
        raise InputError("--cf-username needs --cf-password-env", code="auth-missing")
    if args.cf_client_id and not args.cf_client_secret_env:
        raise InputError("--cf-client-id needs --cf-client-secret-env", code="auth-missing")
    password = (
        secret_from_env(args.cf_password_env, flag="--cf-password-env") if args.cf_username else ""
    )
    secret = (
        secret_from_env(args.cf_client_secret_env, flag="--cf-client-secret-env")
        if args.cf_client_id
        else ""
    )
    ca_pem = read_input(str(args.cf_ca_cert), what="CF CA").decode() if args.cf_ca_cert else None
    return CfAuth(
        username=args.cf_username,
        password=password,
        origin=args.cf_origin,
        client_id=args.cf_client_id,
        client_secret=secret,
        ca_pem=ca_pem,
    )
