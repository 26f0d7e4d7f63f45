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
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime

from ..errors import ExitCode
from ..models import Report, Strategy
from ..request.build import Settings, build
from ..request.fields import DEFAULT_WARN_DAYS
from ..rotation.annotations import DEFAULT_PREFIX
from ..signals import signal_note, stop_requested_on_signals
from .cf_args import add_cf_login_arguments, cf_assertion
from .issuer_args import add_issuer_arguments
from .progress import progress
from .render import expiry_failure, render_report
from .rotate_targets import run_targets
from .rotate_values import values_from_args
from .spelling import Flag, add_flags, dialect, for_cli

_TARGET_FLAGS: tuple[Flag, ...] = (
    ("--cf-org", "NAME", "required (unless --targets): org of the app"),
    ("--cf-space", "NAME", "required (unless --targets): space of the app"),
    ("--app", "NAME", "required (unless --targets): the app that calls the iFlow"),
    (
        "--service-instance",
        "NAME",
        "required (unless --targets): its it-rt service instance (case-sensitive)",
    ),
)
_CHAIN_FLAGS: tuple[Flag, ...] = (
    (
        "--chain",
        "PATH",
        "new chain in any form `inspect` reads (PEM, PKCS#7, DER, base64, or a PKCS#12 that "
        "holds its key too); - is standard input",
    ),
    ("--chain-env", "NAME", "environment variable holding it"),
)
_KEY_FLAGS: tuple[Flag, ...] = (
    (
        "--key",
        "PATH",
        "its private key (PKCS#8, PKCS#1, SEC1; PEM, DER or base64); not needed with a PKCS#12 "
        "--chain; - is standard input",
    ),
    ("--key-env", "NAME", "environment variable holding it"),
)
_MATERIAL_FLAGS: tuple[Flag, ...] = (
    (
        "--passphrase-env",
        "NAME",
        "environment variable holding the passphrase of the key or the PKCS#12",
    ),
    ("--keep-root", None, "keep the root CA in the chain the app gets"),
    (
        "--trusted-roots",
        "PATH",
        "PEM bundle of the roots the new chain must end in (default: SAP's list of approved "
        "roots, where a root not on it is only a warning)",
    ),
)
_ROTATION_FLAGS: tuple[Flag, ...] = (
    ("--chain-env-var", "NAME", "app environment variable for the chain"),
    ("--key-env-var", "NAME", "app environment variable for the key"),
    (
        "--strategy",
        "{" + ",".join(s.value for s in Strategy) + "}",
        "how the new leaf is registered; auto picks overlap where the landscape allows it, "
        "else swap",
    ),
    (
        "--renew-before",
        "WHEN",
        "rotate only when due: days before expiry (30d) or share of lifetime left (33%%); "
        "unset: whenever the certificate differs (33%% with --vault-addr)",
    ),
    ("--force", None, "rotate even when not due"),
    ("--dry-run", None, "read and plan; change nothing"),
    (
        "--verify-path",
        "PATH",
        "iFlow path called with the new certificate before promotion, e.g. /http/ping",
    ),
    ("--verify-url", "URL", "full https URL to call instead of --verify-path"),
    ("--timeout", "SECONDS", "the whole run's limit, then it rolls back (60-21600)"),
    ("--max-in-flight", "N", "instances the rolling deployment replaces at a time"),
    (
        "--annotation-prefix",
        "DNS-NAME",
        f"prefix of the app annotations that record a rotation (default: {DEFAULT_PREFIX})",
    ),
    (
        "--fail-if-expires-within",
        "DAYS",
        "exit 1 when the certificate in force afterwards expires within DAYS; also the threshold "
        f"of the expiry warning (default: none; the warning at {DEFAULT_WARN_DAYS})",
    ),
)


_TARGETS_FLAGS: tuple[Flag, ...] = (
    (
        "--targets",
        "PATH",
        "a targets file (YAML, docs/fleet.md; `scan --matrix` output is one): rotate every app "
        "it lists, each with its own overrides; the other flags are every target's defaults; "
        "- is standard input",
    ),
    ("--parallel", "N", "targets rotated at once (1-16)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `rotate`, grouped; each gives the Action input `cli.spelling.FLAGS` names."""
    cf = parser.add_argument_group("Cloud Foundry (where the app is, and how to log in)")
    add_cf_login_arguments(cf)
    add_flags(cf, _TARGET_FLAGS)
    cert = parser.add_argument_group(
        "new certificate (or let Vault/OpenBao issue it, below; with --dry-run and neither, "
        "the live certificate is only checked)"
    )
    add_flags(cert.add_mutually_exclusive_group(), _CHAIN_FLAGS)
    add_flags(cert.add_mutually_exclusive_group(), _KEY_FLAGS)
    add_flags(cert, _MATERIAL_FLAGS)
    add_issuer_arguments(parser)
    add_flags(parser.add_argument_group("rotation"), _ROTATION_FLAGS)
    add_flags(
        parser.add_argument_group(
            "many apps in one run (instead of --cf-org, --cf-space, --app, --service-instance)"
        ),
        _TARGETS_FLAGS,
    )
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the report as one JSON document")


def run(args: argparse.Namespace) -> int:
    """Build the request, rotate (SIGINT/SIGTERM undo and stop), print the report."""
    if args.targets:
        return run_targets(args)
    settings = settings_from_args(args)
    from ..rotation import rotate

    cancel = threading.Event()
    with stop_requested_on_signals(cancel) as received:
        report = rotate(settings.request, cancel=cancel, on_step=progress)
    note = signal_note(received, report)
    if note:
        print(note, file=sys.stderr)
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
    values, used, jwt = values_from_args(args)
    return build(values, dialect(used), jwt=jwt, cf_jwt=cf_assertion(args))
