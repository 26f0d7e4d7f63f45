"""How an adapter spells its inputs, and the collector of input problems.

The builder writes every message once; a `Dialect` turns an input's name into the
words its user knows: "input `cf-ca-cert`" in the Action, "`--cf-ca-cert`" on the
command line. Problems are collected so that one run reports every fix needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import InputError
from .fields import ROTATE, SCAN

T = TypeVar("T")

_SECRET = frozenset(ROTATE.secret_inputs) | frozenset(SCAN.secret_inputs)


def _no_hint(secret: bool) -> str:
    return ""


@dataclass(frozen=True)
class Dialect:
    """The words of one adapter: how an input is named, and hints only it can give."""

    spell: Callable[[str], str | None]
    """An input's name as the user writes it (`` `cf-api` ``, `` `--cf-api` ``); None when
    the adapter has no such input (the command line has no `pkcs12`: `--chain` reads it)."""
    noun: str = ""
    """Put before a name that starts a sentence: "input " for the Action."""
    empty: str = "is empty"
    chain_is_public: bool = True
    """The chain's input may be logged (an Action input): a key found there may have leaked.
    When False (a file), the chain input may also be a PKCS#12 that holds the key."""
    empty_hint: Callable[[bool], str] = _no_hint
    """Why a (secret, or not) value may be empty where the user set it."""

    def has(self, name: str) -> bool:
        """True when the adapter offers input `name`."""
        return self.spell(name) is not None

    def mention(self, name: str) -> str:
        """`name` inside a sentence."""
        spelt = self.spell(name)
        assert spelt is not None, name
        return spelt

    def ref(self, name: str) -> str:
        """`name` as the subject of a sentence."""
        return self.noun + self.mention(name)

    def names(self, *names: str) -> str:
        """Several inputs, e.g. "`cf-username`/`cf-password`"; those it lacks left out."""
        return "/".join(self.mention(n) for n in names if self.has(n))


@dataclass
class Problems:
    """Collects input problems and warnings; `raise_if_any` reports them as one error.

    The dialect's hints about empty values are given once, after every problem.
    """

    dialect: Dialect
    errors: list[InputError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hints: dict[str, None] = field(default_factory=dict)

    def add(self, message: str, *, code: str, fix: str = "") -> None:
        self._keep(InputError(message, code=code, fix=fix))

    def _keep(self, error: InputError) -> None:
        """Keep `error` once: two inputs may need the same fix (the job's OIDC token)."""
        if not any(str(e) == str(error) and e.code == error.code for e in self.errors):
            self.errors.append(error)

    def value(self, rule: Callable[[], T], default: T) -> T:
        """What `rule` returns; `default` after keeping its `InputError` as a problem."""
        try:
            return rule()
        except InputError as error:
            self._keep(error)
            return default

    def check(self, rule: Callable[[], object]) -> bool:
        """Run `rule`; keep its `InputError` as a problem. True when it passed."""

        def passed() -> bool:
            rule()
            return True

        return self.value(passed, False)

    def missing(self, name: str, *, why: str = "") -> None:
        d = self.dialect
        self.add(
            f"{d.ref(name)} {d.empty}{why}", code="missing-input", fix=f"Set {d.mention(name)}."
        )
        self.empty_hint(secret=name in _SECRET)

    def without_switch(self, switch: str, stray: list[str], *, fix: str) -> None:
        """`stray` inputs apply only with `switch`, which is empty: one `missing-input`.

        `fix` may name the inputs as `{names}`.
        """
        d = self.dialect
        names = ", ".join(d.mention(n) for n in stray)
        self.add(
            f"{d.ref(switch)} {d.empty} but {names} {'is' if len(stray) == 1 else 'are'} set",
            code="missing-input",
            fix=fix.replace("{names}", names),
        )
        self.empty_hint(secret=False)

    def empty_hint(self, *, secret: bool) -> None:
        hint = self.dialect.empty_hint(secret)
        if hint:
            self.hints[hint] = None

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        hints = "\n\n".join(self.hints)
        if len(self.errors) == 1:
            error = self.errors[0]
            fix = "\n\n".join(part for part in (error.fix, hints) if part)
            raise InputError(str(error), code=error.code, fix=fix) from error
        message = f"{len(self.errors)} input problems: " + "; ".join(map(str, self.errors))
        lines = [f"- {e}" + (f": {e.fix}" if e.fix else "") for e in self.errors]
        fix = "\n".join(lines) + (f"\n\n{hints}" if hints else "")
        raise InputError(message, code="invalid-inputs", fix=fix, problems=tuple(self.errors))
