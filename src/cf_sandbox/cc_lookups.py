"""Lookups: organizations, spaces, service instances, plans and offerings.

Name filters follow CC (reference section 2): org, space (and app) names match
case-insensitively, service instance names case-sensitively.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import present
from .context import Ctx
from .paging import PAGING_PARAMS, common_filters, csv, paginate, parse_page
from .state import Resource, ServiceInstance, iso
from .web import Request, Response, Router

_COMMON = [*PAGING_PARAMS, "guids", "label_selector", "created_ats", "updated_ats"]
_NAMED = ("created_at", "updated_at", "name")


def names_match(wanted: list[str] | None, name: str, *, case_sensitive: bool) -> bool:
    """CC's `names=` filter."""
    if wanted is None:
        return True
    if case_sensitive:
        return name in wanted
    return name.lower() in {w.lower() for w in wanted}


def timestamps_match(req: Request, item: Resource) -> bool:
    """`created_ats=`/`updated_ats=` with exact timestamps."""
    for param, value in (("created_ats", item.created_at), ("updated_ats", item.updated_at)):
        wanted = csv(req, param)
        if wanted is not None and (iso(value) or "") not in wanted:
            return False
    return True


def list_response(
    req: Request,
    allowed: list[str],
    items: Iterable[Any],
    keep: Callable[[Any], bool],
    show: Callable[[Any], dict[str, Any]],
    *,
    orders: tuple[str, ...] = _NAMED,
) -> Response:
    """Validate, filter (common filters + `keep`), order and paginate."""
    page = parse_page(req, allowed, orders=orders)
    found = [i for i in common_filters(req, items) if keep(i) and timestamps_match(req, i)]
    return paginate(req, page, found, show)


def app_scoped_list(
    req: Request,
    items: Iterable[Any],
    filters: dict[str, str],
    show: Callable[[Any], dict[str, Any]],
    *,
    app_guids: list[str] | None = None,
    extra: tuple[str, ...] = (),
) -> Response:
    """A list of app-owned resources filtered by `param -> attribute` value lists.

    `app_guids` given: the `/v3/apps/:guid/<things>` form (no `app_guids` parameter).
    """
    wanted = {attr: csv(req, param) for param, attr in filters.items()}
    allowed = [*_COMMON, *filters, *extra]
    if app_guids is None:
        allowed.append("app_guids")
        app_guids = csv(req, "app_guids")

    def keep(item: Any) -> bool:
        return (app_guids is None or item.app_guid in app_guids) and all(
            values is None or getattr(item, attr) in values for attr, values in wanted.items()
        )

    return list_response(req, allowed, items, keep, show, orders=("created_at", "updated_at"))


class LookupRoutes:
    """Read-only lookups the rotation needs before it changes anything."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        """Add the routes."""
        store, show = self.ctx.store, self.ctx.add_show
        router.add("GET", "/v3/organizations", self.orgs)
        router.add("GET", "/v3/spaces", self.spaces)
        router.add("GET", "/v3/service_instances", self.instances)
        router.add("GET", "/v3/service_plans", self.plans)
        router.add("GET", "/v3/service_offerings", self.offerings)
        show(router, "/v3/organizations", store.orgs, "Organization", present.org)
        show(router, "/v3/spaces", store.spaces, "Space", present.space, query=["include"])
        show(
            router,
            "/v3/service_instances",
            store.instances,
            "Service instance",
            present.service_instance,
            query=["fields"],
        )
        show(
            router,
            "/v3/service_plans",
            store.plans,
            "Service plan",
            present.plan,
            query=["include"],
        )
        show(
            router,
            "/v3/service_offerings",
            store.offerings,
            "Service offering",
            present.offering,
            query=["fields"],
        )

    def orgs(self, req: Request) -> Response:
        """`GET /v3/organizations`."""
        names = csv(req, "names")
        with self.ctx.store.lock:
            return list_response(
                req,
                [*_COMMON, "names"],
                self.ctx.store.orgs.values(),
                lambda o: names_match(names, o.name, case_sensitive=False),
                lambda o: present.org(o, req.base_url),
            )

    def spaces(self, req: Request) -> Response:
        """`GET /v3/spaces`."""
        names = csv(req, "names")
        orgs = csv(req, "organization_guids")
        with self.ctx.store.lock:
            return list_response(
                req,
                [*_COMMON, "names", "organization_guids", "include"],
                self.ctx.store.spaces.values(),
                lambda s: (
                    names_match(names, s.name, case_sensitive=False)
                    and (orgs is None or s.org_guid in orgs)
                ),
                lambda s: present.space(s, req.base_url),
            )

    def instances(self, req: Request) -> Response:
        """`GET /v3/service_instances` (names are case-sensitive here)."""
        store = self.ctx.store
        names = csv(req, "names")
        spaces = csv(req, "space_guids")
        orgs = csv(req, "organization_guids")
        kind = req.param("type")
        plan_guids = csv(req, "service_plan_guids")
        plan_names = csv(req, "service_plan_names")

        def keep(si: ServiceInstance) -> bool:
            plan = store.plan_of(si)
            space = store.spaces.get(si.space_guid)
            return (
                names_match(names, si.name, case_sensitive=True)
                and (spaces is None or si.space_guid in spaces)
                and (orgs is None or (space is not None and space.org_guid in orgs))
                and (kind is None or kind == ("managed" if si.managed else "user-provided"))
                and (plan_guids is None or (plan is not None and plan.guid in plan_guids))
                and (plan_names is None or (plan is not None and plan.name in plan_names))
            )

        allowed = [
            *_COMMON,
            "names",
            "space_guids",
            "organization_guids",
            "type",
            "service_plan_guids",
            "service_plan_names",
            "fields",
        ]
        with store.lock:
            return list_response(
                req,
                allowed,
                store.instances.values(),
                keep,
                lambda si: present.service_instance(si, req.base_url),
            )

    def plans(self, req: Request) -> Response:
        """`GET /v3/service_plans`."""
        store = self.ctx.store
        names = csv(req, "names")
        offering_guids = csv(req, "service_offering_guids")
        offering_names = csv(req, "service_offering_names")
        instance_guids = csv(req, "service_instance_guids")
        with store.lock:
            plan_of_instance = {si.guid: si.plan_guid for si in store.instances.values()}
            return list_response(
                req,
                [
                    *_COMMON,
                    "names",
                    "service_offering_guids",
                    "service_offering_names",
                    "service_instance_guids",
                    "available",
                    "include",
                ],
                store.plans.values(),
                lambda p: (
                    names_match(names, p.name, case_sensitive=True)
                    and (offering_guids is None or p.offering_guid in offering_guids)
                    and (
                        offering_names is None
                        or store.offerings[p.offering_guid].label in offering_names
                    )
                    and (
                        instance_guids is None
                        or any(plan_of_instance.get(g) == p.guid for g in instance_guids)
                    )
                ),
                lambda p: present.plan(p, req.base_url),
            )

    def offerings(self, req: Request) -> Response:
        """`GET /v3/service_offerings`."""
        names = csv(req, "names")
        with self.ctx.store.lock:
            return list_response(
                req,
                [
                    *_COMMON,
                    "names",
                    "available",
                    "service_broker_guids",
                    "service_broker_names",
                    "space_guids",
                    "organization_guids",
                    "fields",
                ],
                self.ctx.store.offerings.values(),
                lambda o: names_match(names, o.label, case_sensitive=True),
                lambda o: present.offering(o, req.base_url),
            )
