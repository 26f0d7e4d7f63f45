"""The JSON shapes of CC v3 resources (cloud_controller_ng `app/presenters/v3/app_presenter.rb`,
`deployment_presenter.rb`, `job_presenter.rb`, `service_credential_binding_presenter.rb`,
and the other `*_presenter.rb` there).

One function per resource, `base` being the API URL the links point to. Handlers never
build resource JSON themselves, so every endpoint shows a resource the same way.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .state import (
    App,
    Binding,
    Build,
    Deployment,
    Droplet,
    Job,
    Offering,
    Org,
    Package,
    Plan,
    Process,
    Resource,
    Revision,
    ServiceInstance,
    Space,
    Store,
    iso,
)

_STACK = "cflinuxfs4"
OFFERING_DESCRIPTION = "Process Integration Runtime"
BROKER_GUID = "sandbox-broker"


def _link(base: str, path: str, method: str | None = None) -> dict[str, str]:
    link = {"href": f"{base}{path}"}
    if method:
        link["method"] = method
    return link


def _rel(guid: str | None) -> dict[str, Any]:
    return {"data": {"guid": guid} if guid else None}


def _common(res: Resource) -> dict[str, Any]:
    return {"guid": res.guid, "created_at": iso(res.created_at), "updated_at": iso(res.updated_at)}


def metadata(res: Resource) -> dict[str, Any]:
    """`{"labels":{..},"annotations":{..}}`."""
    return {"labels": dict(res.labels), "annotations": dict(res.annotations)}


def org(o: Org, base: str) -> dict[str, Any]:
    """An organization."""
    path = f"/v3/organizations/{o.guid}"
    return {
        **_common(o),
        "name": o.name,
        "suspended": False,
        "relationships": {"quota": _rel("default-org-quota")},
        "metadata": metadata(o),
        "links": {
            "self": _link(base, path),
            "domains": _link(base, f"{path}/domains"),
            "default_domain": _link(base, f"{path}/domains/default"),
            "quota": _link(base, "/v3/organization_quotas/default-org-quota"),
        },
    }


def space(s: Space, base: str) -> dict[str, Any]:
    """A space."""
    path = f"/v3/spaces/{s.guid}"
    return {
        **_common(s),
        "name": s.name,
        "relationships": {"organization": _rel(s.org_guid), "quota": {"data": None}},
        "metadata": metadata(s),
        "links": {
            "self": _link(base, path),
            "features": _link(base, f"{path}/features"),
            "organization": _link(base, f"/v3/organizations/{s.org_guid}"),
            "apply_manifest": _link(base, f"{path}/actions/apply_manifest", "POST"),
        },
    }


def app(a: App, base: str) -> dict[str, Any]:
    """An app."""
    path = f"/v3/apps/{a.guid}"
    return {
        **_common(a),
        "name": a.name,
        "state": a.state,
        "lifecycle": {
            "type": "buildpack",
            "data": {"buildpacks": list(a.buildpacks), "stack": _STACK},
        },
        "relationships": {"space": _rel(a.space_guid), "current_droplet": _rel(a.droplet_guid)},
        "metadata": metadata(a),
        "links": {
            "self": _link(base, path),
            "environment_variables": _link(base, f"{path}/environment_variables"),
            "space": _link(base, f"/v3/spaces/{a.space_guid}"),
            "processes": _link(base, f"{path}/processes"),
            "packages": _link(base, f"{path}/packages"),
            "current_droplet": _link(base, f"{path}/droplets/current"),
            "droplets": _link(base, f"{path}/droplets"),
            "tasks": _link(base, f"{path}/tasks"),
            "start": _link(base, f"{path}/actions/start", "POST"),
            "stop": _link(base, f"{path}/actions/stop", "POST"),
            "clear_buildpack_cache": _link(base, f"{path}/actions/clear_buildpack_cache", "POST"),
            "revisions": _link(base, f"{path}/revisions"),
            "deployed_revisions": _link(base, f"{path}/revisions/deployed"),
            "features": _link(base, f"{path}/features"),
        },
    }


def offering(o: Offering, base: str, bindings_retrievable: bool) -> dict[str, Any]:
    """A service offering (`it-rt`); `bindings_retrievable` is the broker catalog's."""
    path = f"/v3/service_offerings/{o.guid}"
    return {
        **_common(o),
        "name": o.label,
        "description": OFFERING_DESCRIPTION,
        "available": True,
        "tags": [],
        "requires": [],
        "shareable": True,
        "documentation_url": None,
        "broker_catalog": {
            "id": o.guid,
            "metadata": {"displayName": "Process Integration Runtime"},
            "features": {
                "plan_updateable": True,
                "bindable": True,
                "instances_retrievable": True,
                "bindings_retrievable": bindings_retrievable,
                "allow_context_updates": False,
            },
        },
        "relationships": {"service_broker": _rel(BROKER_GUID)},
        "metadata": metadata(o),
        "links": {
            "self": _link(base, path),
            "service_plans": _link(base, f"/v3/service_plans?service_offering_guids={o.guid}"),
            "service_broker": _link(base, f"/v3/service_brokers/{BROKER_GUID}"),
        },
    }


def plan(p: Plan, base: str) -> dict[str, Any]:
    """A service plan."""
    path = f"/v3/service_plans/{p.guid}"
    return {
        **_common(p),
        "name": p.name,
        "description": f"{p.name} plan",
        "available": True,
        "visibility_type": "public",
        "free": False,
        "costs": [],
        "maintenance_info": {},
        "broker_catalog": {
            "id": p.guid,
            "metadata": {},
            "maximum_polling_duration": None,
            "features": {"bindable": p.bindable, "plan_updateable": True},
        },
        "relationships": {"service_offering": _rel(p.offering_guid)},
        "metadata": metadata(p),
        "links": {
            "self": _link(base, path),
            "service_offering": _link(base, f"/v3/service_offerings/{p.offering_guid}"),
            "visibility": _link(base, f"{path}/visibility"),
        },
    }


def service_instance(si: ServiceInstance, base: str) -> dict[str, Any]:
    """A managed or user-provided service instance."""
    path = f"/v3/service_instances/{si.guid}"
    links: dict[str, Any] = {
        "self": _link(base, path),
        "space": _link(base, f"/v3/spaces/{si.space_guid}"),
        "service_credential_bindings": _link(
            base, f"/v3/service_credential_bindings?service_instance_guids={si.guid}"
        ),
        "service_route_bindings": _link(
            base, f"/v3/service_route_bindings?service_instance_guids={si.guid}"
        ),
    }
    body: dict[str, Any] = {
        **_common(si),
        "name": si.name,
        "tags": list(si.tags),
        "last_operation": si.last_operation.to_api(),
        "metadata": metadata(si),
    }
    if si.managed:
        links["service_plan"] = _link(base, f"/v3/service_plans/{si.plan_guid}")
        links["parameters"] = _link(base, f"{path}/parameters")
        links["shared_spaces"] = _link(base, f"{path}/relationships/shared_spaces")
        body.update(
            type="managed",
            maintenance_info={},
            upgrade_available=False,
            dashboard_url=None,
            relationships={"space": _rel(si.space_guid), "service_plan": _rel(si.plan_guid)},
        )
    else:
        links["credentials"] = _link(base, f"{path}/credentials")
        body.update(
            type="user-provided",
            syslog_drain_url=None,
            route_service_url=None,
            relationships={"space": _rel(si.space_guid)},
        )
    body["links"] = links
    return body


def binding(b: Binding, base: str, store: Store) -> dict[str, Any]:
    """A service credential binding (app binding or service key)."""
    path = f"/v3/service_credential_bindings/{b.guid}"
    si = store.instances.get(b.service_instance_guid)
    links: dict[str, Any] = {
        "self": _link(base, path),
        "details": _link(base, f"{path}/details"),
        "service_instance": _link(base, f"/v3/service_instances/{b.service_instance_guid}"),
    }
    if si is None or si.managed:
        links["parameters"] = _link(base, f"{path}/parameters")
    relationships: dict[str, Any] = {"service_instance": _rel(b.service_instance_guid)}
    if b.type == "app":
        links["app"] = _link(base, f"/v3/apps/{b.app_guid}")
        relationships = {"app": _rel(b.app_guid), **relationships}
    return {
        **_common(b),
        "name": b.name,
        "type": b.type,
        "last_operation": b.last_operation.to_api(),
        "metadata": metadata(b),
        "relationships": relationships,
        "links": links,
    }


def job(j: Job, base: str, resource_exists: bool) -> dict[str, Any]:
    """A job; the resource link is present only while the resource exists."""
    links: dict[str, Any] = {"self": _link(base, f"/v3/jobs/{j.guid}")}
    if resource_exists and j.resource_guid:
        links[j.resource_type] = _link(base, f"/v3/{j.resource_type}s/{j.resource_guid}")
    return {
        **_common(j),
        "operation": j.operation,
        "state": j.state,
        "errors": list(j.errors),
        "warnings": list(j.warnings),
        "links": links,
    }


def _checksum(guid: str) -> dict[str, str]:
    return {"type": "sha256", "value": hashlib.sha256(guid.encode()).hexdigest()}


def package(p: Package, base: str) -> dict[str, Any]:
    """A package."""
    path = f"/v3/packages/{p.guid}"
    return {
        **_common(p),
        "type": p.type,
        "data": {"checksum": _checksum(p.guid), "error": None},
        "state": p.state,
        "relationships": {"app": _rel(p.app_guid)},
        "metadata": metadata(p),
        "links": {
            "self": _link(base, path),
            "upload": _link(base, f"{path}/upload", "POST"),
            "download": _link(base, f"{path}/download", "GET"),
            "app": _link(base, f"/v3/apps/{p.app_guid}"),
        },
    }


def droplet(d: Droplet, base: str) -> dict[str, Any]:
    """A droplet."""
    path = f"/v3/droplets/{d.guid}"
    return {
        **_common(d),
        "state": d.state,
        "error": None,
        "lifecycle": {"type": "buildpack", "data": {}},
        "execution_metadata": "",
        "process_types": {"web": "npm start"},
        "checksum": _checksum(d.guid),
        "buildpacks": [
            {
                "name": "nodejs_buildpack",
                "detect_output": "nodejs",
                "buildpack_name": "nodejs",
                "version": "1.8.0",
            }
        ],
        "stack": _STACK,
        "image": None,
        "relationships": {"app": _rel(d.app_guid)},
        "metadata": metadata(d),
        "links": {
            "self": _link(base, path),
            "package": _link(base, f"/v3/packages/{d.package_guid}"),
            "app": _link(base, f"/v3/apps/{d.app_guid}"),
            "assign_current_droplet": _link(
                base, f"/v3/apps/{d.app_guid}/relationships/current_droplet", "PATCH"
            ),
            "download": _link(base, f"{path}/download"),
        },
    }


def build(b: Build, base: str) -> dict[str, Any]:
    """A build."""
    return {
        **_common(b),
        "created_by": {"guid": "sandbox-user", "name": "sandbox", "email": "sandbox"},
        "state": b.state,
        "staging_memory_in_mb": 1024,
        "staging_disk_in_mb": 1024,
        "staging_log_rate_limit_bytes_per_second": -1,
        "error": b.error,
        "lifecycle": {
            "type": "buildpack",
            "data": {"buildpacks": ["nodejs_buildpack"], "stack": _STACK},
        },
        "package": {"guid": b.package_guid},
        "droplet": {"guid": b.droplet_guid} if b.droplet_guid else None,
        "relationships": {"app": _rel(b.app_guid)},
        "metadata": metadata(b),
        "links": {
            "self": _link(base, f"/v3/builds/{b.guid}"),
            "app": _link(base, f"/v3/apps/{b.app_guid}"),
        },
    }


def revision(r: Revision, base: str) -> dict[str, Any]:
    """A revision."""
    path = f"/v3/revisions/{r.guid}"
    return {
        **_common(r),
        "version": r.version,
        "droplet": {"guid": r.droplet_guid},
        "processes": {"web": {"command": None}},
        "sidecars": [],
        "description": r.description,
        "deployable": True,
        "relationships": {"app": _rel(r.app_guid)},
        "metadata": metadata(r),
        "links": {
            "self": _link(base, path),
            "app": _link(base, f"/v3/apps/{r.app_guid}"),
            "environment_variables": _link(base, f"{path}/environment_variables"),
        },
    }


def process(p: Process, base: str, space_guid: str) -> dict[str, Any]:
    """A process."""
    path = f"/v3/processes/{p.guid}"
    return {
        **_common(p),
        "type": p.type,
        "command": "[PRIVATE DATA HIDDEN IN LISTS]",
        "instances": p.instances,
        "memory_in_mb": 256,
        "disk_in_mb": 1024,
        "log_rate_limit_in_bytes_per_second": -1,
        "health_check": {"type": "port", "data": {"timeout": None, "invocation_timeout": None}},
        "readiness_health_check": {"type": "process", "data": {"invocation_timeout": None}},
        "relationships": {"app": _rel(p.app_guid), "revision": _rel(p.revision_guid)},
        "metadata": metadata(p),
        "version": p.guid[:8],
        "links": {
            "self": _link(base, path),
            "scale": _link(base, f"{path}/actions/scale", "POST"),
            "app": _link(base, f"/v3/apps/{p.app_guid}"),
            "space": _link(base, f"/v3/spaces/{space_guid}"),
            "stats": _link(base, f"{path}/stats"),
        },
    }


def deployment(d: Deployment, base: str) -> dict[str, Any]:
    """A deployment (CC `app/presenters/v3/deployment_presenter.rb`)."""
    path = f"/v3/deployments/{d.guid}"
    details: dict[str, Any] = {
        "last_successful_healthcheck": iso(d.last_healthcheck),
        "last_status_change": iso(d.last_status_change),
    }
    if d.error:
        details["error"] = d.error
    return {
        **_common(d),
        "status": {"value": d.value, "reason": d.reason, "details": details},
        "strategy": d.strategy,
        "options": {"max_in_flight": d.max_in_flight},
        "droplet": {"guid": d.droplet_guid},
        "previous_droplet": {"guid": d.previous_droplet_guid},
        "new_processes": [{"guid": d.new_process_guid, "type": "web"}]
        if d.new_process_guid
        else [],
        "revision": {"guid": d.revision_guid, "version": d.revision_version}
        if d.revision_guid
        else None,
        "relationships": {"app": _rel(d.app_guid)},
        "metadata": metadata(d),
        "links": _deployment_links(d, base, path),
    }


def _deployment_links(d: Deployment, base: str, path: str) -> dict[str, Any]:
    """`cancel` only while cancelable (any ACTIVE state, CANCELING included), `continue`
    only while PAUSED (CC `deployment_presenter.rb`, `deployment_model.rb`)."""
    links = {"self": _link(base, path), "app": _link(base, f"/v3/apps/{d.app_guid}")}
    if d.value == "ACTIVE":
        links["cancel"] = _link(base, f"{path}/actions/cancel", "POST")
    if d.reason == "PAUSED":
        links["continue"] = _link(base, f"{path}/actions/continue", "POST")
    return links
