"""What an app's containers see: VCAP_SERVICES, VCAP_APPLICATION and the `/env` document.

cloud_controller_ng puts only the newest *succeeded* binding per service instance into
VCAP_SERVICES (`app/models/services/service_binding.rb#active_per_instance`, partitioned
by instance, ordered by created_at desc then id desc), although the bindings list shows all of them.
Each entry is `app/presenters/system_environment/service_binding_presenter.rb` merged over
`service_instance_presenter.rb` (binding keys first; `name` is the binding's name or else
the instance's). `/v3/apps/:guid/env` is `app/presenters/v3/app_env_presenter.rb`: its
VCAP_APPLICATION comes from `lib/vcap/vars_builder.rb` for the *app*, so `limits` holds
only `fds` (the operator's `instance_file_descriptor_limit`), and there is no `version`.
"""

from __future__ import annotations

from typing import Any

from .state import App, Binding, Store


def active_bindings(store: Store, app_guid: str) -> list[Binding]:
    """The newest succeeded app binding per service instance."""
    newest: dict[str, Binding] = {}
    for b in store.bindings.values():
        if b.type != "app" or b.app_guid != app_guid or not b.is_("create", "succeeded"):
            continue
        current = newest.get(b.service_instance_guid)
        if current is None or (b.created_at, b.seq) > (current.created_at, current.seq):
            newest[b.service_instance_guid] = b
    return sorted(newest.values(), key=lambda b: b.seq)


def vcap_services(store: Store, app_guid: str) -> dict[str, list[dict[str, Any]]]:
    """VCAP_SERVICES as a new container of the app would get it now."""
    services: dict[str, list[dict[str, Any]]] = {}
    for b in active_bindings(store, app_guid):
        si = store.instances.get(b.service_instance_guid)
        if si is None:
            continue
        plan = store.plan_of(si)
        offering = store.offering_of(si)
        entry: dict[str, Any] = {
            "name": b.name or si.name,
            "instance_guid": si.guid,
            "instance_name": si.name,
            "binding_guid": b.guid,
            "binding_name": b.name,
            "credentials": b.credentials if si.managed else dict(si.credentials),
            "syslog_drain_url": None,
            "volume_mounts": [],
        }
        if si.managed:
            entry.update(
                label=offering.label if offering else None,
                provider=None,
                plan=plan.name if plan else None,
                tags=list(si.tags),
            )
        else:
            entry.update(label="user-provided", tags=list(si.tags))
        services.setdefault(str(entry["label"]), []).append(entry)
    return services


def vcap_application(store: Store, app: App, api_url: str) -> dict[str, Any]:
    """VCAP_APPLICATION as `/env` shows it (VarsBuilder for the app, not a process)."""
    space = store.spaces[app.space_guid]
    org = store.orgs[space.org_guid]
    return {
        "cf_api": api_url,
        "limits": {"fds": store.options.instance_file_descriptor_limit},
        "application_name": app.name,
        "application_uris": [],
        "name": app.name,
        "space_name": space.name,
        "space_id": space.guid,
        "organization_id": org.guid,
        "organization_name": org.name,
        "uris": [],
        "users": None,
        "application_id": app.guid,
    }


def env_document(store: Store, app: App, api_url: str) -> dict[str, Any]:
    """`GET /v3/apps/:guid/env`: what a *new* container would get."""
    return {
        "environment_variables": dict(app.env_vars),
        "staging_env_json": {},
        "running_env_json": {},
        "system_env_json": {"VCAP_SERVICES": vcap_services(store, app.guid)},
        "application_env_json": {"VCAP_APPLICATION": vcap_application(store, app, api_url)},
    }
