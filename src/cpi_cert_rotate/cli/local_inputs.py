"""Where the commands read material and secrets from: files, stdin, environment variables.

One place for the rules: a path is read, never written, `-` is standard input, and no
more than the input's size limit (plus one byte, to tell) is read, so `/dev/zero` or a
log file cannot fill memory; a secret comes from an environment variable whose *name*
is given. When that variable is missing the error does not repeat the name, because a
user who passed the secret itself by mistake would otherwise see it printed (and
logged by CI).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import InputError
from ..request.rules import MATERIAL_MAX, size

_READ_FIX = "Check the path and its permissions; `-` reads standard input."


def read_input(path: str, *, what: str, flag: str, limit: int = MATERIAL_MAX) -> bytes:
    """The bytes of `path`, or of standard input for `-` (read-only, never written)."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(path).open("rb") as handle:
                data = handle.read(limit + 1)
    except OSError as error:
        raise InputError(
            f"Cannot read the {what} file {path}: {error.strerror or error}.",
            code="unreadable-input",
            fix=_READ_FIX,
        ) from error
    size(data, f"`{flag}`", limit)
    return data


def secret_from_env(name: str, *, flag: str, fix: str = "", show_name: bool = False) -> str:
    """The non-empty value of environment variable `name`, which `flag` named.

    `show_name` only for a fixed default name (`VAULT_TOKEN`), never for a user's value.
    """
    value = os.environ.get(name, "")
    if not value:
        variable = (
            f"the environment variable {name}"
            if show_name
            else f"the environment variable named by {flag}"
        )
        raise InputError(
            f"{variable} is empty or unset",
            code="missing-input",
            fix=fix or f"Give {flag} the variable's name, not its value, and export it first.",
        )
    return value


def stdin_once(*paths: str | None) -> None:
    """Standard input can be read once: refuse two inputs that both say `-`."""
    if sum(path == "-" for path in paths) > 1:
        raise InputError(
            "only one input can read standard input (`-`)",
            code="stdin-twice",
            fix="Pass one of them as a file, e.g. `--key /dev/fd/3 3<key.pem`.",
        )
