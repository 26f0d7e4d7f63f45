"""The Cloud Foundry login flags, once, for every command that calls Cloud Foundry.

`rotate` and `scan` both add them (`add_cf_login_arguments`) and both read them here
(`cf_login_values`, `cf_assertion`): a user with a password, a UAA client with a secret,
or an OIDC token (`--cf-oidc`), each secret read from a named environment variable, never
from argv; a private CA from a file. The
values go to the request builder under the Action's input names (`request.fields.LOGIN`),
which checks them by the same rules for both commands.
"""

from __future__ import annotations

import argparse

from ..errors import InputError
from ..request.rules import CA_BUNDLE_MAX
from .issuer_args import ExportedJwt
from .local_inputs import read_input, secret_from_env
from .spelling import Flag, add_flags

CF_LOGIN_FLAGS: tuple[Flag, ...] = (
    (
        "--cf-api",
        "URL",
        "required: the CF API endpoint, e.g. https://api.cf.eu10.hana.ondemand.com",
    ),
    ("--cf-username", "USER", "technical user (Space Developer in the app's space)"),
    ("--cf-password-env", "NAME", "environment variable holding its password"),
    ("--cf-origin", "KEY", "identity provider origin of the user, e.g. sap.ids"),
    ("--cf-client-id", "ID", "UAA client, instead of a user"),
    ("--cf-client-secret-env", "NAME", "environment variable holding its secret"),
    (
        "--cf-oidc",
        "{user,client}",
        "log in with an OIDC token instead: as a user of --cf-origin (UAA's JWT bearer grant) "
        "or as the UAA client --cf-client-id (the token instead of its secret)",
    ),
    (
        "--cf-assertion-env",
        "NAME",
        "environment variable holding that OIDC token (a JWT, e.g. a CI system's)",
    ),
    (
        "--cf-oidc-exchange-url",
        "URL",
        "exchange the token there first (SAP Cloud Identity Services' /oauth2/token)",
    ),
    ("--cf-oidc-exchange-client-id", "ID", "the client ID of that exchange"),
    ("--cf-ca-cert", "PATH", "PEM of a private CA for the CF API and the iFlow (never unverified)"),
)

_SECRETS = (("cf-password", "cf_password_env"), ("cf-client-secret", "cf_client_secret_env"))


def add_cf_login_arguments(group: argparse._ArgumentGroup) -> None:
    """`--cf-api` and the login flags, added to `group`."""
    add_flags(group, CF_LOGIN_FLAGS)


def cf_login_values(args: argparse.Namespace) -> dict[str, str | bytes]:
    """The login the flags give, keyed by input name: secrets read from their variables
    (`InputError` when one is empty), the CA file read (bounded); nothing checked yet."""
    values: dict[str, str | bytes] = flag_values(
        args,
        (
            "cf-api",
            "cf-username",
            "cf-origin",
            "cf-client-id",
            "cf-oidc",
            "cf-oidc-exchange-url",
            "cf-oidc-exchange-client-id",
        ),
    )
    for name, dest in _SECRETS:
        variable = getattr(args, dest)
        if variable:
            values[name] = secret_from_env(variable, flag="--" + dest.replace("_", "-"))
    if args.cf_ca_cert:
        values["cf-ca-cert"] = read_input(
            args.cf_ca_cert, what="CF CA", flag="--cf-ca-cert", limit=CA_BUNDLE_MAX
        )
    return values


def cf_assertion(args: argparse.Namespace) -> ExportedJwt:
    """The OIDC token of `--cf-oidc`, from the variable `--cf-assertion-env` names."""
    value = None
    if args.cf_assertion_env:
        if not args.cf_oidc:
            raise InputError(
                "`--cf-assertion-env` needs `--cf-oidc`: whether the token logs in a user or "
                "a UAA client",
                code="missing-input",
                fix="Add --cf-oidc user (a user of --cf-origin, UAA's JWT bearer grant) or "
                "--cf-oidc client (with --cf-client-id).",
            )
        value = secret_from_env(args.cf_assertion_env, flag="--cf-assertion-env")
    return ExportedJwt(
        value,
        flag="--cf-assertion-env",
        needed_by="`--cf-oidc`",
        code="missing-input",
        name=args.cf_assertion_env or "",
    )


def flag_values(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, str | bytes]:
    """The values of the flags named like the inputs `names` (`--cf-api` -> `cf-api`),
    as given: an absent flag is the empty text, as an absent Action input."""
    return {name: getattr(args, name.replace("-", "_")) or "" for name in names}
