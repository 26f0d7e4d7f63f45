"""`cpi-cert-rotate rotate`: the engine from a shell, one flag for each Action input.

`cli.spelling.FLAGS` says which flag gives which input; the values go to the same
`request.build` the Action uses, so every rule and default is the Action's. Secrets
never come from argv: passwords, client secrets, tokens and passphrases are read from
environment variables whose names are given (`--cf-password-env NAME`), the chain and
key from files, standard input (`-`) or environment variables. The chain is read as
`inspect` reads it: a PKCS#12 file with its own key needs no `--key`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime

from ..errors import ExitCode
from ..models import Report, Strategy
from ..request.build import DEFAULT_WARN_DAYS, Settings, build
from ..request.fields import DEFAULTS
from ..request.rules import CA_BUNDLE_MAX
from ..rotation.annotations import DEFAULT_PREFIX
from ..signals import stop_requested_on_signals
from .issuer_args import add_issuer_arguments, issuer_values
from .local_inputs import read_input, secret_from_env, stdin_once
from .render import expiry_failure, render_report
from .spelling import dialect, for_cli


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `rotate`, grouped; each gives the Action input `cli.spelling.FLAGS` names."""
    cf = parser.add_argument_group("Cloud Foundry (where the app is, and how to log in)")
    cf.add_argument(
        "--cf-api",
        metavar="URL",
        help="required: the CF API endpoint, e.g. https://api.cf.eu10.hana.ondemand.com",
    )
    cf.add_argument("--cf-org", metavar="NAME", help="required: org of the app")
    cf.add_argument("--cf-space", metavar="NAME", help="required: space of the app")
    cf.add_argument("--app", metavar="NAME", help="required: the app that calls the iFlow")
    cf.add_argument(
        "--service-instance",
        metavar="NAME",
        help="required: its it-rt service instance (case-sensitive)",
    )
    cf.add_argument(
        "--cf-username", metavar="USER", help="technical user (Space Developer in the space)"
    )
    cf.add_argument(
        "--cf-password-env", metavar="NAME", help="environment variable holding its password"
    )
    cf.add_argument(
        "--cf-origin", metavar="KEY", help="identity provider origin of the user, e.g. sap.ids"
    )
    cf.add_argument("--cf-client-id", metavar="ID", help="UAA client, instead of a user")
    cf.add_argument(
        "--cf-client-secret-env", metavar="NAME", help="environment variable holding its secret"
    )
    cf.add_argument(
        "--cf-ca-cert",
        metavar="PATH",
        help="PEM of a private CA for the CF API and the iFlow (verification is never off)",
    )
    cert = parser.add_argument_group(
        "new certificate (or let Vault/OpenBao issue it, below; with --dry-run and neither, "
        "the live certificate is only checked)"
    )
    chain = cert.add_mutually_exclusive_group()
    chain.add_argument(
        "--chain",
        metavar="PATH",
        help="new chain in any form `inspect` reads (PEM, PKCS#7, DER, base64, or a PKCS#12 "
        "that holds its key too); - is standard input",
    )
    chain.add_argument("--chain-env", metavar="NAME", help="environment variable holding it")
    key = cert.add_mutually_exclusive_group()
    key.add_argument(
        "--key",
        metavar="PATH",
        help="its private key (PKCS#8, PKCS#1, SEC1; PEM, DER or base64); not needed with a "
        "PKCS#12 --chain; - is standard input",
    )
    key.add_argument("--key-env", metavar="NAME", help="environment variable holding it")
    cert.add_argument(
        "--passphrase-env",
        metavar="NAME",
        help="environment variable holding the passphrase of the key or the PKCS#12",
    )
    cert.add_argument(
        "--keep-root", action="store_true", help="keep the root CA in the chain the app gets"
    )
    add_issuer_arguments(parser)
    how = parser.add_argument_group("rotation")
    how.add_argument(
        "--chain-env-var", metavar="NAME", help="app environment variable for the chain"
    )
    how.add_argument("--key-env-var", metavar="NAME", help="app environment variable for the key")
    how.add_argument(
        "--strategy",
        metavar="{" + ",".join(s.value for s in Strategy) + "}",
        help="how the new leaf is registered; auto picks overlap where the landscape allows "
        "it, else swap",
    )
    how.add_argument(
        "--renew-before",
        metavar="WHEN",
        help="rotate only when due: days before expiry (30d) or share of lifetime left (33%%); "
        "unset: whenever the certificate differs (33%% with --vault-addr)",
    )
    how.add_argument("--force", action="store_true", help="rotate even when not due")
    how.add_argument("--dry-run", action="store_true", help="read and plan; change nothing")
    how.add_argument(
        "--verify-path",
        metavar="PATH",
        help="iFlow path called with the new certificate before promotion, e.g. /http/ping",
    )
    how.add_argument(
        "--verify-url", metavar="URL", help="full https URL to call instead of --verify-path"
    )
    how.add_argument(
        "--timeout", metavar="SECONDS", help="the whole run's limit, then it rolls back (60-21600)"
    )
    how.add_argument(
        "--max-in-flight", metavar="N", help="instances the rolling deployment replaces at a time"
    )
    how.add_argument(
        "--annotation-prefix",
        metavar="DNS-NAME",
        help=f"prefix of the app annotations that record a rotation (default: {DEFAULT_PREFIX})",
    )
    how.add_argument(
        "--fail-if-expires-within",
        metavar="DAYS",
        help="exit 1 when the certificate in force afterwards expires within DAYS; also the "
        f"threshold of the expiry warning (default: none; the warning at {DEFAULT_WARN_DAYS})",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the report as one JSON document")
    for group in (cf, cert, how):
        for action in group._group_actions:
            name = action.dest.replace("_", "-")
            if name in DEFAULTS and action.nargs != 0:
                action.help = f"{action.help} (default: {DEFAULTS[name]})"


def run(args: argparse.Namespace) -> int:
    """Build the request, rotate (SIGINT/SIGTERM undo and stop), print the report."""
    settings = settings_from_args(args)
    from ..rotation import rotate

    cancel = threading.Event()
    with stop_requested_on_signals(cancel) as received:
        report = rotate(settings.request, cancel=cancel)
    if received:
        print(f"received {', '.join(received)}: stopped at a safe point", file=sys.stderr)
    report = replace(report, warnings=settings.warnings + report.warnings)
    return _print(report, settings, as_json=args.json)


def _print(report: Report, settings: Settings, *, as_json: bool) -> int:
    """The report on stdout; the failure once, then its fix, on stderr."""
    now = report.finished_at or datetime.now(UTC)
    expiring = expiry_failure(report, now, settings.fail_if_expires_within)
    code = report.exit_code
    if expiring and code is ExitCode.OK:
        code = ExitCode.FAILED
    if as_json:
        document = report.to_json()
        document["exit_code"] = int(code)
        document["expiry_failure"] = expiring
        json.dump(document, sys.stdout, indent=2)
        print()
        return int(code)
    print(render_report(report))
    if report.error:
        hint = for_cli(report.hint or "", report.error_code)
        error = for_cli(report.error, report.error_code)
        fix = hint.removeprefix(report.error).removeprefix(error).strip()
        code_text = f" [{report.error_code}]" if report.error_code else ""
        print(f"error: {error}{code_text}" + (f"\n\n{fix}" if fix else ""), file=sys.stderr)
    if expiring:
        print(f"error: {expiring}", file=sys.stderr)
    return int(code)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Read files and secret variables, then check everything the way the Action does."""
    stdin_once(args.chain, args.key)
    used: dict[str, str] = {}
    values: dict[str, str | bytes] = {
        name: getattr(args, name.replace("-", "_")) or ""
        for name in (
            "cf-api",
            "cf-username",
            "cf-origin",
            "cf-client-id",
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
        )
    }
    for name in ("force", "dry-run", "keep-root"):
        values[name] = "true" if getattr(args, name.replace("-", "_")) else ""
    for name, flag in (
        ("cf-password", "cf_password_env"),
        ("cf-client-secret", "cf_client_secret_env"),
        ("private-key-passphrase", "passphrase_env"),
    ):
        variable = getattr(args, flag)
        if variable:
            values[name] = secret_from_env(variable, flag="--" + flag.replace("_", "-"))
    if args.cf_ca_cert:
        values["cf-ca-cert"] = read_input(
            args.cf_ca_cert, what="CF CA", flag="--cf-ca-cert", limit=CA_BUNDLE_MAX
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
    return build(values, dialect(used), jwt=jwt)
