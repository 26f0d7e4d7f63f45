"""Lookups: organizations, spaces, service instances, plans and offerings.

Name filters are plain `where(name: names)` in cloud_controller_ng's fetchers
(`app/fetchers/org_list_fetcher.rb`, `space_list_fetcher.rb`,
`service_instance_list_fetcher.rb`, ...); case comes from the column types: org, space, app,
plan names and offering labels are `case_insensitive` (`db/migrations/
20130131184954_new_initial_schema.rb`, `20141210194308_add_name_col_v3_apps.rb`, kept
case-insensitive on MySQL by `20150514190458_fix_mysql_collations.rb`), service instance
names became a plain `varchar(50)` (`20130712215250_limit_service_instance_name_to_50_chars.rb`)
and compare case-sensitively. The accepted query parameters are CC's message classes'
(`app/messages/*_list_message.rb`, see `listing.py`).
"""

from __future__ import annotations

from typing import Any

from . import included, present
from .context import Ctx
from .listing import list_spec, parse, show_spec
from .paging import list_response, names_match
from .state import ServiceInstance
from .web import Request, Response, Router

_NAMED = ("created_at", "updated_at", "name")
# service_instances_list_message.rb / service_instance_show_message.rb
_INSTANCE_LIST_FIELDS = {
    "space": ("guid", "name", "relationships.organization"),
    "space.organization": ("name", "guid"),
    "service_plan": ("guid", "name", "relationships.service_offering"),
    "service_plan.service_offering": (
        "name",
        "guid",
        "description",
        "documentation_url",
        "tags",
        "relationships.service_broker",
    ),
    "service_plan.service_offering.service_broker": ("name", "guid"),
}
_INSTANCE_SHOW_FIELDS = {
    "space": ("name", "guid"),
    "space.organization": ("name", "guid"),
    "service_plan": ("name", "guid"),
    "service_plan.service_offering": ("name", "guid", "description", "tags", "documentation_url"),
    "service_plan.service_offering.service_broker": ("name", "guid"),
}
ORGS = list_spec("names", "isolation_segment_guid", orders=_NAMED)  # orgs_list_message.rb
SPACES = list_spec(  # spaces_list_message.rb
    "names", "organization_guids", "include", orders=_NAMED, includes=("org", "organization")
)
SPACE_SHOW = show_spec("include", includes=("org", "organization"))  # space_show_message.rb
INSTANCES = list_spec(  # service_instances_list_message.rb (single keys registered first)
    "type",
    "fields",
    "names",
    "space_guids",
    "organization_guids",
    "service_plan_guids",
    "service_plan_names",
    orders=_NAMED,
    fields=_INSTANCE_LIST_FIELDS,
    enums={"type": (("managed", "user-provided"), "must be one of 'managed', 'user-provided'")},
)
INSTANCE_SHOW = show_spec("fields", fields=_INSTANCE_SHOW_FIELDS)
PLAN_SHOW = show_spec(  # service_plans_show_message.rb (accepted, not expanded)
    "fields",
    "include",
    includes=("space.organization", "service_offering"),
    fields={"service_offering.service_broker": ("guid", "name")},
)
OFFERING_SHOW = show_spec(  # service_offerings_show_message.rb (accepted, not expanded)
    "fields", fields={"service_broker": ("guid", "name")}
)
PLANS = list_spec(  # service_plans_list_message.rb
    "available",
    "fields",
    "broker_catalog_ids",
    "names",
    "organization_guids",
    "service_broker_guids",
    "service_broker_names",
    "service_instance_guids",
    "service_offering_guids",
    "service_offering_names",
    "space_guids",
    "include",
    orders=_NAMED,
    includes=("space.organization", "service_offering"),
    fields={"service_offering.service_broker": ("guid", "name")},
    enums={"available": (("true", "false"), "must be 'true' or 'false'")},
)
OFFERINGS = list_spec(  # service_offerings_list_message.rb
    "available",
    "fields",
    "broker_catalog_ids",
    "service_broker_guids",
    "service_broker_names",
    "names",
    "space_guids",
    "organization_guids",
    orders=_NAMED,
    fields={"service_broker": ("guid", "name")},
    enums={"available": (("true", "false"), "must be 'true' or 'false'")},
)


def _order_name(item: Any, field: str) -> Any:
    return getattr(item, "label" if field == "name" and hasattr(item, "label") else field)


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
        show(
            router,
            "/v3/spaces",
            store.spaces,
            "Space",
            present.space,
            spec=SPACE_SHOW,
            decorate=lambda s, q, base: included.for_spaces(store, [s], q.includes, base),
        )
        show(
            router,
            "/v3/service_instances",
            store.instances,
            "Service instance",
            present.service_instance,
            spec=INSTANCE_SHOW,
            decorate=lambda si, q, base: included.for_instance_fields(store, [si], q.fields),
        )
        show(router, "/v3/service_plans", store.plans, "Service plan", present.plan, spec=PLAN_SHOW)
        show(
            router,
            "/v3/service_offerings",
            store.offerings,
            "Service offering",
            lambda o, base: present.offering(o, base, store.options.bindings_retrievable),
            spec=OFFERING_SHOW,
        )

    def orgs(self, req: Request) -> Response:
        """`GET /v3/organizations`."""
        query = parse(req, ORGS)
        names = query.many("names")
        with self.ctx.store.lock:
            return list_response(
                req,
                query,
                self.ctx.store.orgs.values(),
                lambda o: names_match(names, o.name, case_sensitive=False),
                lambda o: present.org(o, req.base_url),
            )

    def spaces(self, req: Request) -> Response:
        """`GET /v3/spaces` (`include=organization` fills `included.organizations`)."""
        query = parse(req, SPACES)
        names, orgs = query.many("names"), query.many("organization_guids")
        store = self.ctx.store
        with store.lock:
            resp = list_response(
                req,
                query,
                store.spaces.values(),
                lambda s: (
                    names_match(names, s.name, case_sensitive=False)
                    and (orgs is None or s.org_guid in orgs)
                ),
                lambda s: present.space(s, req.base_url),
            )
            shown = [store.spaces[r["guid"]] for r in resp.body["resources"]]
            extra = included.for_spaces(store, shown, query.includes, req.base_url)
            if extra:
                resp.body["included"] = extra
            return resp

    def instances(self, req: Request) -> Response:
        """`GET /v3/service_instances` (names are case-sensitive here; `fields[...]`)."""
        query = parse(req, INSTANCES)
        store = self.ctx.store
        names, spaces = query.many("names"), query.many("space_guids")
        orgs, kind = query.many("organization_guids"), query.single("type")
        plan_guids, plan_names = query.many("service_plan_guids"), query.many("service_plan_names")

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

        with store.lock:
            resp = list_response(
                req,
                query,
                store.instances.values(),
                keep,
                lambda si: present.service_instance(si, req.base_url),
            )
            shown = [store.instances[r["guid"]] for r in resp.body["resources"]]
            extra = included.for_instance_fields(store, shown, query.fields)
            if extra:
                resp.body["included"] = extra
            return resp

    def plans(self, req: Request) -> Response:
        """`GET /v3/service_plans` (`include` and `fields` accepted, not expanded)."""
        query = parse(req, PLANS)
        store = self.ctx.store
        names = query.many("names")
        offering_guids = query.many("service_offering_guids")
        offering_names = query.many("service_offering_names")
        instance_guids = query.many("service_instance_guids")
        with store.lock:
            plan_of_instance = {si.guid: si.plan_guid for si in store.instances.values()}
            return list_response(
                req,
                query,
                store.plans.values(),
                lambda p: (
                    names_match(names, p.name, case_sensitive=False)
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
        query = parse(req, OFFERINGS)
        names = query.many("names")
        with self.ctx.store.lock:
            return list_response(
                req,
                query,
                self.ctx.store.offerings.values(),
                lambda o: names_match(names, o.label, case_sensitive=False),
                lambda o: present.offering(
                    o, req.base_url, self.ctx.store.options.bindings_retrievable
                ),
                order_key=_order_name,
            )
