"""User-provided service instances: create (201), delete (204), credentials; names unique.

What Cloud Controller does, from cloud_controller_ng:
- `POST /v3/service_instances` (`app/controllers/v3/service_instances_controller.rb`
  `#create`): the `service_instance_creation` feature flag unless admin (403
  CF-FeatureDisabled), the generic then the specific message
  (`app/messages/service_instance_create_message.rb`,
  `service_instance_create_user_provided_message.rb`, 422 with the messages joined), the
  space (422 "Invalid space. ..."), then `ServiceInstanceCreateUserProvided#create`
  (`app/actions/service_instance_create_user_provided.rb`): no broker, the instance exists
  at once with last operation create/succeeded, answered 201. A name already used in the
  space fails the model's `validates_unique` or, in a race, the database's unique index
  `si_space_id_name_index` (`app/models/services/service_instance.rb#around_save`); both
  become 422 CF-UnprocessableEntity (10008) "The service instance name is taken: NAME."
  (`app/actions/mixins/service_instance_create.rb`). (The v2 code 60002
  CF-ServiceInstanceNameTaken of `errors/v2.yml` is not what v3 answers.) Here the check
  and the insert happen under the store's one lock, which is what the index guarantees:
  of two concurrent creates exactly one wins.
- `DELETE /v3/service_instances/:guid` (`#destroy`, `fetch_writable_service_instance`):
  404 "Service instance not found" for an unknown guid; for a user-provided instance
  `V3::ServiceInstanceDelete#delete` (`app/actions/v3/service_instance_delete.rb`) removes
  its bindings and the instance synchronously: 204, no job.
- `GET /v3/service_instances/:guid/credentials` (`#credentials`): the credentials object.
  CC allows it only to roles that may read secrets in the space (Space Developer, admin);
  the sandbox has one user, a Space Developer.

Not modelled: managed creates and deletes (a broker and a job; the sandbox's it-rt
instances are seeded), `syslog_drain_url`/`route_service_url` beyond their validation,
instances shared from other spaces (CC's `name_clashes` also counts those), and a MySQL
database's case-insensitive name collation (CC on PostgreSQL compares names exactly).
"""

from __future__ import annotations

from typing import Any

from . import present
from .context import Ctx
from .metadata import metadata_problems, parse_metadata
from .state import LastOperation, ServiceInstance
from .web import GUID, ApiError, Request, Response, Router, check_fields, not_found, unprocessable

_GENERIC_KEYS = {"type", "relationships", "name", "tags", "metadata"}
_USER_PROVIDED_KEYS = _GENERIC_KEYS | {"credentials", "syslog_drain_url", "route_service_url"}
_MAX_NAME = 255
_MAX_TAGS = 2048
_SPACE_STRUCTURE = (
    'Relationships Space must be structured like this: "space: {"data": {"guid": "valid-guid"}}"'
)


def name_taken(name: str) -> ApiError:
    """CC's 422 for a second instance of the same name in a space."""
    return unprocessable(f"The service instance name is taken: {name}.")


def _generic_problems(body: dict[str, Any]) -> list[str]:
    """`ServiceInstanceCreateMessage`: relationships, type, name, tags, in CC's order."""
    problems: list[str] = []
    relationships = body.get("relationships")
    if not isinstance(relationships, dict):
        problems.append("Relationships 'relationships' is not an object")
    elif not relationships:
        problems.append(
            "Relationships 'relationships' must include one or more valid relationships"
        )
    elif _space_guid(body) is None:
        problems.append(_SPACE_STRUCTURE)
    if body.get("type") not in ("managed", "user-provided"):
        problems.append("Type must be one of 'managed', 'user-provided'")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        problems.append("Name must be a string")
    if not name or (isinstance(name, str) and not name.strip()):
        problems.append("Name can't be blank")
    tags = body.get("tags")
    if tags is not None and not isinstance(tags, list):
        problems.append("Tags must be an array")
    elif isinstance(tags, list) and any(not isinstance(t, str) for t in tags):
        problems.append("Tags must be a list of strings")
    return problems


def _user_provided_problems(body: dict[str, Any]) -> list[str]:
    """`ServiceInstanceCreateUserProvidedMessage`: credentials and the two URLs."""
    problems: list[str] = []
    credentials = body.get("credentials")
    if credentials not in (None, {}) and not isinstance(credentials, dict):
        problems.append("Credentials must be an object")
    for field in ("syslog_drain_url", "route_service_url"):
        value = body.get(field)
        if value and (not isinstance(value, str) or "://" not in value):
            problems.append(f"{field.replace('_', ' ').capitalize()} must be a valid URI")
    route = body.get("route_service_url")
    if isinstance(route, str) and route and not route.startswith("https:"):
        problems.append("Route service url must be https")
    return problems


def _space_guid(body: dict[str, Any]) -> str | None:
    relationships = body.get("relationships")
    space = relationships.get("space") if isinstance(relationships, dict) else None
    data = space.get("data") if isinstance(space, dict) else None
    guid = data.get("guid") if isinstance(data, dict) else None
    return guid if isinstance(guid, str) else None


class UserProvidedRoutes:
    """`POST` and `DELETE /v3/service_instances` for user-provided instances."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.add("POST", "/v3/service_instances", self.create)
        router.add("DELETE", f"/v3/service_instances/{GUID}", self.delete)
        router.add("GET", f"/v3/service_instances/{GUID}/credentials", self.credentials)

    def create(self, req: Request) -> Response:
        """`POST /v3/service_instances` with `type: user-provided`: 201 or CC's 4xx."""
        store = self.ctx.store
        if not store.options.service_instance_creation:
            raise ApiError(
                403, 330002, "CF-FeatureDisabled", "Feature Disabled: service_instance_creation"
            )
        body = req.json_object()
        problems = _generic_problems(body)
        if problems:
            raise unprocessable(", ".join(problems))
        if body["type"] == "managed":
            raise unprocessable(
                "cf_sandbox: creating managed service instances is not modelled (no broker "
                "provisioning); seed them with Landscape.add_service_instance"
            )
        check_fields(body, _USER_PROVIDED_KEYS)
        problems = _user_provided_problems(body)
        if "metadata" in body:
            problems += metadata_problems(body["metadata"])
        if problems:
            raise unprocessable(", ".join(problems))
        name = str(body["name"]).strip()  # the model strips the name (strip_attributes)
        tags = list(body.get("tags") or [])
        with store.lock:
            space_guid = _space_guid(body)
            if space_guid not in store.spaces:
                raise unprocessable(
                    "Invalid space. Ensure that the space exists and you have access to it."
                )
            if any(
                si.space_guid == space_guid and si.name == name for si in store.instances.values()
            ):
                raise name_taken(name)
            if len(name) > _MAX_NAME:
                raise unprocessable("name max_length")
            if len("".join(tags)) > _MAX_TAGS:
                raise unprocessable("tags too_long")
            instance = ServiceInstance(
                name=name,
                space_guid=space_guid,
                plan_guid=None,
                tags=tags,
                credentials=dict(body.get("credentials") or {}),
                last_operation=LastOperation(
                    type="create", state="succeeded", description="Operation succeeded"
                ),
            )
            self.ctx.set_metadata(instance, parse_metadata(body))
            store.add(instance)
            return Response(201, present.service_instance(instance, req.base_url))

    def delete(self, req: Request, guid: str) -> Response:
        """`DELETE /v3/service_instances/:guid`: a user-provided one goes at once (204)."""
        store = self.ctx.store
        with store.lock:
            instance = store.instances.get(guid)
            if instance is None:
                raise not_found("Service instance")
            if instance.managed:
                raise unprocessable(
                    "cf_sandbox: deleting managed service instances is not modelled (a broker job)"
                )
            for binding in [b for b in store.bindings.values() if b.service_instance_guid == guid]:
                del store.bindings[binding.guid]
            del store.instances[guid]
            return Response(204)

    def credentials(self, req: Request, guid: str) -> Response:
        """`GET /v3/service_instances/:guid/credentials` (user-provided only)."""
        with self.ctx.store.lock:
            instance = self.ctx.store.instances.get(guid)
            if instance is None or instance.managed:
                raise not_found("Service instance")
            return Response(200, dict(instance.credentials))
