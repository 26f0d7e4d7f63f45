"""Where the commands read material and secrets from: files, stdin, environment variables.

One place for the rules: a path is read, never written, and `-` is standard input; a
secret comes from an environment variable whose *name* is given. When that variable is
missing the error does not repeat the name, because a user who passed the secret itself
by mistake would otherwise see it printed (and logged by CI).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import InputError

_READ_FIX = "Check the path and its permissions; `-` reads standard input."


def read_input(path: str, *, what: str) -> bytes:
    """The bytes of `path`, or of standard input for `-` (read-only, never written)."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise InputError(
            f"Cannot read the {what} file {path}: {error.strerror or error}.",
            code="unreadable-input",
            fix=_READ_FIX,
        ) from error


def secret_from_env(name: str, *, flag: str, fix: str = "", show_name: bool = False) -> str:
    """The non-empty value of environment variable `name`, which `flag` named.

    `show_name` only for a fixed default name (`VAULT_TOKEN`), never for a user's value.
    """
    value = os.environ.get(name, "")
    if not value:
        variable = (
            f"the environment variable {name}"
            if show_name
            else (f"the environment variable named by {flag}")
        )
        raise InputError(
            f"{variable} is empty or unset",
            code="empty-input",
            fix=fix or f"Give {flag} the variable's name, not its value, and export it first.",
        )
    return value
