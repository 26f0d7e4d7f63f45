"""List endpoints: query validation, filters, ordering and CC's pagination envelope.

CC (concepts/_pagination.md.erb): `page` >= 1, `per_page` 1..5000 (default 50),
`order_by` on created_at/updated_at/name with `-` for descending, `label_selector`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .state import Resource
from .web import Request, Response, bad_query, check_query

PAGING_PARAMS = ["page", "per_page", "order_by"]
_MAX_PER_PAGE = 5000
_DEFAULT_PER_PAGE = 50
_IN_SET = re.compile(r"^\s*(?P<key>[^\s!=]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")


@dataclass(frozen=True)
class Page:
    """Validated pagination and ordering."""

    page: int
    per_page: int
    order_by: str
    descending: bool


def csv(req: Request, name: str) -> list[str] | None:
    """A comma-separated filter value, or None when the filter is absent."""
    raw = req.param(name)
    if raw is None:
        return None
    return [value for value in raw.split(",") if value != ""]


def parse_page(
    req: Request, allowed: list[str], *, orders: tuple[str, ...] = ("created_at", "updated_at")
) -> Page:
    """Check the query (400 on unknown parameters) and read page, per_page and order_by."""
    check_query(req, allowed)
    page = _int_param(req, "page", 1)
    if page < 1:
        raise bad_query("Page must be greater than 0")
    per_page = _int_param(req, "per_page", _DEFAULT_PER_PAGE)
    if not 1 <= per_page <= _MAX_PER_PAGE:
        raise bad_query(f"Per page must be between 1 and {_MAX_PER_PAGE}")
    order = req.param("order_by") or "created_at"
    descending = order.startswith("-")
    field = order.lstrip("+-")
    if field not in orders:
        raise bad_query("Order by can only be: " + ", ".join(f"'{o}'" for o in orders))
    return Page(page, per_page, field, descending)


def _int_param(req: Request, name: str, default: int) -> int:
    raw = req.param(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_query(f"{name.replace('_', ' ').capitalize()} must be an integer") from None


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


def common_filters(req: Request, items: Iterable[Resource]) -> list[Resource]:
    """Apply `guids` and `label_selector`, which every list endpoint here accepts."""
    guids = csv(req, "guids")
    selector = req.param("label_selector")
    return [
        item
        for item in items
        if (guids is None or item.guid in guids) and match_labels(selector, item.labels)
    ]


def paginate(
    req: Request,
    page: Page,
    items: Iterable[Any],
    present: Callable[[Any], dict[str, Any]],
    *,
    included: dict[str, list[dict[str, Any]]] | None = None,
) -> Response:
    """Order, slice and wrap `items` in the pagination envelope."""
    ordered = sorted(
        items, key=lambda r: (getattr(r, page.order_by), r.seq), reverse=page.descending
    )
    total = len(ordered)
    pages = max((total + page.per_page - 1) // page.per_page, 1)
    start = (page.page - 1) * page.per_page
    chunk = ordered[start : start + page.per_page]
    body: dict[str, Any] = {
        "pagination": {
            "total_results": total,
            "total_pages": pages,
            "first": {"href": _href(req, 1, page.per_page)},
            "last": {"href": _href(req, pages, page.per_page)},
            "next": {"href": _href(req, page.page + 1, page.per_page)}
            if page.page < pages
            else None,
            "previous": {"href": _href(req, page.page - 1, page.per_page)}
            if page.page > 1
            else None,
        },
        "resources": [present(item) for item in chunk],
    }
    if included is not None:
        body["included"] = included
    return Response(200, body)


def _href(req: Request, number: int, per_page: int) -> str:
    kept = [
        f"{key}={quote(value, safe=',')}"
        for key, values in req.query.items()
        if key not in ("page", "per_page")
        for value in values
    ]
    query = "&".join([*kept, f"page={number}", f"per_page={per_page}"])
    return f"{req.base_url}{req.path}?{query}"
