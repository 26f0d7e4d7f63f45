"""Cloud Controller resources as frozen dataclasses; raw JSON never leaves the `cf` package.

Each type is built by `from_api()` from the v3 JSON shapes
(https://v3-apidocs.cloudfoundry.org) and keeps only what the engine needs. A shape that
lacks a required field raises `CfApiError` (via `parse`), so a proxy's HTML page or an
incompatible API version fails with a clear message instead of a `KeyError` deep in the
engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from ..errors import CfApiError

__all__ = [
    "App",
    "Binding",
    "BindingListing",
    "Build",
    "Deployment",
    "Job",
    "JobError",
    "Org",
    "Package",
    "RootInfo",
    "ServiceInstance",
    "Space",
    "SpaceListing",
    "parse",
]

T = TypeVar("T")

# Job states (CC app/models/runtime/pollable_job_model.rb); COMPLETE and FAILED are final.
JOB_FINAL_STATES = frozenset({"COMPLETE", "FAILED"})


def _str(data: Mapping[str, Any], *keys: str) -> str | None:
    """Walk nested keys; None when any level is missing or null."""
    value: Any = data
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value if isinstance(value, str) else None


def _guid_of_relationship(data: Mapping[str, Any], name: str) -> str | None:
    return _str(data, "relationships", name, "data", "guid")


def _str_map(data: Mapping[str, Any], *keys: str) -> dict[str, str]:
    value: Any = data
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _last_segment(href: str | None) -> str | None:
    return href.rstrip("/").rsplit("/", 1)[-1] if href else None


def _version(text: str) -> tuple[int, int, int]:
    """`3.205.0` -> (3, 205, 0); missing or odd parts count as 0."""
    parts = [int(p) if p.isdigit() else 0 for p in text.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


def parse(build: Callable[[Mapping[str, Any]], T], data: Any, what: str, *, status: int) -> T:
    """Run a `from_api` and turn a shape mismatch into a `CfApiError` naming `what`."""
    try:
        if not isinstance(data, Mapping):
            raise TypeError("not a JSON object")
        return build(data)
    except (KeyError, TypeError, ValueError) as error:
        raise CfApiError(
            f"Cloud Controller answered an unexpected shape for {what} ({error!s}); "
            "is the URL a Cloud Foundry v3 API?",
            status=status,
        ) from error


@dataclass(frozen=True)
class RootInfo:
    """`GET /`: where the v3 API and the token endpoint are, and the v3 API version."""

    api_url: str
    v3_version: tuple[int, int, int]
    v3_version_text: str
    login_url: str | None
    uaa_url: str | None

    @property
    def token_url(self) -> str:
        """The cf CLI posts to `links.login` + `/oauth/token`; fall back to `uaa`, then self."""
        base = self.login_url or self.uaa_url or self.api_url
        return base.rstrip("/") + "/oauth/token"

    @classmethod
    def from_api(cls, data: Mapping[str, Any], api_url: str = "") -> RootInfo:
        links = data["links"]
        version = _str(links, "cloud_controller_v3", "meta", "version")
        if version is None:
            raise KeyError("links.cloud_controller_v3.meta.version")
        return cls(
            api_url=_str(links, "self", "href") or api_url,
            v3_version=_version(version),
            v3_version_text=version,
            login_url=_str(links, "login", "href"),
            uaa_url=_str(links, "uaa", "href"),
        )


@dataclass(frozen=True)
class Org:
    """An organization."""

    guid: str
    name: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Org:
        return cls(guid=data["guid"], name=data["name"])


@dataclass(frozen=True)
class Space:
    """A space and the org it belongs to."""

    guid: str
    name: str
    org_guid: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Space:
        return cls(
            guid=data["guid"],
            name=data["name"],
            org_guid=_guid_of_relationship(data, "organization"),
        )


@dataclass(frozen=True)
class App:
    """An app: state (`STARTED`/`STOPPED`) and metadata (rotation annotations, lock)."""

    guid: str
    name: str
    state: str
    space_guid: str | None = None
    annotations: dict[str, str] = field(default_factory=dict, hash=False)
    labels: dict[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> App:
        return cls(
            guid=data["guid"],
            name=data["name"],
            state=data["state"],
            space_guid=_guid_of_relationship(data, "space"),
            annotations=_str_map(data, "metadata", "annotations"),
            labels=_str_map(data, "metadata", "labels"),
        )

    @property
    def stopped(self) -> bool:
        """Stopped on purpose: Cloud Controller starts a stopped app when a deployment is
        created for it (cloud_controller_ng app/actions/deployment_create.rb), so a
        rotation must not create one (rotation/promote.py `promote_stopped`)."""
        return self.state == "STOPPED"


@dataclass(frozen=True)
class ServiceInstance:
    """A service instance (`managed` or `user-provided`) and its plan, when managed."""

    guid: str
    name: str
    type: str
    space_guid: str | None = None
    plan_guid: str | None = None
    last_operation_state: str | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ServiceInstance:
        tags = data.get("tags")
        return cls(
            guid=data["guid"],
            name=data["name"],
            type=data["type"],
            space_guid=_guid_of_relationship(data, "space"),
            plan_guid=_guid_of_relationship(data, "service_plan"),
            last_operation_state=_str(data, "last_operation", "state"),
            tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        )


@dataclass(frozen=True)
class Binding:
    """A service credential binding of `type=app`.

    `state` is the last operation's (`initial`, `in progress`, `succeeded`, `failed`) and
    `operation` its type (`create`, `delete`); `name` is None for an unnamed binding.
    """

    guid: str
    name: str | None
    state: str
    operation: str
    created_at: datetime | None
    app_guid: str | None = None
    service_instance_guid: str | None = None
    description: str | None = None

    @property
    def succeeded(self) -> bool:
        """True when the binding exists and its create finished (the broker accepted it)."""
        return self.operation == "create" and self.state == "succeeded"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Binding:
        name = data.get("name")
        return cls(
            guid=data["guid"],
            name=name if isinstance(name, str) else None,
            state=_str(data, "last_operation", "state") or "succeeded",
            operation=_str(data, "last_operation", "type") or "create",
            created_at=_time(_str(data, "created_at")),
            app_guid=_guid_of_relationship(data, "app"),
            service_instance_guid=_guid_of_relationship(data, "service_instance"),
            description=_str(data, "last_operation", "description"),
        )


@dataclass(frozen=True)
class JobError:
    """One entry of a job's `errors`, e.g. 10009 `CF-UnableToPerform` from a broker."""

    code: int | None
    title: str
    detail: str


@dataclass(frozen=True)
class Job:
    """An asynchronous job: PROCESSING -> POLLING -> COMPLETE | FAILED."""

    guid: str
    operation: str
    state: str
    errors: tuple[JobError, ...] = ()
    warnings: tuple[str, ...] = ()
    resource_guid: str | None = None
    """The guid from the job's resource link (present while the resource exists)."""

    @property
    def finished(self) -> bool:
        """COMPLETE or FAILED."""
        return self.state in JOB_FINAL_STATES

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Job:
        links = data.get("links") or {}
        resource = next(
            (_str(link, "href") for key, link in links.items() if key != "self"),
            None,
        )
        return cls(
            guid=data["guid"],
            operation=data.get("operation") or "",
            state=data["state"],
            errors=tuple(
                JobError(
                    code=e.get("code"), title=e.get("title") or "", detail=e.get("detail") or ""
                )
                for e in data.get("errors") or ()
            ),
            warnings=tuple(
                str(w.get("detail") if isinstance(w, Mapping) else w)
                for w in data.get("warnings") or ()
            ),
            resource_guid=_last_segment(resource),
        )


@dataclass(frozen=True)
class Deployment:
    """A deployment: `state` ACTIVE|FINALIZED and `reason` (DEPLOYING, DEPLOYED, CANCELED, ...).

    Success is FINALIZED/DEPLOYED; `error` is Cloud Controller's `status.details.error`.
    """

    guid: str
    state: str
    reason: str
    error: str | None = None
    app_guid: str | None = None
    droplet_guid: str | None = None
    new_process_guid: str | None = None
    """The web process it brings up (`new_processes`), whose instances it starts in batches."""

    @property
    def finalized(self) -> bool:
        """The deployment will not change any more."""
        return self.state == "FINALIZED"

    @property
    def succeeded(self) -> bool:
        """FINALIZED with reason DEPLOYED: every instance runs the new revision."""
        return self.state == "FINALIZED" and self.reason == "DEPLOYED"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Deployment:
        status = data["status"]
        return cls(
            guid=data["guid"],
            state=status["value"],
            reason=status.get("reason") or "",
            error=_str(status, "details", "error"),
            app_guid=_guid_of_relationship(data, "app"),
            droplet_guid=_str(data, "droplet", "guid"),
            new_process_guid=next(
                (
                    p["guid"]
                    for p in data.get("new_processes") or ()
                    if isinstance(p, Mapping) and p.get("type") == "web" and p.get("guid")
                ),
                None,
            ),
        )


@dataclass(frozen=True)
class Package:
    """An app package (the seed's restage stages the newest READY one)."""

    guid: str
    state: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Package:
        return cls(guid=data["guid"], state=data["state"])


@dataclass(frozen=True)
class Build:
    """A build: STAGING -> STAGED (with a droplet) | FAILED (with an error)."""

    guid: str
    state: str
    droplet_guid: str | None = None
    error: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Build:
        return cls(
            guid=data["guid"],
            state=data["state"],
            droplet_guid=_str(data, "droplet", "guid"),
            error=_str(data, "error"),
        )


@dataclass(frozen=True)
class BindingListing:
    """App bindings with the apps and service instances their list included (by guid)."""

    bindings: tuple[Binding, ...]
    apps: Mapping[str, App]
    instances: Mapping[str, ServiceInstance]


@dataclass(frozen=True)
class SpaceListing:
    """Spaces with the organizations their list included (by guid)."""

    spaces: tuple[Space, ...]
    orgs: Mapping[str, Org]
