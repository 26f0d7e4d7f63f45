"""`cpi-cert-rotate rotate`: the engine from a shell, with flags that mirror the Action inputs.

Secrets never come from argv unless the user insists (`--cf-password`, with a warning):
passwords, client secrets and passphrases are read from named env vars, the chain and
key from files, stdin (`-`) or env vars.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from cryptography import x509

from .. import material
from ..errors import InputError
from ..models import CfAuth, CfTarget, PrivateKey, RenewBefore, RotationRequest, Strategy
from ..rotation import rotate
from ..rotation.annotations import DEFAULT_PREFIX, check_prefix
from ..signals import signal_note, stop_requested_on_signals
from .inspect_cmd import trusted_roots_from
from .issuer_args import add_issuer_arguments, issuer_from_args
from .local_inputs import read_input, secret_from_env
from .render import render_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `rotate`; each mirrors an Action input of the same name."""
    cf = parser.add_argument_group("Cloud Foundry")
    cf.add_argument(
        "--cf-api", required=True, help="CF API URL, e.g. https://api.cf.eu10.hana.ondemand.com"
    )
    cf.add_argument("--cf-username", default="", help="technical user")
    cf.add_argument(
        "--cf-password", default="", help="password (visible to `ps`; prefer --cf-password-env)"
    )
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
        "--cf-ca-cert", type=Path, help="PEM of a private CA for the CF API and the iFlow"
    )
    cf.add_argument("--cf-org", required=True)
    cf.add_argument("--cf-space", required=True)
    cf.add_argument("--app", required=True, help="the app that calls the iFlow")
    cf.add_argument("--service-instance", required=True, help="its it-rt service instance")
    cert = parser.add_argument_group("new certificate (or from Vault/OpenBao, below)")
    chain = cert.add_mutually_exclusive_group()
    chain.add_argument(
        "--chain", metavar="PATH", help="new chain (any format `inspect` reads); - is stdin"
    )
    chain.add_argument("--chain-env", metavar="NAME", help="env var holding the new chain")
    key = cert.add_mutually_exclusive_group()
    key.add_argument("--key", metavar="PATH", help="new private key; - is stdin")
    key.add_argument("--key-env", metavar="NAME", help="env var holding the new private key")
    cert.add_argument("--passphrase-env", metavar="NAME", help="env var holding the key passphrase")
    cert.add_argument("--keep-root", action="store_true", help="keep the root in the env chain")
    cert.add_argument(
        "--trusted-roots",
        metavar="PATH",
        help="PEM bundle of the roots the new chain must end in (default: SAP's list of "
        "approved roots, where a root not on it is only a warning)",
    )
    add_issuer_arguments(parser)
    how = parser.add_argument_group("rotation")
    how.add_argument("--chain-env-var", default="CLI_CHAIN", help="app env var for the chain")
    how.add_argument("--key-env-var", default="CLI_KEY", help="app env var for the key")
    how.add_argument("--strategy", choices=[s.value for s in Strategy], default="auto")
    how.add_argument("--renew-before", type=RenewBefore.parse, help="e.g. 30d or 33%%")
    how.add_argument("--force", action="store_true", help="rotate even if not due")
    how.add_argument("--dry-run", action="store_true", help="read and plan, change nothing")
    how.add_argument(
        "--verify-path", help="iFlow path to call with the new certificate, e.g. /http/ping"
    )
    how.add_argument("--verify-url", help="full URL to call instead of the binding's url + path")
    how.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole run")
    how.add_argument("--max-in-flight", type=int, default=1, help="instances replaced at a time")
    how.add_argument(
        "--annotation-prefix",
        metavar="DNS-NAME",
        help=f"prefix of the app annotations that record a rotation (default {DEFAULT_PREFIX})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Build the request, rotate (SIGINT/SIGTERM undo and stop), print the report."""
    request = build_request(args)
    cancel = threading.Event()
    with stop_requested_on_signals(cancel) as received:
        report = rotate(request, cancel=cancel)
    note = signal_note(
        received,
        str(report.outcome),
        stopped=report.error_code == "cancelled",
        live=report.rotated,
    )
    if note:
        print(note, file=sys.stderr)
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        print(render_report(report))
        if report.hint and report.error:
            print(f"\n{report.hint}", file=sys.stderr)
    return int(report.exit_code)


def build_request(args: argparse.Namespace) -> RotationRequest:
    """Turn flags into a typed request; reads and parses the material in memory."""
    stdin_used = [args.chain == "-", args.key == "-"]
    if all(stdin_used):
        raise InputError(
            "--chain and --key cannot both read stdin",
            fix="Give one of them as a file or through --chain-env/--key-env.",
        )
    issuer = issuer_from_args(args)
    chain, key = _given_material(args, with_issuer=issuer is not None)
    password = args.cf_password or (
        secret_from_env(args.cf_password_env, flag="--cf-password-env")
        if args.cf_password_env
        else ""
    )
    secret = (
        secret_from_env(args.cf_client_secret_env, flag="--cf-client-secret-env")
        if args.cf_client_secret_env
        else ""
    )
    if bool(args.cf_username) == bool(args.cf_client_id):
        raise InputError(
            "give exactly one of --cf-username (with a password) or --cf-client-id (with a secret)",
            code="auth-missing",
        )
    if args.cf_username and not password:
        raise InputError("--cf-username needs --cf-password-env", code="auth-missing")
    if args.cf_client_id and not secret:
        raise InputError("--cf-client-id needs --cf-client-secret-env", code="auth-missing")
    return RotationRequest(
        target=CfTarget(args.cf_api, args.cf_org, args.cf_space, args.app, args.service_instance),
        auth=CfAuth(
            username=args.cf_username,
            password=password,
            origin=args.cf_origin,
            client_id=args.cf_client_id,
            client_secret=secret,
            ca_pem=(
                read_input(str(args.cf_ca_cert), what="CF CA").decode() if args.cf_ca_cert else None
            ),
        ),
        chain=chain,
        key=key,
        issuer=issuer,
        chain_env_var=args.chain_env_var,
        key_env_var=args.key_env_var,
        strategy=Strategy(args.strategy),
        renew_before=args.renew_before,
        force=args.force,
        dry_run=args.dry_run,
        verify_path=args.verify_path,
        verify_url=args.verify_url,
        keep_root=args.keep_root,
        trusted_roots=trusted_roots_from(args.trusted_roots),
        timeout_s=args.timeout,
        max_in_flight=args.max_in_flight,
        annotation_prefix=(
            check_prefix(args.annotation_prefix, source="--annotation-prefix")
            if args.annotation_prefix is not None
            else None
        ),
    )


def _given_material(
    args: argparse.Namespace, *, with_issuer: bool
) -> tuple[tuple[x509.Certificate, ...], PrivateKey | None]:
    """The chain and key from --chain/--key (or their -env forms); none with an issuer,
    and none for a dry run that only checks the live certificate."""
    given = [flag for flag in ("chain", "chain_env", "key", "key_env") if getattr(args, flag)]
    if with_issuer:
        if given or args.passphrase_env or args.keep_root:
            raise InputError(
                "--vault-addr issues the new certificate; --chain/--key, --passphrase-env "
                "and --keep-root apply only to a certificate you give",
                code="ambiguous-material",
                fix="Drop either the Vault flags or the certificate flags.",
            )
        return (), None
    if not given and args.dry_run:
        return (), None  # a check of the live certificate needs no new one
    if not (args.chain or args.chain_env) or not (args.key or args.key_env):
        raise InputError(
            "the new certificate is missing: give --chain and --key (or --chain-env/--key-env), "
            "or --vault-addr to have Vault or OpenBao issue it (with --dry-run and neither, "
            "the live certificate is only checked)",
            code="missing-material",
        )
    passphrase = (
        secret_from_env(args.passphrase_env, flag="--passphrase-env")
        if args.passphrase_env
        else None
    )
    chain = material.load_chain(_read(args.chain, args.chain_env, "--chain"))
    key = material.load_key(
        _read(args.key, args.key_env, "--key"),
        passphrase=passphrase.encode() if passphrase else None,
    )
    return chain, key


def _read(path: str | None, env_name: str | None, flag: str) -> bytes:
    if env_name:
        return secret_from_env(env_name, flag=f"{flag}-env").encode()
    assert path is not None
    return read_input(path, what=flag.removeprefix("--"))
