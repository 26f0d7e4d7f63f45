"""List answers: label selectors, ordering and CC's pagination envelope.

Sources (cloud_controller_ng): `app/presenters/v3/paginated_list_presenter.rb` (the
envelope; links carry `per_page`, the order as given and the filters, and the keys are
sorted as Rails' `Hash#to_query` sorts them), `app/mappers/order_by_mapper.rb` (an order
given without a sign is linked as `+field`), `lib/cloud_controller/paging/
pagination_options.rb` (default order: creation, i.e. the row id), and
`app/models/helpers/metadata_helpers.rb` (label selector requirements). The query itself
is validated in `listing.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from .listing import Query
from .web import Request, Response

_IN_SET = re.compile(r"^\s*(?P<key>[^\s!=]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")


def match_labels(selector: str | None, labels: dict[str, str]) -> bool:
    """Evaluate a CC label selector (`k=v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (..)`)."""
    if not selector:
        return True
    return all(_requirement_holds(r.strip(), labels) for r in _split_selector(selector))


def _requirement_holds(requirement: str, labels: dict[str, str]) -> bool:
    found = _IN_SET.match(requirement)
    if found:
        values = {v.strip() for v in found["values"].split(",")}
        return (labels.get(found["key"]) in values) == (found["op"] == "in")
    if "!=" in requirement:
        key, value = requirement.split("!=", 1)
        return labels.get(key.strip()) != value.strip()
    if "=" in requirement:
        key, value = requirement.replace("==", "=", 1).split("=", 1)
        return labels.get(key.strip()) == value.strip()
    if requirement.startswith("!"):
        return requirement[1:].strip() not in labels
    return requirement in labels


def _split_selector(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def keeps(query: Query, item: Any) -> bool:
    """The filters every list shares: guids, timestamps and (where taken) label_selector."""
    return query.keeps(item) and match_labels(query.single("label_selector"), item.labels)


OrderKey = Callable[[Any, str], Any]


def _attribute(item: Any, order_by: str) -> Any:
    return getattr(item, order_by)


def paginate(
    req: Request,
    query: Query,
    items: Iterable[Any],
    present: Callable[[Any], dict[str, Any]],
    *,
    order_key: OrderKey = _attribute,
) -> Response:
    """Order, slice and wrap `items` in the pagination envelope."""
    if query.order_by is None:
        ordered = sorted(items, key=lambda r: r.seq)
    else:
        field = query.order_by
        ordered = sorted(
            items, key=lambda r: (order_key(r, field), r.seq), reverse=query.descending
        )
    total = len(ordered)
    pages = max((total + query.per_page - 1) // query.per_page, 1)
    start = (query.page - 1) * query.per_page
    chunk = ordered[start : start + query.per_page]
    body: dict[str, Any] = {
        "pagination": {
            "total_results": total,
            "total_pages": pages,
            "first": {"href": _href(req, query, 1)},
            "last": {"href": _href(req, query, pages)},
            "next": {"href": _href(req, query, query.page + 1)} if query.page < pages else None,
            "previous": {"href": _href(req, query, query.page - 1)} if query.page > 1 else None,
        },
        "resources": [present(item) for item in chunk],
    }
    return Response(200, body)


def _href(req: Request, query: Query, number: int) -> str:
    params: dict[str, str] = {"per_page": str(query.per_page), "page": str(number)}
    if query.order_by is not None:
        params["order_by"] = ("-" if query.descending else "+") + query.order_by
    for key, value in req.params.items():
        if key in ("page", "per_page", "order_by"):
            continue
        if isinstance(value, dict):
            params.update({f"{key}[{sub}]": str(v) for sub, v in value.items()})
        elif isinstance(value, list):
            params[f"{key}[]"] = ",".join(value)
        else:
            params[key] = value
    encoded = "&".join(
        f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(params.items())
    )
    return f"{req.base_url}{req.path}?{encoded}"


def names_match(wanted: list[str] | None, name: str, *, case_sensitive: bool) -> bool:
    """CC's `names=` filter (case-insensitive for orgs, spaces and apps)."""
    if wanted is None:
        return True
    if case_sensitive:
        return name in wanted
    return name.lower() in {w.lower() for w in wanted}


def list_response(
    req: Request,
    query: Query,
    items: Iterable[Any],
    keep: Callable[[Any], bool],
    show: Callable[[Any], dict[str, Any]],
    *,
    order_key: OrderKey = _attribute,
) -> Response:
    """Filter (common filters + `keep`), order and paginate an already parsed query."""
    found = [i for i in items if keeps(query, i) and keep(i)]
    return paginate(req, query, found, show, order_key=order_key)


def by_attributes(query: Query, filters: dict[str, str]) -> Callable[[Any], bool]:
    """A `keep` for `param -> attribute` value lists (`states=READY` -> `state`)."""
    wanted = {attr: query.many(param) for param, attr in filters.items()}
    return lambda item: all(
        values is None or getattr(item, attr) in values for attr, values in wanted.items()
    )
