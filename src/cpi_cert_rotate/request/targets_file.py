"""A targets file read into entries with line numbers; its shape and keys checked.

```yaml
defaults:                      # optional: what every target takes unless it says otherwise
  verify-path: /http/ping
  vault-addr: https://vault.example.com:8200
  vault-role: cpi-client
targets:                       # required: 1 to 1000 apps (a scan's `include:` reads the same)
  - {org: acme, space: prod, app: orders, instance: cpi-rt}
  - org: acme
    space: prod
    app: invoices
    instance: cpi-rt
    strategy: swap
    cert-chain-file: certs/invoices-chain.pem
    private-key-env: INVOICES_KEY
```

A target is keyed like an entry of the scan's `due` matrix (`org`, `space`, `app`,
`instance`; its `environment` is read and ignored), so `scan --matrix` output is a
targets file. Every other key is an input of a single run (`request.fields`) under the
same name, or names where a value is: `-file` a path, `-env` an environment variable.
Keys, passwords and tokens are never values here, and the login is the run's, once.

The file is composed with PyYAML's safe loader into nodes, not constructed, so every
value is the text as written (`force: yes` stays `yes` and is refused as an Action input
would be) and every problem has a line: all are reported together. No message repeats
a value or a line of the file (it may be a key file given by mistake); only key names
that look like names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import yaml

from ..errors import InputError
from .fields import ROTATE
from .rules import TARGETS_MAX

TARGET_NAMES: dict[str, str] = {
    "org": "cf-org",
    "space": "cf-space",
    "app": "app",
    "instance": "service-instance",
}
"""The keys of a scan's matrix entry and the inputs they give."""

IGNORED = frozenset({"environment"})
"""The scan's matrix names each app's GitHub environment; one targets run is one job."""


@dataclass(frozen=True)
class Key:
    """A key of the file: the input it gives, and how (the value, a path, a variable)."""

    field: str
    how: str = "text"
    """`text`: the value itself; `file`: a path to read; `env`: a variable's name."""


_TEXT_KEYS = (
    "strategy",
    "renew-before",
    "force",
    "dry-run",
    "verify-path",
    "verify-url",
    "chain-env-var",
    "key-env-var",
    "keep-root",
    "timeout",
    "annotation-prefix",
    "fail-if-expires-within",
    "vault-addr",
    "vault-pki-mount",
    "vault-role",
    "vault-auth-role",
    "vault-auth-mount",
    "vault-audience",
    "vault-namespace",
    "vault-common-name",
    "vault-ttl",
    "key-type",
)
KEYS: dict[str, Key] = {
    **{name: Key(field) for name, field in TARGET_NAMES.items()},
    **{name: Key(name) for name in _TEXT_KEYS},
    "cert-chain-file": Key("cert-chain", "file"),
    "cert-chain-env": Key("cert-chain", "env"),
    "private-key-file": Key("private-key", "file"),
    "private-key-env": Key("private-key", "env"),
    "private-key-passphrase-env": Key("private-key-passphrase", "env"),
    "vault-token-env": Key("vault-token", "env"),
    "vault-ca-cert-file": Key("vault-ca-cert", "file"),
}
"""Every key a target or `defaults:` may hold."""

_MATERIAL = {
    "cert-chain": "cert-chain-file:` or `cert-chain-env:",
    "private-key": "private-key-file:` or `private-key-env:",
    "private-key-passphrase": "private-key-passphrase-env:",
    "pkcs12": "cert-chain-file:` (a PKCS#12 file brings its key; its password in "
    "`private-key-passphrase-env:`",
    "pkcs12-password": "private-key-passphrase-env:",
    "vault-token": "vault-token-env:",
    "cf-password": "",
    "cf-client-secret": "",
}
_LOGIN_VARIABLE_FLAGS = frozenset(
    {"cf-password-env", "cf-client-secret-env", "cf-assertion-env", "vault-jwt-env"}
)
"""The command line's flags that name a login's secret variable: the run's, like its login."""
_RUN_SETTINGS = (
    frozenset(f.name for f in ROTATE.fields if not f.secret)
    - {spec.field for spec in KEYS.values()}
    - set(_MATERIAL)
) | _LOGIN_VARIABLE_FLAGS
"""Every other input of a rotation (the login, `cf-oidc` and its inputs among them,
`trusted-roots`, `parallel`): given once, beside the file, for every target."""
_SPELT_HERE = {"cf-org": "org:", "cf-space": "space:", "service-instance": "instance:"}
_TOP_LEVEL = ("defaults", "targets", "include")
_NAME_LIKE = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_MERGE_KEY = "<<"
"""YAML 1.1's merge key: the safe loader would expand it, composing leaves it a plain key."""


@dataclass(frozen=True)
class Entry:
    """One `key: value` of `defaults:` or of a target, as written, with its line."""

    key: str
    value: str
    line: int


@dataclass(frozen=True)
class Target:
    """One item of `targets:`: its entries (unchecked against the rules yet)."""

    line: int
    entries: tuple[Entry, ...]


@dataclass
class TargetsFile:
    """The file's `defaults:` and targets, and every problem of its shape and keys."""

    source: str
    """How messages name the file: its path, or the Action input that holds it."""
    defaults: tuple[Entry, ...] = ()
    targets: tuple[Target, ...] = ()
    errors: list[InputError] = field(default_factory=list)

    def problem(self, line: int | None, message: str, *, code: str, fix: str = "") -> None:
        """Keep a problem, placed at `line` of the file."""
        where = f"{self.source} line {line}" if line else self.source
        self.errors.append(InputError(f"{where}: {message}", code=code, fix=fix))


def parse(text: str, source: str, *, login_hint: str) -> TargetsFile:
    """The file's entries and the problems of its shape and keys (`TargetsFile.errors`).

    `login_hint` says where the run's login goes instead (the adapter's words).
    """
    found = TargetsFile(source)
    root = _compose(found, text)
    if root is None:
        return found
    top = _mapping(found, root, "the file")
    for key, node in top.items():
        if key not in _TOP_LEVEL:
            found.problem(
                _line(node),
                f"unknown top-level key {_key_shown(key)}",
                code="bad-targets-file",
                fix="A targets file holds `defaults:` and `targets:` only.",
            )
    if "targets" in top and "include" in top:
        found.problem(
            _line(top["include"]),
            "`targets:` and `include:` are the same list: give one",
            code="bad-targets-file",
        )
    defaults = top.get("defaults")
    if isinstance(defaults, yaml.MappingNode):
        found.defaults = _entries(found, defaults, login_hint, in_defaults=True)
    elif defaults is not None and not _is_null(defaults):
        found.problem(_line(defaults), "`defaults:` must be a mapping", code="bad-targets-file")
    found.targets = _targets(found, top.get("targets") or top.get("include"), login_hint)
    return found


def _compose(found: TargetsFile, text: str) -> yaml.MappingNode | None:
    """The document's top node when it is a mapping; else None after keeping the problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        found.problem(
            mark.line + 1 if mark else None,
            f"not valid YAML ({str(error.problem or error.context)[:80]})",
            code="bad-targets-file",
            fix="Check the indentation and quoting at that line (a value with `: ` or `#` "
            "needs quotes).",
        )
        return None
    except yaml.YAMLError as error:
        found.problem(None, f"not valid YAML ({type(error).__name__})", code="bad-targets-file")
        return None
    if isinstance(root, yaml.MappingNode):
        return root
    found.problem(
        _line(root) if root is not None else None,
        "must be a mapping with `targets:` (and optionally `defaults:`)",
        code="bad-targets-file",
        fix="See the format in docs/fleet.md; a scan's `--matrix` output is one too.",
    )
    return None


def _targets(found: TargetsFile, listed: yaml.Node | None, login_hint: str) -> tuple[Target, ...]:
    """The items of `targets:` (or `include:`), each a mapping."""
    if listed is None or _is_null(listed) or _is_empty_list(listed):
        found.problem(
            _line(listed) if listed is not None else None,
            "holds no targets",
            code="bad-targets-file",
            fix="List the apps under `targets:`, each with `org:`, `space:`, `app:` and "
            "`instance:`. A scan's `due` list with nothing due is empty: run the rotation "
            "only when its `due-count` is not 0 (docs/fleet.md).",
        )
        return ()
    if not isinstance(listed, yaml.SequenceNode):
        found.problem(_line(listed), "`targets:` must be a list", code="bad-targets-file")
        return ()
    if len(listed.value) > TARGETS_MAX:
        found.problem(
            _line(listed),
            f"lists {len(listed.value)} targets; at most {TARGETS_MAX} are accepted",
            code="bad-targets-file",
            fix="Split the file, or let the scan's matrix run one job per app.",
        )
        return ()
    targets = []
    for item in listed.value:
        if isinstance(item, yaml.MappingNode):
            targets.append(Target(_line(item), _entries(found, item, login_hint)))
        else:
            found.problem(
                _line(item),
                "a target must be a mapping (`org:`, `space:`, `app:`, `instance:`, ...)",
                code="bad-targets-file",
            )
    return tuple(targets)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _is_empty_list(node: yaml.Node) -> bool:
    return isinstance(node, yaml.SequenceNode) and not node.value


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _key_shown(key: str) -> str:
    """A key in a message, `key:` as in the file (and so never taken for an input's name),
    when it looks like a name; never other text."""
    return f"`{key}:`" if _NAME_LIKE.fullmatch(key) else "(a key that is no name)"


def _mapping(found: TargetsFile, node: yaml.MappingNode, what: str) -> dict[str, yaml.Node]:
    """`node`'s keys (scalars) to value nodes; a key given twice is a problem."""
    seen: dict[str, int] = {}
    out: dict[str, yaml.Node] = {}
    for key_node, value in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            found.problem(_line(key_node), f"a key of {what} must be text", code="bad-targets-file")
            continue
        key = str(key_node.value)
        if key in seen:
            found.problem(
                _line(key_node),
                f"{_key_shown(key)} is given twice (also line {seen[key]})",
                code="bad-targets-file",
                fix="YAML keeps only the last value silently; keep one.",
            )
            continue
        seen[key] = _line(key_node)
        out[key] = value
    return out


def _entries(
    found: TargetsFile, node: yaml.MappingNode, login_hint: str, *, in_defaults: bool = False
) -> tuple[Entry, ...]:
    """The `key: value` lines of a target or `defaults:`; each key and value checked."""
    what = "`defaults:`" if in_defaults else "a target"
    key_lines: dict[str, int] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key_lines.setdefault(str(key_node.value), _line(key_node))
    entries = []
    for key, value in _mapping(found, node, what).items():
        line = _line(value)
        if key in IGNORED:
            continue
        if key not in KEYS:  # at the key: an alias's value is where its anchor is
            _refuse_key(found, key, key_lines[key], login_hint)
            continue
        if not isinstance(value, yaml.ScalarNode):
            found.problem(
                line,
                f"`{key}:` must be one value, not a list or mapping",
                code="bad-targets-file",
            )
            continue
        if _is_null(value) or value.value == "":
            found.problem(
                line,
                f"`{key}:` has no value",
                code="bad-targets-file",
                fix="Give a value, or remove the key to keep the default.",
            )
            continue
        entries.append(Entry(key, str(value.value), line))
    return tuple(entries)


def _refuse_key(found: TargetsFile, key: str, line: int, login_hint: str) -> None:
    """The problem of a key that is not a target's: why, and what to write instead."""
    shown = _key_shown(key)
    if key == _MERGE_KEY:
        found.problem(
            line,
            "YAML merge keys (`<<:`) are not read here",
            code="bad-targets-file",
            fix="Put what the targets share under `defaults:`; each target takes it unless "
            "it says otherwise.",
        )
    elif key in _MATERIAL:
        instead = _MATERIAL[key]
        found.problem(
            line,
            f"{shown}: keys, passwords, tokens and certificates are never written into a "
            "targets file (the value is not shown)",
            code="secret-in-targets",
            fix=(f"Name where it is: `{instead}`." if instead else login_hint)
            + " If a real secret was in the file, treat it as leaked and replace it.",
        )
    elif key in _RUN_SETTINGS:
        found.problem(
            line,
            f"{shown} belongs to the whole run, not to a target",
            code="run-setting-in-targets",
            fix=login_hint if key.startswith("cf-") else "Give it beside the targets file.",
        )
    else:
        close = [f"`{k}:`" for k in difflib.get_close_matches(key, list(KEYS), n=2)]
        if key in _SPELT_HERE:
            close = [f"`{_SPELT_HERE[key]}`"]
        found.problem(
            line,
            f"unknown key {shown}" + (f": did you mean {' or '.join(close)}?" if close else ""),
            code="unknown-target-key",
            fix="A target takes `org:`, `space:`, `app:`, `instance:` and the keys listed in "
            "docs/fleet.md (the inputs of a single run; `-file`/`-env` keys for material).",
        )
