"""Service credential bindings: list, show, create (202 + job), delete, details, parameters.

Sources (cloud_controller_ng): `app/controllers/v3/service_credential_bindings_controller.rb`
(every action, its order of checks and texts), `app/messages/
service_credential_binding_list_message.rb` and `..._show_message.rb` (query),
`app/actions/v3/service_binding_delete.rb` (`blocking_operation_in_progress?`: a create
still `initial` or a delete `in progress` refuses a DELETE; a create `in progress` does
not), `app/actions/v2/services/service_binding_read.rb` (`/parameters` needs a managed
instance whose offering has `bindings_retrievable`, else 400 90007), `errors/v2.yml`.
The create rules live in `binding_create.py`, the jobs in `jobs.py`.
"""

from __future__ import annotations

from typing import Any

from . import included, present
from .binding_create import CreateMessage, check_app_binding, check_instance
from .context import Ctx
from .listing import list_spec, parse, show_spec
from .metadata import metadata_problems, parse_metadata
from .paging import list_response, names_match
from .state import Binding, LastOperation, ServiceInstance
from .web import GUID, ApiError, Request, Response, Router, resource_not_found, unprocessable

# service_credential_binding_list_message.rb
LIST = list_spec(
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
    orders=("created_at", "updated_at", "name"),
    includes=("app", "service_instance"),
    enums={"type": (("app", "key"), "must be one of 'app', 'key'")},
)
SHOW = show_spec("include", includes=("app", "service_instance"))


def _binding_not_found() -> ApiError:
    return resource_not_found("Service credential binding not found")


def _not_succeeded(found: Binding) -> ApiError:
    """`not_found_with_message!`: e.g. `Creation of service binding initial`."""
    op = found.last_operation
    operation = "Creation" if op.type == "create" else "Deletion"
    kind = "key" if found.type == "key" else "binding"
    return resource_not_found(f"{operation} of service {kind} {op.state}")


def _order_name(b: Binding, field: str) -> Any:
    return (b.name or "") if field == "name" else getattr(b, field)


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

    def list(self, req: Request) -> Response:
        """`GET /v3/service_credential_bindings` (default order: created_at ascending)."""
        query = parse(req, LIST)
        store = self.ctx.store
        kind = query.single("type")
        wanted = {name: query.many(name) for name in LIST.arrays}

        def keep(b: Binding) -> bool:
            si = store.instances.get(b.service_instance_guid)
            app = store.apps.get(b.app_guid or "")
            plan = store.plan_of(si) if si else None
            offering = store.offering_of(si) if si else None
            checks = (
                ("names", b.name),
                ("service_instance_guids", b.service_instance_guid),
                ("service_instance_names", si.name if si else None),
                ("app_guids", b.app_guid),
                ("app_names", app.name if app else None),
                ("service_plan_guids", plan.guid if plan else None),
                ("service_plan_names", plan.name if plan else None),
                ("service_offering_guids", offering.guid if offering else None),
                ("service_offering_names", offering.label if offering else None),
            )
            return (kind is None or b.type == kind) and all(
                wanted[name] is None or value in (wanted[name] or ()) for name, value in checks
            )

        with store.lock:
            resp = list_response(
                req,
                query,
                store.bindings.values(),
                keep,
                lambda b: present.binding(b, req.base_url, store),
                order_key=_order_name,
            )
            if query.includes:
                shown = [store.bindings[r["guid"]] for r in resp.body["resources"]]
                resp.body["included"] = included.for_bindings(
                    store, shown, query.includes, req.base_url
                )
            return resp

    def _get(self, guid: str) -> Binding:
        found = self.ctx.store.bindings.get(guid)
        if found is None:
            raise _binding_not_found()
        return found

    def show(self, req: Request, guid: str) -> Response:
        """`GET /v3/service_credential_bindings/:guid`."""
        query = parse(req, SHOW)
        store = self.ctx.store
        with store.lock:
            found = self._get(guid)
            body = present.binding(found, req.base_url, store)
            if query.includes:
                body["included"] = included.for_bindings(
                    store, [found], query.includes, req.base_url
                )
            return Response(200, body)

    def details(self, req: Request, guid: str) -> Response:
        """`GET .../details`: credentials once the create succeeded, 404 before."""
        with self.ctx.store.lock:
            found = self._get(guid)
            if not found.is_("create", "succeeded"):
                raise _not_succeeded(found)
            si = self.ctx.store.instances[found.service_instance_guid]
            credentials = found.credentials if si.managed else dict(si.credentials)
            return Response(
                200, {"credentials": credentials, "syslog_drain_url": None, "volume_mounts": []}
            )

    def parameters(self, req: Request, guid: str) -> Response:
        """`GET .../parameters`: only a managed instance with `bindings_retrievable`."""
        store = self.ctx.store
        with store.lock:
            found = self._get(guid)
            if not found.is_("create", "succeeded"):
                raise _not_succeeded(found)
            si = store.instances[found.service_instance_guid]
            if not (si.managed and store.options.bindings_retrievable):
                raise ApiError(
                    400,
                    90007,
                    "CF-ServiceFetchBindingParametersNotSupported",
                    "This service does not support fetching service binding parameters.",
                )
            return Response(200, dict(found.parameters))

    def update(self, req: Request, guid: str) -> Response:
        """`PATCH .../:guid`: metadata only (`MetadataUpdateMessage`)."""
        body = req.json_object()
        with self.ctx.store.lock:
            found = self._get(guid)
            if found.last_operation.type == "delete" and found.in_flight:
                raise unprocessable("The service binding is being deleted")
            problems = metadata_problems(body["metadata"]) if "metadata" in body else []
            unknown = [k for k in body if k != "metadata"]
            if unknown:
                problems.append("Unknown field(s): '" + "', '".join(unknown) + "'")
            if problems:
                raise unprocessable(", ".join(problems))
            self.ctx.set_metadata(found, parse_metadata(body))
            return Response(200, present.binding(found, req.base_url, self.ctx.store))

    # -- creating -----------------------------------------------------------------

    def create(self, req: Request) -> Response:
        """`POST /v3/service_credential_bindings`: managed -> 202 + job, UPSI -> 201."""
        body = req.json_object()
        store = self.ctx.store
        msg = CreateMessage.parse(body, supports_strategy=store.options.supports_multiple)
        with store.lock:
            si = store.instances.get(msg.si_guid)
            if si is None:
                raise unprocessable(f"The service instance could not be found: '{msg.si_guid}'")
            if not si.managed and "parameters" in body:
                raise unprocessable(
                    "Binding parameters are not supported for user-provided service instances"
                )
            failed: list[Binding] = []
            if msg.kind == "app":
                app = store.apps.get(msg.app_guid or "")
                if app is None:
                    raise unprocessable(f"The app could not be found: '{msg.app_guid}'")
                failed = check_app_binding(store, si, app, msg.name, msg.strategy)
            else:
                app = None
                self._check_key(si, msg.name or "")
            binding = Binding(
                type=msg.kind,
                name=msg.name,
                service_instance_guid=si.guid,
                app_guid=app.guid if app else None,
                last_operation=LastOperation(type="create", state="initial"),
                parameters=dict(msg.parameters or {}),
            )
            self.ctx.set_metadata(binding, msg.metadata)  # may refuse: nothing stored yet
            for stale in failed:  # CC destroys failed bindings when the new one is made
                del store.bindings[stale.guid]
            store.add(binding)
            if not si.managed:
                binding.last_operation.state = "succeeded"
                return Response(201, present.binding(binding, req.base_url, store))
            job = self.ctx.jobs.start_create(binding)
            return Response(202, None, {"Location": f"{req.base_url}/v3/jobs/{job.guid}"})

    def _check_key(self, si: ServiceInstance, name: str) -> None:
        """`service_credential_binding_key_create.rb` (`precursor`)."""
        if not si.managed:
            raise unprocessable(
                "Service credential bindings of type 'key' are not supported "
                "for user-provided service instances."
            )
        check_instance(self.ctx.store, si, period=".")
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
        """`DELETE .../:guid`: managed -> 202 + job (the row changes when it runs), UPSI -> 204."""
        store = self.ctx.store
        with store.lock:
            found = self._get(guid)
            op = found.last_operation
            blocking = (op.type, op.state) in (("create", "initial"), ("delete", "in progress"))
            if blocking:
                raise unprocessable("There is an operation in progress for the service binding.")
            si = store.instances[found.service_instance_guid]
            if si.last_operation.state in ("initial", "in progress"):
                raise unprocessable("There is an operation in progress for the service instance.")
            if not si.managed:
                del store.bindings[found.guid]
                return Response(204)
            job = self.ctx.jobs.start_delete(found)
            return Response(202, None, {"Location": f"{req.base_url}/v3/jobs/{job.guid}"})
