"""Service credential bindings: list, show, create (202 + job), delete, details, parameters.

The create rules and their 422 texts are CC's (`service_credential_bindings_controller.rb`,
`service_credential_binding_app_create.rb`, reference section 3): `strategy` exists only
from CC 3.205.0; `single` (the default) allows one binding per app and instance,
`multiple` up to the operator limit, checked in CC's order under the app's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import present
from .cc_lookups import list_response, names_match
from .context import Ctx, include_values
from .paging import PAGING_PARAMS, csv
from .state import App, Binding, LastOperation, ServiceInstance
from .validate import apply_metadata
from .web import (
    GUID,
    ApiError,
    Request,
    Response,
    Router,
    check_fields,
    check_query,
    resource_not_found,
    unprocessable,
)

_LIST_PARAMS = [
    *PAGING_PARAMS,
    "created_ats",
    "updated_ats",
    "guids",
    "names",
    "service_instance_guids",
    "service_instance_names",
    "service_plan_names",
    "service_plan_guids",
    "service_offering_names",
    "service_offering_guids",
    "app_guids",
    "app_names",
    "include",
    "type",
    "label_selector",
]
_INCLUDES = ("app", "service_instance")


def _binding_not_found() -> ApiError:
    return resource_not_found("Service credential binding not found")


@dataclass(frozen=True)
class _CreateMessage:
    """A binding create body that passed CC's message validation."""

    kind: str
    name: str | None
    strategy: str
    parameters: dict[str, Any] | None
    si_guid: str
    app_guid: str | None

    @classmethod
    def parse(cls, body: dict[str, Any], *, supports_strategy: bool) -> _CreateMessage:
        """Validate field names and types (422s) before anything is looked up."""
        kind = body.get("type")
        allowed = {"type", "name", "relationships", "parameters", "metadata"}
        if kind == "app" and supports_strategy:
            allowed.add("strategy")
        check_fields(body, allowed)
        if kind not in ("app", "key"):
            raise unprocessable("Type must be 'app' or 'key'")
        strategy = body.get("strategy", "single")
        if strategy not in ("single", "multiple"):
            raise unprocessable("Strategy must be 'single' or 'multiple'")
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise unprocessable("Name must be a string")
        if kind == "key" and not name:
            raise unprocessable("Name can't be blank")
        parameters = body.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise unprocessable("Parameters must be an object")
        si_guid = _relationship(body, "service_instance")
        if si_guid is None:
            raise unprocessable("Relationships Service instance can't be blank")
        app_guid = _relationship(body, "app")
        if kind == "app" and app_guid is None:
            raise unprocessable("Relationships App can't be blank")
        return cls(kind, name, strategy, parameters, si_guid, app_guid)


def _relationship(body: dict[str, Any], name: str) -> str | None:
    rel = (body.get("relationships") or {}).get(name)
    data = rel.get("data") if isinstance(rel, dict) else None
    guid = data.get("guid") if isinstance(data, dict) else None
    return guid if isinstance(guid, str) else None


class BindingRoutes:
    """Everything under /v3/service_credential_bindings."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        """Add the routes."""
        base = "/v3/service_credential_bindings"
        router.add("GET", base, self.list)
        router.add("POST", base, self.create)
        router.add("GET", f"{base}/{GUID}", self.show)
        router.add("PATCH", f"{base}/{GUID}", self.update)
        router.add("DELETE", f"{base}/{GUID}", self.delete)
        router.add("GET", f"{base}/{GUID}/details", self.details)
        router.add("GET", f"{base}/{GUID}/parameters", self.parameters)

    # -- reading ------------------------------------------------------------------

    def _included(
        self, bindings: list[Binding], includes: list[str], base: str
    ) -> dict[str, list[dict[str, Any]]] | None:
        if not includes:
            return None
        store = self.ctx.store
        included: dict[str, list[dict[str, Any]]] = {}
        if "app" in includes:
            guids = dict.fromkeys(b.app_guid for b in bindings if b.app_guid)
            included["apps"] = [present.app(store.apps[g], base) for g in guids if g in store.apps]
        if "service_instance" in includes:
            guids = dict.fromkeys(b.service_instance_guid for b in bindings)
            included["service_instances"] = [
                present.service_instance(store.instances[g], base)
                for g in guids
                if g in store.instances
            ]
        return included

    def list(self, req: Request) -> Response:
        """`GET /v3/service_credential_bindings` (default order: created_at ascending)."""
        store = self.ctx.store
        f = {name: csv(req, name) for name in _LIST_PARAMS}
        kind = req.param("type")
        includes = include_values(req, _INCLUDES)

        def keep(b: Binding) -> bool:
            si = store.instances.get(b.service_instance_guid)
            app = store.apps.get(b.app_guid or "")
            plan = store.plan_of(si) if si else None
            offering = store.offering_of(si) if si else None
            checks = (
                (f["names"], b.name),
                (f["service_instance_guids"], b.service_instance_guid),
                (f["service_instance_names"], si.name if si else None),
                (f["app_guids"], b.app_guid),
                (f["app_names"], app.name if app else None),
                (f["service_plan_guids"], plan.guid if plan else None),
                (f["service_plan_names"], plan.name if plan else None),
                (f["service_offering_guids"], offering.guid if offering else None),
                (f["service_offering_names"], offering.label if offering else None),
            )
            return (kind is None or b.type == kind) and all(
                wanted is None or value in wanted for wanted, value in checks
            )

        with store.lock:
            resp = list_response(
                req,
                _LIST_PARAMS,
                store.bindings.values(),
                keep,
                lambda b: present.binding(b, req.base_url, store),
            )
            if includes:
                shown = [store.bindings[r["guid"]] for r in resp.body["resources"]]
                resp.body["included"] = self._included(shown, includes, req.base_url)
            return resp

    def _get(self, guid: str) -> Binding:
        found = self.ctx.store.bindings.get(guid)
        if found is None:
            raise _binding_not_found()
        return found

    def show(self, req: Request, guid: str) -> Response:
        """`GET /v3/service_credential_bindings/:guid`."""
        check_query(req, ["include"])
        includes = include_values(req, _INCLUDES)
        with self.ctx.store.lock:
            found = self._get(guid)
            body = present.binding(found, req.base_url, self.ctx.store)
            included = self._included([found], includes, req.base_url)
            if included is not None:
                body["included"] = included
            return Response(200, body)

    def details(self, req: Request, guid: str) -> Response:
        """`GET .../details`: credentials once the create succeeded, 404 before."""
        with self.ctx.store.lock:
            found = self._get(guid)
            if not found.is_("create", "succeeded"):
                op = found.last_operation
                operation = "Creation" if op.type == "create" else "Deletion"
                kind = "key" if found.type == "key" else "binding"
                raise resource_not_found(f"{operation} of service {kind} {op.state}")
            si = self.ctx.store.instances[found.service_instance_guid]
            credentials = found.credentials if si.managed else dict(si.credentials)
            return Response(
                200, {"credentials": credentials, "syslog_drain_url": None, "volume_mounts": []}
            )

    def parameters(self, req: Request, guid: str) -> Response:
        """`GET .../parameters`: only if the broker has `bindings_retrievable` (it-rt has not)."""
        with self.ctx.store.lock:
            found = self._get(guid)
            si = self.ctx.store.instances[found.service_instance_guid]
            offering = self.ctx.store.offering_of(si)
            if not si.managed:
                raise ApiError(
                    400,
                    10000,
                    "CF-BadRequest",
                    "User provided service instances "
                    "do not support fetching service binding parameters.",
                )
            if offering is None or not offering.bindings_retrievable:
                raise ApiError(
                    502,
                    90007,
                    "CF-ServiceFetchBindingParametersNotSupported",
                    "This service does not support fetching service binding parameters.",
                )
            return Response(200, dict(found.parameters))

    def update(self, req: Request, guid: str) -> Response:
        """`PATCH .../:guid`: metadata only."""
        body = req.json_object()
        check_fields(body, {"metadata"})
        with self.ctx.store.lock:
            found = self._get(guid)
            if found.last_operation.type == "delete" and found.in_flight:
                raise unprocessable("The service binding is being deleted")
            apply_metadata(found, body)
            return Response(200, present.binding(found, req.base_url, self.ctx.store))

    # -- creating -----------------------------------------------------------------

    def create(self, req: Request) -> Response:
        """`POST /v3/service_credential_bindings`: managed -> 202 + job, UPSI -> 201."""
        body = req.json_object()
        store = self.ctx.store
        msg = _CreateMessage.parse(body, supports_strategy=store.options.supports_multiple)
        kind, name, si_guid, app_guid = msg.kind, msg.name, msg.si_guid, msg.app_guid
        with store.lock:
            si = store.instances.get(si_guid)
            if si is None:
                raise unprocessable(f"The service instance could not be found: '{si_guid}'")
            if not si.managed and "parameters" in body:
                raise unprocessable(
                    "Binding parameters are not supported for user-provided service instances"
                )
            if kind == "app":
                app = store.apps.get(app_guid or "")
                if app is None:
                    raise unprocessable(f"The app could not be found: '{app_guid}'")
                self._check_app_binding(si, app, name, msg.strategy)
            else:
                app = None
                self._check_key(si, name or "")
            binding: Binding = store.add(
                Binding(
                    type=kind,
                    name=name,
                    service_instance_guid=si.guid,
                    app_guid=app.guid if app else None,
                    last_operation=LastOperation(type="create", state="initial"),
                    parameters=dict(msg.parameters or {}),
                )
            )
            apply_metadata(binding, body)
            if not si.managed:
                binding.last_operation.state = "succeeded"
                return Response(201, present.binding(binding, req.base_url, store))
            job = self.ctx.jobs.start_create(binding)
            return Response(202, None, {"Location": f"{req.base_url}/v3/jobs/{job.guid}"})

    def _check_instance(self, si: ServiceInstance, *, period: str) -> None:
        if not si.managed:
            return
        plan = self.ctx.store.plan_of(si)
        if plan is not None and not plan.bindable:
            raise unprocessable(f"Service plan does not allow bindings{period}")
        if si.last_operation.state in ("initial", "in progress"):
            raise unprocessable(
                f"There is an operation in progress for the service instance{period}"
            )

    def _check_app_binding(
        self, si: ServiceInstance, app: App, name: str | None, strategy: str
    ) -> None:
        """CC's precursor checks, in CC's order (reference section 3)."""
        store = self.ctx.store
        if si.space_guid != app.space_guid:
            raise unprocessable("The service instance and the app are in different spaces")
        self._check_instance(si, period="")
        limit = store.options.bindings_limit if strategy == "multiple" else 1
        valid = 0
        failed: list[Binding] = []
        for existing in store.app_bindings(app.guid, si.guid):
            if existing.is_("create", "failed"):
                failed.append(existing)
                continue
            creating = existing.last_operation.type == "create" and existing.in_flight
            if limit == 1 and (existing.is_("create", "succeeded") or creating):
                raise unprocessable("The app is already bound to the service instance")
            if creating:
                raise unprocessable(
                    "There is already a binding in progress for this service instance and app "
                    f"(binding guid: {existing.guid})"
                )
            if existing.last_operation.type == "delete":
                if limit == 1:
                    raise unprocessable("The binding is getting deleted or its deletion failed")
                raise unprocessable(
                    "A binding for this service instance and app is getting "
                    "deleted or its deletion failed"
                )
            if existing.name != name:
                raise unprocessable(
                    "The binding name cannot be changed for the same app and service instance"
                )
            valid += 1
        if valid >= limit:
            raise unprocessable(
                f"The app has too many bindings to this service instance (limit: {limit}). "
                "Consider deleting existing/orphaned bindings."
            )
        if name is not None and any(
            b.type == "app"
            and b.app_guid == app.guid
            and b.name == name
            and b.service_instance_guid != si.guid
            for b in store.bindings.values()
        ):
            raise unprocessable(
                "The binding name is invalid. Binding names must be unique for a given service "
                f"instance and app. The app already has a binding with name '{name}'."
            )
        for stale in failed:  # CC deletes failed bindings on the next successful create
            del store.bindings[stale.guid]

    def _check_key(self, si: ServiceInstance, name: str) -> None:
        if not si.managed:
            raise unprocessable(
                "Service credential bindings of type 'key' are not supported "
                "for user-provided service instances."
            )
        self._check_instance(si, period=".")
        for existing in self.ctx.store.bindings.values():
            if existing.type != "key" or existing.service_instance_guid != si.guid:
                continue
            if not names_match([name], existing.name or "", case_sensitive=True):
                continue
            if existing.last_operation.type == "delete":
                raise unprocessable(
                    "The binding name is invalid. Key binding names must be unique. The service "
                    f"instance already has a key binding with the name '{name}' that is getting "
                    "deleted or its deletion failed."
                )
            raise unprocessable(
                "The binding name is invalid. Key binding names must be unique. The service "
                f"instance already has a key binding with name '{name}'."
            )

    # -- deleting -----------------------------------------------------------------

    def delete(self, req: Request, guid: str) -> Response:
        """`DELETE .../:guid`: managed -> 202 + job, UPSI -> 204."""
        store = self.ctx.store
        with store.lock:
            found = self._get(guid)
            if found.last_operation.type == "delete" and found.in_flight:
                raise unprocessable("There is an operation in progress for the service binding.")
            si = store.instances[found.service_instance_guid]
            if si.last_operation.state in ("initial", "in progress"):
                raise unprocessable("There is an operation in progress for the service instance.")
            if not si.managed:
                del store.bindings[found.guid]
                return Response(204)
            job = self.ctx.jobs.start_delete(found)
            return Response(202, None, {"Location": f"{req.base_url}/v3/jobs/{job.guid}"})
