"""The `cpi-cert-rotate` command: parses arguments, sets up logging, renders errors, exits.

Each subcommand lives in its own module with `add_arguments(parser)` and `run(args) -> int`;
only the chosen one is imported (before parsing, so that `rotate --help` lists its
flags), and `sandbox` and `demo` (which need `cf_sandbox`, not shipped in the container
image) cost nothing elsewhere.

Every failure is one `error:` line with its code, then the fix; with `--json` the same
problems are one JSON document on standard output (`{"problems": [...]}`), also for an
argument argparse refuses. Unknown arguments are never echoed (one may be a mistyped
secret): only a flag's name is, with a pointer to the flag that exists.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import __version__
from ..errors import ExitCode, InputError, RotationError
from .spelling import FLAGS, for_cli

# name -> (module under cpi_cert_rotate.cli, one-line help)
_COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("inspect_cmd", "check a certificate chain (and key) and report every problem"),
    "format": ("format_cmd", "print a chain in the form CF, a manifest or an env var needs"),
    "rotate": ("rotate_cmd", "rotate the certificate of a Cloud Foundry app"),
    "scan": ("scan_cmd", "find every CPI client certificate in the landscape and what is due"),
    "sandbox": ("sandbox_cmd", "run the local CF + UAA + CPI landscape until interrupted"),
    "demo": ("demo_cmd", "rotate against a fresh local sandbox while a probe measures failures"),
}

# Flags people try for a secret or a form that is given another way here.
_INSTEAD: dict[str, str] = {
    **{f"--{name}": flag for name, flag in FLAGS.items() if flag and f"--{name}" != flag},
    "--pkcs12": "--chain",
    "--pkcs12-password": "--passphrase-env",
    "--passphrase": "--passphrase-env",
    "--password": "--cf-password-env",
    "--cf-client-secret": "--cf-client-secret-env",
    "--vault-token": "--vault-token-env",
    "--cf-assertion": "--cf-assertion-env",
    "--assertion": "--cf-assertion-env",
}
_FLAG = re.compile(r"--[a-z][a-z0-9-]*")
# argparse's own messages -> a stable code (argparse has none).
ARGUMENT_CODES = (
    ("unrecognized arguments", "unknown-argument"),
    ("the following arguments are required", "missing-argument"),
    ("invalid choice", "bad-choice"),
    ("expected one argument", "missing-value"),
    ("not allowed with argument", "conflicting-arguments"),
)

log = logging.getLogger("cpi_cert_rotate")


class _Parser(argparse.ArgumentParser):
    """argparse that never echoes unknown arguments (one may be a mistyped secret), takes no
    abbreviations (`--passphrase X` must not pass for `--passphrase-env`), and speaks JSON
    when the command line asks for it."""

    json_errors = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        code = next((c for text, c in ARGUMENT_CODES if text in message), "bad-arguments")
        fix = ""
        if code == "unknown-argument":
            message, fix = _unknown(message)
        if _Parser.json_errors:
            _print_json_problems([InputError(message, code=code, fix=fix)])
            sys.exit(int(ExitCode.BAD_INPUT))
        self.print_usage(sys.stderr)
        print(
            f"{self.prog}: error: {message} [{code}]" + (f"\n\n{fix}" if fix else ""),
            file=sys.stderr,
        )
        sys.exit(int(ExitCode.BAD_INPUT))


def _unknown(message: str) -> tuple[str, str]:
    """The unknown flags by name only (never a value), and the flags meant instead."""
    words = message.split(":", 1)[1].split()
    flags = [w.split("=", 1)[0] for w in words if _FLAG.fullmatch(w.split("=", 1)[0])]
    shown = f": {', '.join(flags)}" if flags else ""
    message = (
        f"{len(words)} unrecognized argument(s){shown} (values not shown: one may hold a secret)"
    )
    tips = [f"use `{_INSTEAD[f]}` instead of `{f}`" for f in flags if f in _INSTEAD]
    secret = any(_INSTEAD.get(f, "").endswith("-env") for f in flags)
    fix = "; ".join(tips)
    if secret:
        fix += (
            ". Secrets are never taken from the command line (`ps` and the shell history "
            "show it): export the value in an environment variable and give its name "
            "(`read -rs KEY_PASS; export KEY_PASS`, then `--passphrase-env KEY_PASS`)."
        )
    return message, fix[:1].upper() + fix[1:] if fix else ""


def _print_json_problems(errors: Sequence[InputError]) -> None:
    problems = [
        {"code": e.code, "severity": "error", "message": str(e), "fix": e.fix} for e in errors
    ]
    json.dump({"problems": problems, "exit_code": int(ExitCode.BAD_INPUT)}, sys.stdout, indent=2)
    print()


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


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand: the first word that is not an option of the dispatcher itself."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in _COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _Parser.json_errors = "--json" in argv
    parser = _build_parser()
    command = _command(argv)
    module = None
    if command is not None:  # its flags exist before parsing, so `--help` shows them
        module = importlib.import_module(f"{__name__}.{_COMMANDS[command][0]}")
        module.add_arguments(_subparser(parser, command))
    try:
        args = parser.parse_args(argv)
    except InputError as error:  # a flag's type (`--scope`) refused its value
        if "--json" in argv:
            _print_json_problems(error.problems)
        else:
            _print_errors(error)
        return int(error.exit_code)
    assert module is not None  # argparse refused a missing or unknown command above
    _log_to_stderr(args.verbose)
    try:
        code: int = module.run(args)
    except InputError as error:
        if getattr(args, "json", False):
            _print_json_problems(error.problems)
        else:
            _print_errors(error)
        return int(error.exit_code)
    except RotationError as error:
        print(f"error: {for_cli(error.hint())}", file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return int(ExitCode.FAILED)
    except Exception as error:  # a bug: one clear line, the traceback only with -vv
        log.debug("internal error", exc_info=True)
        print(f"internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return int(ExitCode.FAILED)
    return code


def _log_to_stderr(verbose: int) -> None:
    """Warnings by default, more with `-v`/`-vv`. A failure's ERROR records say what the
    report (or the error line) says at the end, so they are shown only with `-v`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not verbose:
        handler.addFilter(lambda record: record.levelno < logging.ERROR)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)], handlers=[handler]
    )


def _print_errors(error: InputError) -> None:
    """One `error:` line per problem, each followed by its fix."""
    blocks = []
    for problem in error.problems:
        fix = for_cli(problem.fix, problem.code)
        blocks.append(
            f"error: {for_cli(str(problem), problem.code)} [{problem.code}]"
            + (f"\n  {fix}" if fix else "")
        )
    print("\n".join(blocks), file=sys.stderr)


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]  # type: ignore[no-any-return]
    raise LookupError(name)


if __name__ == "__main__":
    sys.exit(main())
