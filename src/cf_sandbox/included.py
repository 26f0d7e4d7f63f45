"""The `included` block: `include=` and `fields[...]=` as CC's decorators fill it.

Sources (cloud_controller_ng `app/decorators/`): `include_space_decorator.rb` and
`include_organization_decorator.rb` (apps: `space`, `org`, `space.organization`, full
resources ordered by created_at), `include_space_organization_decorator.rb` (spaces:
`org`/`organization`), `include_binding_app_decorator.rb` and
`include_binding_service_instance_decorator.rb` (bindings), and the
`field_service_instance_*_decorator.rb` files (service instances: only the asked keys;
plans, offerings and brokers only of managed instances). A decorator adds its key only
when it matches, so `included` is absent when nothing was asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import present
from .state import App, Binding, Org, ServiceInstance, Space, Store

BROKER_NAME = "sap-it-rt-broker"


def _ordered(resources: Iterable[Any]) -> list[Any]:
    unique = {r.guid: r for r in resources}
    return sorted(unique.values(), key=lambda r: (r.created_at, r.guid))


def for_apps(store: Store, apps: list[App], includes: list[str], base: str) -> dict[str, Any]:
    """`GET /v3/apps[/:guid]?include=space|org|space.organization`."""
    included: dict[str, Any] = {}
    spaces = [store.spaces[a.space_guid] for a in apps if a.space_guid in store.spaces]
    if {"space", "space.organization"} & set(includes):
        included["spaces"] = [present.space(s, base) for s in _ordered(spaces)]
    if {"org", "space.organization"} & set(includes):
        orgs = [store.orgs[s.org_guid] for s in spaces if s.org_guid in store.orgs]
        included["organizations"] = [present.org(o, base) for o in _ordered(orgs)]
    return included


def for_spaces(store: Store, spaces: list[Space], includes: list[str], base: str) -> dict[str, Any]:
    """`GET /v3/spaces[/:guid]?include=org|organization`."""
    if not {"org", "organization"} & set(includes):
        return {}
    orgs: list[Org] = [store.orgs[s.org_guid] for s in spaces if s.org_guid in store.orgs]
    return {"organizations": [present.org(o, base) for o in _ordered(orgs)]}


def for_bindings(
    store: Store, bindings: list[Binding], includes: list[str], base: str
) -> dict[str, Any]:
    """`GET /v3/service_credential_bindings[/:guid]?include=app,service_instance`."""
    included: dict[str, Any] = {}
    if "app" in includes:
        apps = [store.apps[b.app_guid] for b in bindings if b.app_guid in store.apps]
        included["apps"] = [present.app(a, base) for a in _ordered(apps)]
    if "service_instance" in includes:
        instances = [
            store.instances[b.service_instance_guid]
            for b in bindings
            if b.service_instance_guid in store.instances
        ]
        included["service_instances"] = [
            present.service_instance(si, base) for si in _ordered(instances)
        ]
    return included


def _pick(fields: list[str], values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key in fields}


def _rel(name: str, guid: str) -> dict[str, Any]:
    return {"relationships": {name: {"data": {"guid": guid}}}}


def _pick_related(
    fields: list[str], values: dict[str, Any], relation: str, guid: str
) -> dict[str, Any]:
    """`_pick`, and the one relationship a resource has when `relationships.<relation>` is
    among the fields asked for."""
    related = _rel(relation, guid) if f"relationships.{relation}" in fields else {}
    return {**_pick(fields, values), **related}


def for_instance_fields(
    store: Store, instances: list[ServiceInstance], fields: dict[str, list[str]]
) -> dict[str, Any]:
    """`fields[space|space.organization|service_plan|...]` on service instances."""
    included: dict[str, Any] = {}
    spaces = _ordered(store.spaces[si.space_guid] for si in instances)
    if "space" in fields:
        wanted = fields["space"]
        included["spaces"] = [
            _pick_related(wanted, {"guid": s.guid, "name": s.name}, "organization", s.org_guid)
            for s in spaces
        ]
    if "space.organization" in fields:
        orgs = _ordered(store.orgs[s.org_guid] for s in spaces)
        wanted = fields["space.organization"]
        included["organizations"] = [_pick(wanted, {"guid": o.guid, "name": o.name}) for o in orgs]
    managed = [si for si in instances if si.managed]
    if not managed:
        return included
    plans = _ordered(p for si in managed if (p := store.plan_of(si)) is not None)
    if "service_plan" in fields:
        wanted = fields["service_plan"]
        included["service_plans"] = [
            _pick_related(
                wanted, {"guid": p.guid, "name": p.name}, "service_offering", p.offering_guid
            )
            for p in plans
        ]
    if "service_plan.service_offering" in fields:
        wanted = fields["service_plan.service_offering"]
        offerings = _ordered(store.offerings[p.offering_guid] for p in plans)
        included["service_offerings"] = [
            _pick_related(
                wanted,
                {
                    "name": o.label,
                    "guid": o.guid,
                    "description": present.OFFERING_DESCRIPTION,
                    "tags": [],
                    "documentation_url": None,
                },
                "service_broker",
                present.BROKER_GUID,
            )
            for o in offerings
        ]
    if "service_plan.service_offering.service_broker" in fields:
        wanted = fields["service_plan.service_offering.service_broker"]
        included["service_brokers"] = [
            _pick(wanted, {"name": BROKER_NAME, "guid": present.BROKER_GUID})
        ]
    return included
