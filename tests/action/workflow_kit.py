"""Evaluate a workflow's `${{ }}` expressions the way the runner does, for the forms our
examples use: context paths (`vars.X`, `matrix.app`, `needs.plan.outputs.due-count`),
string literals, `==`/`!=`, `fromJSON(...)`, and `format`-free interpolation.

Semantics followed (GitHub docs, "Evaluate expressions in workflows and actions"):
a missing property is null and renders as ''; `==`/`!=` on strings compare case-
insensitively; a value that is exactly one `${{ }}` keeps the expression's type (a matrix
from `fromJSON` stays an object), anything else is a string with each expression
interpolated; an `if:` without `${{ }}` is an expression. Anything else raises, so an
example cannot use a form this emulation would get wrong. Every lookup of a missing
`vars`/`secrets`/`matrix`/`needs` property is recorded in `missing`: GitHub gives ''
silently, a test asserts there were none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_WHOLE = re.compile(r"^\s*\$\{\{(.*?)\}\}\s*$", re.S)
_EMBEDDED = re.compile(r"\$\{\{(.*?)\}\}", re.S)
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|\(|\))|(?P<path>[A-Za-z_][A-Za-z0-9_.\-]*))"
)


@dataclass
class Contexts:
    """The contexts one step sees."""

    values: dict[str, Any]
    missing: list[str] = field(default_factory=list)

    def lookup(self, path: str) -> Any:
        head, *rest = path.split(".")
        if head not in self.values:
            raise ValueError(f"context {head!r} is not available here ({path})")
        value: Any = self.values[head]
        for part in rest:
            if not isinstance(value, Mapping) or part not in value:
                self.missing.append(path)
                return None
            value = value[part]
        return value


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    text = text.strip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if not match or match.end() == at:
            raise ValueError(f"unsupported expression syntax at {text[at:]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        at = match.end()
    return tokens


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def evaluate(expression: str, contexts: Contexts) -> Any:
    """One expression (the text inside `${{ }}`)."""
    tokens = _tokens(expression)
    value, rest = _operand(tokens, contexts)
    if not rest:
        return value
    if len(rest) >= 2 and rest[0][0] == "op" and rest[0][1] in ("==", "!="):
        right, tail = _operand(rest[1:], contexts)
        if tail:
            raise ValueError(f"unsupported expression: {expression!r}")
        same = _as_text(value).lower() == _as_text(right).lower()
        return same if rest[0][1] == "==" else not same
    raise ValueError(f"unsupported expression: {expression!r}")


def _operand(
    tokens: list[tuple[str, str]], contexts: Contexts
) -> tuple[Any, list[tuple[str, str]]]:
    kind, text = tokens[0]
    if kind == "str":
        return text[1:-1].replace("''", "'"), tokens[1:]
    if kind == "path" and len(tokens) > 1 and tokens[1] == ("op", "("):
        if text.lower() != "fromjson":
            raise ValueError(f"unsupported function {text}()")
        inner, rest = _operand(tokens[2:], contexts)
        if not rest or rest[0] != ("op", ")"):
            raise ValueError("fromJSON(...) is not closed")
        return json.loads(_as_text(inner)), rest[1:]
    if kind == "path":
        return contexts.lookup(text), tokens[1:]
    raise ValueError(f"unexpected {text!r}")


def render(value: Any, contexts: Contexts) -> Any:
    """A workflow value with its expressions evaluated (recursively for maps and lists)."""
    if isinstance(value, Mapping):
        return {k: render(v, contexts) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, contexts) for v in value]
    if not isinstance(value, str):
        return value
    whole = _WHOLE.match(value)
    if whole and "${{" not in whole.group(1):
        return evaluate(whole.group(1), contexts)
    return _EMBEDDED.sub(lambda m: _as_text(evaluate(m.group(1), contexts)), value)


def condition(value: Any, contexts: Contexts) -> bool:
    """A job's or step's `if:` (with or without `${{ }}`); absent means true."""
    if value is None:
        return True
    text = str(value)
    whole = _WHOLE.match(text)
    result = evaluate(whole.group(1) if whole else text, contexts)
    return bool(result) and result not in ("", "false", 0)


def with_defaults(given: Mapping[str, Any], action: Mapping[str, Any]) -> dict[str, str]:
    """The inputs the runner passes: the step's `with:`, then action.yml's defaults."""
    inputs = {name: _as_text(value) for name, value in given.items()}
    for name, spec in (action.get("inputs") or {}).items():
        if name not in inputs and "default" in spec:
            inputs[name] = str(spec["default"])
    return inputs
