"""What CC checks before a service credential binding exists, with its 422 texts.

Sources (cloud_controller_ng):
- the body: `app/messages/service_credential_binding_create_message.rb` (generic:
  metadata, unknown fields, relationships, parameters, type),
  `service_credential_app_binding_create_message.rb` (`strategy`, the `app` relationship)
  and `service_credential_key_binding_create_message.rb` (`name`), with the validators in
  `app/messages/validators.rb` (`RelationshipValidator`, `ToOneRelationshipValidator`).
  Each class reports all its problems at once, joined with ", "; the specific class is
  asked only when the generic one passed (`build_create_message` in
  `app/controllers/v3/service_credential_bindings_controller.rb`). `strategy` is a field
  only from CC API 3.205.0 (capi-release 1.220.0; before, "Unknown field(s): 'strategy'").
- the app binding rules: `app/actions/service_credential_binding_app_create.rb`
  (`precursor`): they depend on the operator limit
  `max_service_credential_bindings_per_app_service_instance`, not on the strategy asked
  for; `strategy` only decides between "too many" and "already bound" at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .metadata import MetadataChange, metadata_problems, parse_metadata
from .state import App, Binding, ServiceInstance, Store
from .web import unprocessable


def _to_one_problems(name: str, label: str, value: Any) -> list[str]:
    """`presence` + `ToOneRelationshipValidator` + `GuidValidator` for one relationship."""
    problems = []
    if value is None or value == {}:
        problems.append(f"{label} can't be blank")
    structured = (
        isinstance(value, dict)
        and list(value) == ["data"]
        and (
            value["data"] is None
            or (isinstance(value["data"], dict) and list(value["data"]) == ["guid"])
        )
    )
    if not structured:
        problems.append(
            f'{label} must be structured like this: "{name}: {{"data": {{"guid": "valid-guid"}}}}"'
        )
    elif value["data"] is not None:
        guid = value["data"]["guid"]
        if not isinstance(guid, str):
            problems.append(f"{label} guid must be a string")
        if not (isinstance(guid, str) and 1 <= len(guid) <= 200):
            problems.append(f"{label} guid must be between 1 and 200 characters")
    return problems


def _relationship_problems(relationships: Any, names: dict[str, str]) -> list[str]:
    """`RelationshipValidator`: each problem is prefixed with `Relationships `."""
    if not isinstance(relationships, dict):
        return ["Relationships 'relationships' is not an object"]
    if not relationships:
        return ["Relationships 'relationships' must include one or more valid relationships"]
    problems: list[str] = []
    unknown = [k for k in relationships if k not in names]
    if unknown:
        problems.append("Unknown field(s): '" + "', '".join(unknown) + "'")
    for key, label in names.items():
        problems += _to_one_problems(key, label, relationships.get(key))
    return [f"Relationships {p}" for p in problems]


def _guid(relationships: Any, name: str) -> str | None:
    rel = relationships.get(name) if isinstance(relationships, dict) else None
    data = rel.get("data") if isinstance(rel, dict) else None
    guid = data.get("guid") if isinstance(data, dict) else None
    return guid if isinstance(guid, str) else None


@dataclass(frozen=True)
class CreateMessage:
    """A binding create body that passed CC's message validation."""

    kind: str
    name: str | None
    strategy: str | None
    parameters: dict[str, Any] | None
    si_guid: str
    app_guid: str | None
    metadata: MetadataChange

    @classmethod
    def parse(cls, body: dict[str, Any], *, supports_strategy: bool) -> CreateMessage:
        """Validate the body as CC's two message classes do (422 with every problem)."""
        allowed = ["type", "name", "relationships", "parameters", "metadata"]
        if supports_strategy:
            allowed.insert(1, "strategy")
        problems: list[str] = []
        if "metadata" in body:
            problems += metadata_problems(body["metadata"])
        unknown = [k for k in body if k not in allowed]
        if unknown:
            problems.append("Unknown field(s): '" + "', '".join(unknown) + "'")
        relationships = body.get("relationships")
        generic = {"service_instance": "Service instance"}
        kind = body.get("type")
        # Both classes share the `Relationships` class of their own type; the generic one
        # knows only `service_instance` but lets `app` pass (it checks no unknown keys).
        problems += [
            p
            for p in _relationship_problems(relationships, generic)
            if not p.startswith("Relationships Unknown field(s)")
        ]
        parameters = body.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            problems.append("Parameters must be an object")
        if kind not in ("app", "key"):
            problems.append("Type must be 'app' or 'key'")
        if problems:
            raise unprocessable(", ".join(problems))
        specific: list[str] = []
        name = body.get("name")
        if kind == "app":
            strategy = body.get("strategy")
            if strategy is not None and strategy not in ("single", "multiple"):
                specific.append("Strategy must be 'single' or 'multiple'")
            specific += _relationship_problems(
                relationships, {"service_instance": "Service instance", "app": "App"}
            )
        else:
            if not isinstance(name, str):
                specific.append("Name must be a string")
            if name is None or (isinstance(name, str) and not name.strip()):
                specific.append("Name can't be blank")
            specific += _relationship_problems(relationships, generic)
        if specific:
            raise unprocessable(", ".join(dict.fromkeys(specific)))
        si_guid = _guid(relationships, "service_instance")
        assert si_guid is not None  # the validators above made sure
        return cls(
            kind=str(kind),
            name=name if isinstance(name, str) else None,
            strategy=body.get("strategy"),
            parameters=parameters,
            si_guid=si_guid,
            app_guid=_guid(relationships, "app"),
            metadata=parse_metadata(body),
        )


def check_instance(store: Store, si: ServiceInstance, *, period: str) -> None:
    """`validate_service_instance!` for a managed instance (the key create adds a period)."""
    if not si.managed:
        return
    plan = store.plan_of(si)
    if plan is not None and not plan.bindable:
        raise unprocessable(f"Service plan does not allow bindings{period}")
    if si.last_operation.type == "create" and si.last_operation.state == "failed":
        raise unprocessable(f"Service instance not found{period}")
    if si.last_operation.state in ("initial", "in progress"):
        raise unprocessable(f"There is an operation in progress for the service instance{period}")


def _create_succeeded(b: Binding) -> bool:
    return b.is_("create", "succeeded")


def _create_in_progress(b: Binding) -> bool:
    return b.last_operation.type == "create" and b.last_operation.state in (
        "initial",
        "in progress",
    )


def check_app_binding(
    store: Store, si: ServiceInstance, app: App, name: str | None, strategy: str | None
) -> list[Binding]:
    """The `precursor` rules, in CC's order; returns the failed bindings CC removes.

    `limit` is the operator's; strategy "multiple" compares the count with it, anything
    else allows none (`validate_number_of_bindings!`).
    """
    if si.space_guid != app.space_guid:
        raise unprocessable("The service instance and the app are in different spaces")
    check_instance(store, si, period="")
    limit = store.options.bindings_limit
    valid = 0
    failed: list[Binding] = []
    for existing in store.app_bindings(app.guid, si.guid):
        if existing.is_("create", "failed"):
            failed.append(existing)
            continue
        if limit == 1 and (_create_succeeded(existing) or _create_in_progress(existing)):
            raise unprocessable("The app is already bound to the service instance")
        if _create_in_progress(existing):
            raise unprocessable(
                "There is already a binding in progress for this service instance and app "
                f"(binding guid: {existing.guid})"
            )
        if existing.last_operation.type == "delete" and existing.last_operation.state in (
            "in progress",
            "failed",
        ):
            if limit == 1:
                raise unprocessable("The binding is getting deleted or its deletion failed")
            raise unprocessable(
                "A binding for this service instance and app is getting deleted or its "
                "deletion failed"
            )
        if existing.name != name:
            raise unprocessable(
                "The binding name cannot be changed for the same app and service instance"
            )
        valid += 1
    if strategy == "multiple":
        if valid >= limit:
            raise unprocessable(
                f"The app has too many bindings to this service instance (limit: {limit}). "
                "Consider deleting existing/orphaned bindings."
            )
    elif valid >= 1:
        raise unprocessable("The app is already bound to the service instance")
    if name is not None and any(
        b.type == "app"
        and b.app_guid == app.guid
        and b.name == name
        and b.service_instance_guid != si.guid
        for b in store.bindings.values()
    ):
        suffix = f" The app already has a binding with name '{name}'." if name else ""
        raise unprocessable(
            "The binding name is invalid. Binding names must be unique for a given service "
            f"instance and app.{suffix}"
        )
    return failed
