"""The Cloud Foundry login flags, for commands that only read (`scan`).

Same names and rules as `rotate`'s: a user with a password, or a UAA client with a secret,
each secret read from a named env var; a private CA from a file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..models import CfAuth
from ..request.build import cf_login
from ..request.problems import Problems
from ..request.rules import CA_BUNDLE_MAX
from .local_inputs import read_input, secret_from_env
from .spelling import dialect


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
    """The login the flags describe, checked by the same rules as `rotate`'s
    (`request.build.cf_login`); `InputError` (exit 2) lists every problem."""
    values: dict[str, str | bytes] = {
        "cf-api": args.cf_api or "",
        "cf-username": args.cf_username or "",
        "cf-origin": args.cf_origin or "",
        "cf-client-id": args.cf_client_id or "",
    }
    for name, flag in (
        ("cf-password", "cf_password_env"),
        ("cf-client-secret", "cf_client_secret_env"),
    ):
        variable = getattr(args, flag)
        if variable:
            values[name] = secret_from_env(variable, flag="--" + flag.replace("_", "-"))
    if args.cf_ca_cert:
        values["cf-ca-cert"] = read_input(
            str(args.cf_ca_cert), what="CF CA", flag="--cf-ca-cert", limit=CA_BUNDLE_MAX
        )
    problems = Problems(dialect())
    auth = cf_login(values, problems)
    problems.raise_if_any()
    assert auth is not None
    return auth
