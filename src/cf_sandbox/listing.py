"""CC's query messages: which parameters an endpoint takes and how each is validated.

Sources (cloud_controller_ng): `app/messages/base_message.rb` (array keys are split on
`/,\\s*/` and then URL-unescaped; `NoAdditionalParamsValidator`, `IncludeParamValidator`
and their texts; an `include` is validated only by the messages that register that
validator, elsewhere it is just an unknown key), `app/messages/list_message.rb` (page,
per_page, order_by; `created_ats` and `updated_ats` with `lt`/`lte`/`gt`/`gte`; `guids`),
`app/messages/metadata_list_message.rb` (`label_selector` comes last),
`app/messages/validators.rb` (`TimestampValidator`, `FieldsValidator`, `ArrayValidator`),
`app/fetchers/base_list_fetcher.rb` (timestamp semantics), and one
`app/messages/*_list_message.rb` per endpoint for the keys, in CC's order (the "Valid
parameters are" text lists them in that order). Every problem becomes one 400
`CF-BadQueryParameter` whose detail joins them with ", " (`invalid_param!`).
Rack's nested parameters (`created_ats[gt]=...`, `fields[service_plan]=...`) come from
`Request.params`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .state import Resource
from .web import Request, bad_query

PAGING = ("page", "per_page", "order_by")
# list_message.rb: ALLOWED_PAGINATION_KEYS + ADVANCED_FILTERING_KEYS + COMMON_FILTERING_KEYS
LIST_BASE = (*PAGING, "created_ats", "updated_ats", "guids")
MAX_PER_PAGE = 5000
DEFAULT_PER_PAGE = 50
_TIMESTAMP = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\n?\Z")
_OPERATORS = ("lt", "lte", "gt", "gte")  # models/helpers/relational_operators.rb


def _humanize(attribute: str) -> str:
    """ActiveModel's attribute name in full messages: `per_page` -> `Per page`."""
    return attribute.replace("_", " ").capitalize()


def _ruby_to_i(text: str) -> int:
    """Ruby's `String#to_i`: the leading integer, 0 when there is none."""
    found = re.match(r"\s*([-+]?\d+)", text.replace("_", ""))
    return int(found.group(1)) if found else 0


def split_values(raw: str) -> list[str]:
    """`BaseMessage.to_array!`: "" -> [""]; else split on /,\\s*/ (keeping empties), unescape."""
    if raw == "":
        return [""]
    return [unquote(value) for value in re.split(r",\s*", raw)]


@dataclass(frozen=True)
class QuerySpec:
    """One CC message class: allowed keys (CC's order), array keys and special rules."""

    keys: tuple[str, ...]
    arrays: frozenset[str] = frozenset()
    orders: tuple[str, ...] = ("created_at", "updated_at")
    includes: tuple[str, ...] = ()
    fields: Mapping[str, tuple[str, ...]] | None = None
    enums: Mapping[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)

    @property
    def paged(self) -> bool:
        """A list message (pagination and timestamp filters apply)."""
        return "page" in self.keys


def list_spec(
    *specific: str,
    metadata: bool = True,
    arrays: tuple[str, ...] | None = None,
    orders: tuple[str, ...] = ("created_at", "updated_at"),
    includes: tuple[str, ...] = (),
    fields: Mapping[str, tuple[str, ...]] | None = None,
    enums: Mapping[str, tuple[tuple[str, ...], str]] | None = None,
) -> QuerySpec:
    """A `*ListMessage`: the base keys, the endpoint's keys, then `label_selector`.

    `arrays` defaults to every specific key except the single-valued ones in `enums`,
    `fields` and `label_selector` (CC passes its array keys to `from_params` explicitly).
    """
    singles = {*(enums or {}), "fields", "label_selector"}
    keys = (*LIST_BASE, *specific, *(("label_selector",) if metadata else ()))
    chosen = arrays if arrays is not None else tuple(k for k in specific if k not in singles)
    return QuerySpec(
        keys=keys,
        arrays=frozenset((*chosen, "created_ats", "updated_ats", "guids")),
        orders=orders,
        includes=includes,
        fields=fields,
        enums=dict(enums or {}),
    )


def show_spec(
    *keys: str,
    includes: tuple[str, ...] = (),
    fields: Mapping[str, tuple[str, ...]] | None = None,
) -> QuerySpec:
    """A show message (`*ShowMessage`): only `include` and/or `fields`."""
    arrays = frozenset(k for k in keys if k == "include")
    return QuerySpec(keys=keys, arrays=arrays, includes=includes, fields=fields)


@dataclass(frozen=True)
class Query:
    """A validated query: pagination, the parameters by name, include and fields."""

    spec: QuerySpec
    values: dict[str, Any]
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    order_by: str | None = None
    descending: bool = False

    def many(self, name: str) -> list[str] | None:
        """An array parameter's values, None when absent."""
        value = self.values.get(name)
        return value if isinstance(value, list) else None

    def single(self, name: str) -> str | None:
        """A single-valued parameter, None when absent."""
        value = self.values.get(name)
        return value if isinstance(value, str) else None

    @property
    def includes(self) -> list[str]:
        """The `include` values (validated)."""
        return self.many("include") or []

    @property
    def fields(self) -> dict[str, list[str]]:
        """`fields[resource]=keys` (validated)."""
        value = self.values.get("fields")
        return value if isinstance(value, dict) else {}

    def keeps(self, item: Resource) -> bool:
        """`guids` and `created_ats`/`updated_ats` (base_list_fetcher.rb)."""
        guids = self.many("guids")
        if guids is not None and item.guid not in guids:
            return False
        return all(
            _timestamps_match(self.values.get(name), getattr(item, attr))
            for name, attr in (("created_ats", "created_at"), ("updated_ats", "updated_at"))
        )


def _parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC
    )


def _timestamps_match(wanted: Any, when: datetime.datetime) -> bool:
    """Equality is per second (a list); operators compare at second precision."""
    if wanted is None:
        return True
    if isinstance(wanted, list):
        return any(_parse_time(t) == when for t in wanted)
    tests = {
        "lt": lambda t: when < t,
        "lte": lambda t: when <= t,
        "gt": lambda t: when > t,
        "gte": lambda t: when >= t,
    }
    return all(tests[op](_parse_time(str(t))) for op, t in wanted.items())


def _timestamp_problems(name: str, value: Any) -> list[str]:
    """`TimestampValidator` (validators.rb)."""
    label = _humanize(name)
    bad_format = (
        f"{label} has an invalid timestamp format. Timestamps should be formatted as "
        "'YYYY-MM-DDThh:mm:ssZ'"
    )
    if isinstance(value, list):
        return [bad_format for t in value if not _TIMESTAMP.match(t)]
    if not isinstance(value, dict):
        return [f"{label} relational operator and timestamp must be specified"]
    problems = []
    for operator, timestamp in value.items():
        if operator not in _OPERATORS:
            problems.append(f"{label} Invalid relational operator: '{operator}'")
        if "," in str(timestamp):
            problems.append(f"{label} only accepts one value when using a relational operator")
            continue
        if not _TIMESTAMP.match(str(timestamp)):
            problems.append(bad_format)
    return problems


def _paging_problems(params: dict[str, Any], spec: QuerySpec) -> list[str]:
    """`PaginationPageValidator` and `PaginationOrderValidator` (list_message.rb)."""
    problems = []
    page, per_page = params.get("page"), params.get("per_page")
    if page is not None and _ruby_to_i(str(page)) <= 0:
        problems.append("Page must be a positive integer")
    if per_page is not None:
        if _ruby_to_i(str(per_page)) <= 0:
            problems.append("Per page must be a positive integer")
        elif _ruby_to_i(str(per_page)) > MAX_PER_PAGE:
            problems.append(f"Per page must be between 1 and {MAX_PER_PAGE}")
    order = params.get("order_by")
    if order:
        pattern = r"[+-]?(" + "|".join(map(re.escape, spec.orders)) + r")"
        if not isinstance(order, str) or not re.fullmatch(pattern, order):
            allowed = ", ".join(f"'{o}'" for o in spec.orders)
            problems.append(f"Order by can only be: {allowed}")
    return problems


def _include_problems(values: list[str], allowed: tuple[str, ...]) -> list[str]:
    """`IncludeParamValidator` (base_message.rb)."""
    problems, seen = [], set()
    for value in values:
        if value in allowed:
            if value in seen:
                problems.append(f"Duplicate included resource: '{value}'")
            seen.add(value)
        else:
            valid = "', '".join(allowed)
            problems.append(
                f"Invalid included resource: '{value}'. Valid included resources are: '{valid}'"
            )
    return problems


def _fields_problems(value: Any, allowed: Mapping[str, tuple[str, ...]]) -> list[str]:
    """`FieldsValidator` (validators.rb)."""
    if not isinstance(value, dict):
        return ["Fields must be an object"]
    problems = []
    for resource, keys in value.items():
        if resource not in allowed:
            names = ", ".join(f"'{k}'" for k in allowed)
            problems.append(f"Fields [{resource}] valid resources are: {names}")
        elif not set(keys) <= set(allowed[resource]):
            names = ", ".join(f"'{k}'" for k in allowed[resource])
            problems.append(f"Fields valid keys for '{resource}' are: {names}")
    return problems


def _normalized(raw: dict[str, Any], spec: QuerySpec) -> dict[str, Any]:
    """Array keys split into lists, `fields[...]` values split too (`from_params`)."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in spec.arrays and isinstance(value, str):
            values[key] = split_values(value)
        elif key == "fields" and isinstance(value, dict):
            values[key] = {r: split_values(str(v)) for r, v in value.items()}
        else:
            values[key] = value
    return values


def _key_problems(raw: dict[str, Any], spec: QuerySpec, refused: tuple[str, ...]) -> list[str]:
    """`NoAdditionalParamsValidator`, then a nested route's own refusals."""
    problems = []
    unknown = [k for k in raw if k not in spec.keys]
    if unknown:
        problems.append(
            "Unknown query parameter(s): '"
            + "', '".join(unknown)
            + "'. Valid parameters are: '"
            + "', '".join(spec.keys)
            + "'"
        )
    nested = [k for k in refused if k in raw]
    if nested:
        problems.append("Unknown query parameter(s): '" + "', '".join(nested) + "'")
    return problems


def parse(req: Request, spec: QuerySpec, *, refused: tuple[str, ...] = ()) -> Query:
    """Validate the request's query against `spec` and return it, or CC's 400.

    `refused`: keys the message knows but this route does not take (CC's
    `app_nested_request` checks: `/v3/apps/:guid/droplets` refuses `app_guids`, ...).
    """
    raw = req.params
    values = _normalized(raw, spec)
    problems: list[str] = []
    if spec.paged:
        problems += _paging_problems(raw, spec)
        for name in ("created_ats", "updated_ats"):
            if name in values:
                problems += _timestamp_problems(name, values[name])
    problems += [
        f"{_humanize(name)} must be an array"
        for name in sorted(spec.arrays - {"created_ats", "updated_ats", "include"})
        if isinstance(values.get(name), dict)
    ]
    problems += _key_problems(raw, spec, refused)
    for name, (allowed, message) in spec.enums.items():
        if name in values and values[name] not in allowed:
            problems.append(f"{_humanize(name)} {message}")
    if "include" in values and "include" in spec.keys:  # only a message that takes it
        problems += _include_problems(values["include"], spec.includes)
    if "fields" in values and spec.fields is not None:
        problems += _fields_problems(values["fields"], spec.fields)
    if problems:
        raise bad_query(", ".join(problems))
    order = raw.get("order_by") or None
    return Query(
        spec=spec,
        values=values,
        page=_ruby_to_i(str(raw["page"])) if raw.get("page") else 1,
        per_page=_ruby_to_i(str(raw["per_page"])) if raw.get("per_page") else DEFAULT_PER_PAGE,
        order_by=str(order).lstrip("+-") if order else None,
        descending=bool(order) and str(order).startswith("-"),
    )
