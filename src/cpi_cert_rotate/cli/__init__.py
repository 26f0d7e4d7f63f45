"""The `cpi-cert-rotate` command: parses arguments, sets up logging, renders errors, exits.

Each subcommand lives in its own module with `add_arguments(parser)` and `run(args) -> int`;
they are imported only when chosen, so `sandbox` and `demo` (which need `cf_sandbox`, not
shipped in the container image) cost nothing elsewhere.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import __version__
from ..errors import ExitCode, RotationError

# name -> (module under cpi_cert_rotate.cli, one-line help)
_COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("inspect_cmd", "check a certificate chain (and key) and report every problem"),
    "format": ("format_cmd", "print a chain in the form CF, a manifest or an env var needs"),
    "rotate": ("rotate_cmd", "rotate the certificate of a Cloud Foundry app"),
    "scan": ("scan_cmd", "find every CPI client certificate in the landscape and what is due"),
    "sandbox": ("sandbox_cmd", "run the local CF + UAA + CPI landscape until interrupted"),
    "demo": ("demo_cmd", "rotate against a fresh local sandbox while a probe measures failures"),
}

log = logging.getLogger("cpi_cert_rotate")


class _Parser(argparse.ArgumentParser):
    """argparse that never echoes unknown arguments (one may be a mistyped secret) and
    takes no abbreviations (`--passphrase X` must not pass for `--passphrase-env`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            count = len(message.split(":", 1)[1].split())
            message = f"{count} unrecognized argument(s) (not shown: one may hold a secret)"
        super().error(message)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cpi-cert-rotate",
        description="Rotate the client certificate a Cloud Foundry app uses to call an SAP "
        "Cloud Integration iFlow over mTLS.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for name, (module_name, help_text) in _COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    # Two passes: find the command, then let its module add its own arguments.
    known, _ = parser.parse_known_args(argv)
    module = importlib.import_module(f"{__name__}.{known._module}")
    sub_parser = _subparser(parser, known.command)
    module.add_arguments(sub_parser)
    try:
        args = parser.parse_args(argv)
    except RotationError as error:  # a flag's type (`--renew-before`, `--scope`) refused it
        print(f"error: {error.hint()}", file=sys.stderr)
        return int(error.exit_code)
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    logging.basicConfig(
        level=levels[min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = module.run(args)
    except RotationError as error:
        print(f"error: {error.hint()}", file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return int(ExitCode.FAILED)
    return code


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]  # type: ignore[no-any-return]
    raise LookupError(name)


if __name__ == "__main__":
    sys.exit(main())
