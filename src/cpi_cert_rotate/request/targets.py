"""A targets file -> one checked `Settings` per target, every problem at once, no call made.

Each target's values are layered: the adapter's own (flags or Action inputs: the login,
and anything the file does not say), then the file's `defaults:`, then the target's
keys. A level that names a certificate (`cert-chain-*`, `private-key-*`) or an issuer
(`vault-addr`) replaces what it inherits of the other kind, so a default issuer and one
target with its own key file work together. Every target then goes through `build.build`,
exactly as a single run's inputs do: the same rules, codes and messages, with each input
named where its value came from ("`strategy` (line 12)" for the file, "`--strategy`" or
"input `strategy`" for the adapter's).

Files named in the file (`-file` keys) are read relative to the file's own folder, no
more than the input's size limit; variables (`-env` keys) from the process environment.
Secrets read so are handed to `mask` before anything else can print them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from . import rules
from .build import Settings, Text, build, number
from .certificate import JwtSource
from .fields import LOGIN, ROTATE
from .problems import Dialect, Problems
from .targets_file import KEYS, TARGET_NAMES, Entry, Target, TargetsFile, parse

_CERTIFICATE = frozenset(
    {"cert-chain", "private-key", "private-key-passphrase", "pkcs12", "pkcs12-password"}
)
_ISSUER = frozenset({f.name for f in ROTATE.fields if f.name.startswith("vault-")} | {"key-type"})
_ALTERNATIVES: tuple[tuple[tuple[frozenset[str], frozenset[str]], ...], ...] = (
    (
        (frozenset({"cert-chain", "private-key"}), _CERTIFICATE),
        (frozenset({"vault-addr"}), _ISSUER),
    ),
    (
        (frozenset({"verify-path"}), frozenset({"verify-path"})),
        (frozenset({"verify-url"}), frozenset({"verify-url"})),
    ),
)
"""Inputs that exclude each other, as (what names the choice, what belongs to it): a level
that names one choice drops what it inherits of the others."""
_SECRET = frozenset(ROTATE.secret_inputs)
_RUN_ONLY = ("targets", "parallel")
_LOGIN = frozenset(f.name for f in LOGIN)
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ONE_LINE_YAML = re.compile(r"\{|(targets|include|defaults):(\s|$)")


@dataclass(frozen=True)
class Document:
    """A targets file's text, how messages name it, and where its relative paths start."""

    text: str
    source: str
    base: Path


@dataclass(frozen=True)
class TargetRun:
    """One target, checked: where it is in the file, and its settings."""

    label: str
    """`org/space/app`, as the file names it."""
    line: int
    settings: Settings


@dataclass(frozen=True)
class Batch:
    """Every target of a file, checked, and how many to rotate at once."""

    source: str
    targets: tuple[TargetRun, ...]
    parallel: int


def document(value: str, label: str, base: Path) -> Document:
    """The Action's `targets` input: YAML when it holds a line break, starts with `{`
    (the scan's one-line `due` output) or with a top-level key (`targets: [...]` on one
    line: the runner trims an input, so a one-line YAML value has no line break left),
    otherwise the path of a file (from `base`)."""
    if "\n" in value or _ONE_LINE_YAML.match(value.lstrip()):
        return Document(value, label, base)
    path = base / value
    data = read_file(path, label=label, limit=rules.TARGETS_FILE_MAX)
    return Document(_decoded(data, label), value, path.parent)


def read_file(path: Path, *, label: str, limit: int) -> bytes:
    """The bytes of `path`, no more than `limit` (plus one, to tell); `InputError` when it
    cannot be read or is larger. Read-only: nothing here writes a file."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise InputError(
            f"{label}: cannot read {path}: {error.strerror or error}",
            code="unreadable-input",
            fix="Check the path (relative paths start at the targets file's folder) and its "
            "permissions.",
        ) from error
    rules.size(data, label, limit)
    return data


def _decoded(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{label} is not UTF-8 text", code="bad-text", fix="Save the file as UTF-8."
        ) from error


def build_batch(
    values: Mapping[str, str | bytes],
    dialect: Dialect,
    doc: Document,
    *,
    env: Mapping[str, str] = os.environ,
    mask: Callable[[str], None] = lambda _form: None,
    jwt: JwtSource | None = None,
    cf_jwt: JwtSource | None = None,
    run_id: str = "",
) -> Batch:
    """Check the file and every target; raise one `InputError` listing every problem.

    `values` are the adapter's (its flags or inputs, `targets` and `parallel` among
    them), named and spelt as for `build.build`; `jwt` and `cf_jwt` as there.
    """
    problems = Problems(dialect)
    login_hint = (
        f"One login serves every target: give it as {dialect.names('cf-api', 'cf-username')} "
        "and the other login inputs, once."
    )
    found = parse(doc.text, doc.source, login_hint=login_hint)
    outer = {k: v for k, v in values.items() if k not in _RUN_ONLY}
    for name in TARGET_NAMES.values():
        if outer.get(name):
            problems.add(
                f"{dialect.ref(name)} is set beside {dialect.mention('targets')}: the "
                "targets file names every app",
                code="ambiguous-target",
                fix=f"Remove {dialect.mention(name)}, or run without {dialect.mention('targets')}.",
            )
    parallel = number(
        Text({"parallel": values.get("parallel") or ROTATE.defaults["parallel"]}),
        "parallel",
        problems,
        low=1,
        high=rules.ROTATE_PARALLEL_MAX,
        unit="targets",
        example="`4`",
    )
    reader = _Reader(found, doc.base, env, mask)
    defaults = reader.resolve(found.defaults)
    runs: list[TargetRun] = []
    failed: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
    seen: dict[tuple[str, ...], int] = {}
    for target in found.targets:
        layered = _layer(outer, defaults, reader.resolve(target.entries))
        label = _label(layered)
        if not _complete(found, target, layered):
            continue
        key = tuple(str(layered.values[n]).casefold() for n in ("cf-org", "cf-space", "app"))
        if key in seen:
            found.problem(
                target.line,
                f"{label} is also the target at line {seen[key]}: an app once per file",
                code="duplicate-target",
                fix="A rotation locks the app and rewrites its env vars: rotate its second "
                "instance in a run of its own.",
            )
            continue
        seen[key] = target.line
        try:
            settings = build(
                layered.values,
                _dialect(dialect, layered),
                mask=mask,
                jwt=jwt,
                cf_jwt=cf_jwt,
                run_id=run_id,
            )
        except InputError as error:
            for problem in error.problems:
                failed.setdefault((problem.code, str(problem), problem.fix), []).append(
                    (target.line, label)
                )
            continue
        runs.append(TargetRun(label, target.line, settings))
    errors = [*problems.errors, *found.errors, *_grouped(doc.source, failed, len(found.targets))]
    if errors:
        everything = Problems(dialect, errors=errors)
        everything.raise_if_any()
    assert parallel is not None
    return Batch(doc.source, tuple(runs), parallel)


@dataclass
class _Layered:
    """A target's values and where each came from: a file entry, or the adapter (None)."""

    values: dict[str, str | bytes]
    origin: dict[str, Entry | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _Resolved:
    """An entry with its value read: the file's text, a file's bytes, a variable's value."""

    entry: Entry
    field: str
    value: str | bytes


class _Reader:
    """Reads what `-file` and `-env` entries name; a failure is a problem at its line."""

    def __init__(
        self, found: TargetsFile, base: Path, env: Mapping[str, str], mask: Callable[[str], None]
    ) -> None:
        self.found, self.base, self.env, self.mask = found, base, env, mask

    def resolve(self, entries: tuple[Entry, ...]) -> list[_Resolved]:
        resolved: list[_Resolved] = []
        given: dict[str, Entry] = {}
        for entry in entries:
            spec = KEYS[entry.key]
            if spec.field in given:
                other = given[spec.field]
                self.found.problem(
                    entry.line,
                    f"`{entry.key}:` and `{other.key}:` (line {other.line}) give the same input",
                    code="ambiguous-material",
                    fix="Keep one of them.",
                )
                continue
            given[spec.field] = entry
            value = self._read(entry, spec.how, spec.field)
            if value is not None:
                resolved.append(_Resolved(entry, spec.field, value))
        return resolved

    def _read(self, entry: Entry, how: str, name: str) -> str | bytes | None:
        if how == "text":
            return entry.value
        if how == "file":
            try:
                return read_file(
                    self.base / entry.value, label=f"`{entry.key}:`", limit=_limit(name)
                )
            except InputError as error:
                self.found.problem(entry.line, str(error), code=error.code, fix=error.fix)
                return None
        if not _VARIABLE.fullmatch(entry.value):  # not echoed: it may be a secret by mistake
            self.found.problem(
                entry.line,
                f"`{entry.key}:` must be the name of an environment variable (letters, "
                "digits and `_`, not starting with a digit)",
                code="bad-env-var-name",
                fix="Give the variable's name, never its value.",
            )
            return None
        value = self.env.get(entry.value, "")
        if not value:  # the name is not repeated either (see `cli.local_inputs`)
            self.found.problem(
                entry.line,
                f"the environment variable that `{entry.key}:` names is empty or unset",
                code="missing-input",
                fix="Export it for this run (in a workflow: the step's `env:`, from a secret).",
            )
            return None
        if name in _SECRET:
            self.mask(value)
        return value


def _limit(name: str) -> int:
    return ROTATE.by_name[name].limit


def _layer(outer: Mapping[str, str | bytes], *levels: list[_Resolved]) -> _Layered:
    """The adapter's values, then each level over them (see the module docstring)."""
    layered = _Layered(dict(outer), {name: None for name, value in outer.items() if value})
    for level in levels:
        names = {r.field for r in level}
        replaced: set[str] = set()
        for choices in _ALTERNATIVES:
            for trigger, _ in choices:
                if names & trigger:
                    replaced |= {m for t, members in choices if t is not trigger for m in members}
        for name in replaced - names:
            if layered.values.get(name):
                layered.values[name] = ""
                layered.origin.pop(name, None)
        for resolved in level:
            layered.values[resolved.field] = resolved.value
            layered.origin[resolved.field] = resolved.entry
    return layered


def _label(layered: _Layered) -> str:
    """`org/space/app` for messages and reports, escaped (`rules.printable`): the names
    are not checked yet when a duplicate or a missing key is reported."""
    names = (layered.values.get(n) or "?" for n in ("cf-org", "cf-space", "app"))
    return "/".join(rules.printable(str(name)) for name in names)


def _complete(found: TargetsFile, target: Target, layered: _Layered) -> bool:
    """Every target names its org, space, app and instance (itself or in `defaults:`)."""
    missing = [key for key, name in TARGET_NAMES.items() if not layered.values.get(name)]
    if missing:
        found.problem(
            target.line,
            f"the target does not say its {', '.join(f'`{k}:`' for k in missing)}",
            code="missing-input",
            fix="Give each target `org:`, `space:`, `app:` and `instance:` (or put what they "
            "share under `defaults:`).",
        )
    return not missing


def _dialect(outer: Dialect, layered: _Layered) -> Dialect:
    """Names each input where its value came from: the file's key and line, or the
    adapter's own spelling; an input nobody set by the file's keys for it (none when the
    file has no key for it and it is no login input: `pkcs12` is then not offered)."""
    file_keys: dict[str, list[str]] = {}
    for key, spec in KEYS.items():
        file_keys.setdefault(spec.field, []).append(key)

    def spell(name: str) -> str | None:
        if name in layered.origin:
            entry = layered.origin[name]
            if entry is not None:
                return f"`{entry.key}:` (line {entry.line})"
            return outer.ref(name) if outer.has(name) else None
        keys = file_keys.get(name)
        if keys:
            return "/".join(f"`{k}:`" for k in keys)
        return outer.ref(name) if name in _LOGIN and outer.has(name) else None

    chain = layered.origin.get("cert-chain", "unset")
    return Dialect(
        spell=spell,
        noun="",
        empty="is not set",
        chain_is_public=outer.chain_is_public if chain is None else False,
        empty_hint=outer.empty_hint,
    )


def _grouped(
    source: str, failed: Mapping[tuple[str, str, str], list[tuple[int, str]]], total: int
) -> list[InputError]:
    """One error per distinct problem: placed at its target, or naming every target that
    has it (a problem of a value they all inherit is reported once)."""
    errors = []
    for (code, message, fix), where in failed.items():
        if len(where) == 1:
            ((line, label),) = where
            place = f"{source} line {line} ({label})"
        elif len(where) == total:
            place = f"{source}, every target"
        else:
            place = f"{source}, {len(where)} targets (lines {', '.join(str(w[0]) for w in where)})"
        errors.append(InputError(f"{place}: {message}", code=code, fix=fix))
    return errors
