"""`cpi-cert-rotate inspect`: check a chain (and key) and report every problem at once.

Exit codes: 0 when no error-level problem, 2 when there is one (or an input cannot be
read; then `--json` prints `{"problems": [...]}` only), 1 on an internal failure. `--json` prints
`{"leaf": {...}, "chain": [...], "key_matches": ..., "problems": [...]}`.

The passphrase comes from an environment variable named by `--passphrase-env`, never
from argv (visible in `ps` and shell history). Inputs are read, never written: `-`
reads standard input, so a key can be piped from a secret store without touching disk.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any

from .. import material
from ..errors import ExitCode, InputError
from ..material import Problem, Severity, Validation
from ..request.fields import DEFAULT_WARN_DAYS
from ..request.rules import CA_BUNDLE_MAX
from .local_inputs import read_input, secret_from_env, stdin_once

log = logging.getLogger(__name__)

_INDENT = " " * 11


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """`--chain`, `--passphrase-env` and `--trusted-roots`, shared with `format`.

    Abbreviations are turned off: argparse would otherwise read `--passphrase SECRET` as
    `--passphrase-env SECRET`, and the secret would end up in an error message.
    """
    parser.allow_abbrev = False
    parser.add_argument(
        "--chain",
        required=True,
        metavar="PATH",
        help="certificate chain: PEM (any order, bag attributes, one-line forms), PKCS#7, "
        "PKCS#12, DER, or base64 of one of them; `-` reads standard input",
    )
    parser.add_argument(
        "--passphrase-env",
        metavar="NAME",
        help="environment variable holding the passphrase of an encrypted key or PKCS#12",
    )
    parser.add_argument(
        "--trusted-roots",
        metavar="PATH",
        help="PEM bundle of the root certificates the chain must end in; default: SAP's "
        "published list of approved roots (a root not on it is a warning)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `inspect`."""
    add_input_arguments(parser)
    parser.add_argument(
        "--key",
        metavar="PATH",
        help="private key: PKCS#8, PKCS#1 or SEC1 (PEM or DER, encrypted or not), PKCS#12, "
        "or base64; `-` reads standard input",
    )
    parser.add_argument(
        "--warn-days",
        type=int,
        default=DEFAULT_WARN_DAYS,
        metavar="N",
        help=f"warn when the leaf expires within N days (default {DEFAULT_WARN_DAYS})",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def passphrase_from_env(name: str | None) -> bytes | None:
    """The passphrase held in environment variable `name` (None when no name given)."""
    if not name:
        return None
    return secret_from_env(
        name,
        flag="--passphrase-env",
        fix="Give the variable's name, not the passphrase, and export it first "
        "(`read -rs KEY_PASS; export KEY_PASS`), or leave --passphrase-env out for an "
        "unencrypted key.",
    ).encode("utf-8")


def trusted_roots_from(path: str | None) -> tuple[Any, ...]:
    if path is None:
        return ()
    try:
        return material.load_chain(
            read_input(path, what="trusted roots", flag="--trusted-roots", limit=CA_BUNDLE_MAX)
        )
    except InputError as error:
        raise InputError(f"--trusted-roots: {error}", code=error.code, fix=error.fix) from error


def inspect_inputs(
    args: argparse.Namespace, now: datetime
) -> tuple[Validation | None, tuple[Problem, ...]]:
    """Load and validate; input problems become `Problem`s instead of exceptions."""
    stdin_once(args.chain, args.key)
    passphrase = passphrase_from_env(args.passphrase_env)
    roots = trusted_roots_from(args.trusted_roots)
    chain_data = read_input(args.chain, what="chain", flag="--chain")
    key_data = read_input(args.key, what="key", flag="--key") if args.key else None
    try:
        loaded = material.load_material(chain_data, passphrase=passphrase)
    except InputError as error:
        return None, (material.problem_from_error(error),)
    key = loaded.key
    load_problems: tuple[Problem, ...] = ()
    if key_data is not None:
        try:
            key = material.load_key(key_data, passphrase=passphrase)
        except InputError as error:
            key, load_problems = None, (material.problem_from_error(error),)
    validation = material.validate(
        loaded.chain, key, now=now, trusted_roots=roots, warn_days=args.warn_days
    )
    return validation, load_problems + validation.problems


def to_json(
    validation: Validation | None, problems: tuple[Problem, ...], now: datetime
) -> dict[str, Any]:
    """The `--json` document (shape fixed by issue 2; scripts depend on it)."""
    chain = []
    for cert in validation.chain if validation else ():
        cert_facts = material.facts(cert).to_json()
        chain.append({k: cert_facts[k] for k in ("subject", "issuer", "not_after")})
    return {
        "leaf": material.facts(validation.leaf).to_json(now) if validation else None,
        "chain": chain,
        "key_matches": validation.key_matches if validation else None,
        "problems": [
            {"code": p.code, "severity": str(p.severity), "message": p.message} for p in problems
        ],
    }


def _key_line(validation: Validation, problems: tuple[Problem, ...]) -> str:
    if validation.key_matches is True:
        return "matches the leaf"
    if validation.key_matches is False:
        return "DOES NOT match the leaf"
    if any(p.code in {"key-encrypted", "wrong-passphrase", "unparseable-key"} for p in problems):
        return "could not be read (see problems)"
    return "not given"


def render_text(validation: Validation | None, problems: tuple[Problem, ...], now: datetime) -> str:
    """The readable report: leaf facts, the ordered chain, then every problem."""
    lines: list[str] = []
    if validation is not None:
        leaf = material.facts(validation.leaf)
        data = leaf.to_json(now)
        lines += [
            f"Leaf        {leaf.subject}",
            f"Issuer      {leaf.issuer}",
            f"Serial      {leaf.serial}",
            f"Valid       {data['not_before']} to {data['not_after']} "
            f"({data['days_remaining']} days left)",
            f"SHA-256     {leaf.fingerprint_sha256}",
            f"Public key  {leaf.key_type} {leaf.key_size}",
            f"Key         {_key_line(validation, problems)}",
            "Chain       (leaf first)",
        ]
        for number, cert in enumerate(validation.chain, 1):
            role = " [root: left out of the env chain]" if cert == validation.root else ""
            until = material.facts(cert).to_json()["not_after"]
            lines.append(f"  {number}. {cert.subject.rfc4514_string()}  until {until}{role}")
        lines.append("")
    if problems:
        lines.append("Problems")
        for found in problems:
            what, _, fix = found.message.partition(" Fix: ")
            lines.append(f"  {found.severity.upper():<8} {found.code}")
            lines += textwrap.wrap(what, 96, initial_indent=_INDENT, subsequent_indent=_INDENT)
            if fix:
                lines += textwrap.wrap(
                    f"Fix: {fix}", 96, initial_indent=_INDENT, subsequent_indent=_INDENT + "  "
                )
    errors = sum(p.severity is Severity.ERROR for p in problems)
    lines.append(f"Not usable: {errors} error(s)." if errors else "OK: no error-level problem.")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Inspect, print, and return 0 (usable) or 2 (an error-level problem)."""
    now = datetime.now(UTC)
    validation, problems = inspect_inputs(args, now)
    if args.json:
        sys.stdout.write(json.dumps(to_json(validation, problems, now), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(validation, problems, now))
    has_errors = any(p.severity is Severity.ERROR for p in problems)
    return int(ExitCode.BAD_INPUT if has_errors else ExitCode.OK)
