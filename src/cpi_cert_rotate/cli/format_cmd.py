"""`cpi-cert-rotate format`: print a chain in the form CF, a manifest or an env var needs.

Replaces the seed post's hand edits (awk, regex search-and-replace in an editor) with one
command per target. The chain is validated first; an error-level problem stops the
output (exit 2) so a broken certificate never reaches a binding, while warnings go to
standard error and leave standard output clean for pipes:

    cpi-cert-rotate format --chain chain.p7b --for bind-json > bind.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .. import material
from ..material import Problem, Severity, Validation
from .inspect_cmd import add_input_arguments, passphrase_from_env, trusted_roots_from
from .local_inputs import read_input

FORMS: dict[str, str] = {
    "leaf": "the leaf certificate as PEM",
    "bind-json": 'binding parameters as one line of JSON: {"key-type":"certificate_external",'
    '"X.509":"<leaf PEM>"} (for `cf bind-service -c`)',
    "manifest": "a manifest.yml snippet binding the app with the leaf",
    "manifest-oneline": "the seed's one-line manifest value (PEM without any newline)",
    "env-chain": "leaf and intermediates as PEM, leaf first, root left out (for CLI_CHAIN)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `format`."""
    add_input_arguments(parser)
    parser.add_argument(
        "--for",
        dest="form",
        required=True,
        choices=list(FORMS),
        help="; ".join(f"{name}: {text}" for name, text in FORMS.items()),
    )
    parser.add_argument(
        "--keep-root", action="store_true", help="env-chain: keep the root certificate"
    )
    parser.add_argument("--app", default="<app>", help="manifest: the application name")
    parser.add_argument(
        "--service-instance",
        default="<service-instance>",
        help="manifest: the it-rt service instance name",
    )


# What only the env chain is about: a form of the leaf alone shows none of it.
_CHAIN_NOTES = frozenset({"root-included", "chain-reordered", "duplicate-certificate"})


def _notes(validation: Validation, form: str) -> list[Problem]:
    """The warnings (and for the env chain the notes) that concern the printed form."""
    return [
        p
        for p in validation.problems
        if p.severity is Severity.WARNING or (p.severity is Severity.INFO and form == "env-chain")
        if form == "env-chain" or p.code not in _CHAIN_NOTES
    ]


def render(validation: Validation, args: argparse.Namespace) -> str:
    """The requested form of the validated chain, newline-terminated."""
    leaf = validation.leaf
    renderers: dict[str, Callable[[], str]] = {
        "leaf": lambda: material.leaf_pem(leaf),
        "bind-json": lambda: material.bind_json(leaf) + "\n",
        "manifest": lambda: material.manifest_snippet(
            leaf, app=args.app, service_instance=args.service_instance
        ),
        "manifest-oneline": lambda: material.manifest_oneline(leaf) + "\n",
        "env-chain": lambda: material.env_chain_pem(validation, keep_root=args.keep_root),
    }
    return renderers[args.form]()


def run(args: argparse.Namespace) -> int:
    """Validate the chain, report what concerns the form on stderr, print it on stdout."""
    chain = material.load_chain(
        read_input(args.chain, what="chain", flag="--chain"),
        password=passphrase_from_env(args.passphrase_env),
    )
    validation = material.validate(chain, trusted_roots=trusted_roots_from(args.trusted_roots))
    material.raise_for_problems(validation)
    for found in _notes(validation, args.form):
        print(f"{found.severity}: {found.code}: {found.message}", file=sys.stderr)
    sys.stdout.write(render(validation, args))
    return 0
