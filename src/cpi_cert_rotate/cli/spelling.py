"""The command line's names for the Action's inputs, and messages spelt with them.

`FLAGS` maps each input of `rotate` (`request.fields.ROTATE`) to the flag that gives it
on the command line, `SCAN_FLAGS` each of `scan` (`request.fields.SCAN`). The input
checks (`request.build`) name a flag through `dialect()`; errors raised later (the
engine, the CF client) name inputs in backticks the Action's way, and `for_cli` shows a
command-line user the flag instead: "pass `--cf-ca-cert`", not "pass `cf-ca-cert`".
Material problems (`material.PROBLEMS`) are left as they are: their fixes already name
both spellings.
"""

from __future__ import annotations

import re
from argparse import _ArgumentGroup
from collections.abc import Mapping

from ..material import PROBLEMS
from ..request.fields import LOGIN, ROTATE, SCAN, Section
from ..request.problems import Dialect

FLAGS: dict[str, str | None] = {
    "cf-api": "--cf-api",
    "cf-username": "--cf-username",
    "cf-password": "--cf-password-env",
    "cf-origin": "--cf-origin",
    "cf-client-id": "--cf-client-id",
    "cf-client-secret": "--cf-client-secret-env",
    "cf-oidc": "--cf-oidc",
    "cf-oidc-audience": None,  # the token is given whole (--cf-assertion-env), not requested
    "cf-oidc-exchange-url": "--cf-oidc-exchange-url",
    "cf-oidc-exchange-client-id": "--cf-oidc-exchange-client-id",
    "cf-ca-cert": "--cf-ca-cert",
    "cf-org": "--cf-org",
    "cf-space": "--cf-space",
    "app": "--app",
    "service-instance": "--service-instance",
    "cert-chain": "--chain",
    "private-key": "--key",
    "private-key-passphrase": "--passphrase-env",
    "pkcs12": None,  # a PKCS#12 file goes in --chain, as for `inspect`
    "pkcs12-password": None,  # and its password in --passphrase-env
    "vault-addr": "--vault-addr",
    "vault-pki-mount": "--vault-pki-mount",
    "vault-role": "--vault-role",
    "vault-token": "--vault-token-env",
    "vault-auth-role": "--vault-auth-role",
    "vault-auth-mount": "--vault-auth-mount",
    "vault-audience": None,  # the JWT is given whole (--vault-jwt-env), not requested
    "vault-namespace": "--vault-namespace",
    "vault-ca-cert": "--vault-ca-cert",
    "vault-common-name": "--vault-common-name",
    "vault-ttl": "--vault-ttl",
    "key-type": "--key-type",
    "trusted-roots": "--trusted-roots",
    "chain-env-var": "--chain-env-var",
    "key-env-var": "--key-env-var",
    "strategy": "--strategy",
    "renew-before": "--renew-before",
    "force": "--force",
    "dry-run": "--dry-run",
    "verify-path": "--verify-path",
    "verify-url": "--verify-url",
    "keep-root": "--keep-root",
    "fail-if-expires-within": "--fail-if-expires-within",
    "timeout": "--timeout",
    "annotation-prefix": "--annotation-prefix",
    "targets": "--targets",
    "parallel": "--parallel",
    "max-in-flight": "--max-in-flight",
}
"""Every input of `rotate` and its flag; None where the command line takes it another way."""

SCAN_FLAGS: dict[str, str | None] = {
    f.name: FLAGS[f.name] if f in LOGIN else f"--{f.name}" for f in SCAN.fields
}
"""Every input of `scan` and its flag: the login's are `rotate`'s, the rest `--<name>`."""

_BACKTICKED = re.compile(r"`([a-z0-9]+(?:-[a-z0-9]+)*)`")

Flag = tuple[str, str | None, str]
"""(flag, metavar, meaning) of one flag; a metavar of None makes an on/off switch."""


def add_flags(group: _ArgumentGroup, flags: tuple[Flag, ...], section: Section = ROTATE) -> None:
    """Add `flags` to `group`, each help ending in the default of the input it gives."""
    spelling = SCAN_FLAGS if section is SCAN else FLAGS
    input_of = {flag: name for name, flag in spelling.items() if flag}
    for flag, metavar, meaning in flags:
        default = section.defaults.get(input_of.get(flag, ""), "")
        if metavar is None:
            group.add_argument(flag, action="store_true", help=meaning)
        else:
            shown = f" (default: {default})" if default else ""
            group.add_argument(flag, metavar=metavar, help=meaning + shown)


def dialect(
    used: Mapping[str, str] | None = None, flags: Mapping[str, str | None] = FLAGS
) -> Dialect:
    """The command line's words; `used` names the flag a user chose where two give one
    input (`--chain-env` instead of `--chain`)."""
    chosen = dict(used or {})

    def spell(name: str) -> str | None:
        flag = chosen.get(name) or flags.get(name)
        return f"`{flag}`" if flag else None

    return Dialect(spell=spell, noun="", empty="is not given", chain_is_public=False)


def for_cli(text: str, code: str | None = None) -> str:
    """`text` with each backticked input name replaced by its flag (see the docstring)."""
    if code in PROBLEMS:
        return text

    def flag(match: re.Match[str]) -> str:
        name = FLAGS.get(match.group(1))
        return f"`{name}`" if name else match.group(0)

    return _BACKTICKED.sub(flag, text)
