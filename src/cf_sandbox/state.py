"""The landscape's model: every CF resource the sandbox serves, and the one lock over them.

One `RLock` guards all of it: route handlers, job steps, deployment threads and the CPI
check all take `store.lock`, so every request sees a consistent landscape (cloud_controller_ng
locks the app row for binding rules: `app/actions/service_credential_binding_app_create.rb`
`app.lock!`). Network calls are never made while holding it. The operator settings among
the `Options` follow capi-release `jobs/cloud_controller_ng/spec` and CC's
`config/cloud_controller.yml` (see `Options`).
"""

from __future__ import annotations

import datetime
import itertools
import threading
import uuid
from dataclasses import dataclass, field, fields, replace
from typing import Any

# The CC API version from which `strategy: multiple` exists (capi-release 1.220.0).
MULTIPLE_BINDINGS_VERSION = (3, 205, 0)
# The CC API version from which a deployment create takes `options` (`max_in_flight`) and
# the `canary` strategy: cloud_controller_ng commits "Add Canary deployments (#3892)" and
# "Max in flight (#3907)", both made while `config/version` read 3.173.0 (the cf CLI's
# `ccversion` minimums are that file's value at the commit that adds a feature).
DEPLOYMENT_OPTIONS_VERSION = (3, 173, 0)


def now() -> datetime.datetime:
    """Current UTC time, second precision, as CC stores timestamps."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def iso(when: datetime.datetime | None) -> str | None:
    """CC's timestamp form: `2016-06-08T16:41:26Z`."""
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def version_tuple(version: str) -> tuple[int, ...]:
    """`"3.205.0"` -> (3, 205, 0); raises ValueError on anything else."""
    return tuple(int(part) for part in version.split("."))


_SEQ = itertools.count(1)


@dataclass(kw_only=True)
class Resource:
    """Fields every CF resource has; `seq` breaks created_at ties like CC's row id."""

    guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    seq: int = field(default_factory=lambda: next(_SEQ))
    created_at: datetime.datetime = field(default_factory=now)
    updated_at: datetime.datetime = field(default_factory=now)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def touch(self) -> None:
        """Mark as updated now."""
        self.updated_at = now()


@dataclass(kw_only=True)
class LastOperation:
    """A service instance's or binding's last operation: create|delete, and its state."""

    type: str = "create"
    state: str = "succeeded"
    description: str | None = None
    created_at: datetime.datetime = field(default_factory=now)
    updated_at: datetime.datetime = field(default_factory=now)

    def to_api(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "type": self.type,
            "state": self.state,
            "description": self.description,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(kw_only=True)
class Org(Resource):
    name: str


@dataclass(kw_only=True)
class Space(Resource):
    name: str
    org_guid: str


@dataclass(kw_only=True)
class App(Resource):
    name: str
    space_guid: str
    state: str = "STOPPED"
    env_vars: dict[str, str] = field(default_factory=dict)
    droplet_guid: str | None = None
    instances: int = 1
    buildpacks: list[str] = field(default_factory=lambda: ["nodejs_buildpack"])


@dataclass(kw_only=True)
class Offering(Resource):
    label: str


@dataclass(kw_only=True)
class Plan(Resource):
    name: str
    offering_guid: str
    bindable: bool = True


@dataclass(kw_only=True)
class ServiceInstance(Resource):
    name: str
    space_guid: str
    plan_guid: str | None  # None: user-provided
    tags: list[str] = field(default_factory=list)
    credentials: dict[str, Any] = field(default_factory=dict)  # user-provided only
    last_operation: LastOperation = field(default_factory=LastOperation)

    @property
    def managed(self) -> bool:
        """Managed (broker-backed) rather than user-provided."""
        return self.plan_guid is not None


@dataclass(kw_only=True)
class Binding(Resource):
    """A service credential binding: `type` "app" (app binding) or "key" (service key)."""

    type: str
    name: str | None
    service_instance_guid: str
    app_guid: str | None
    last_operation: LastOperation
    parameters: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, Any] = field(default_factory=dict)
    leaf_der: bytes | None = None  # the registered certificate, once the broker took it
    pinning: bool = True
    registered_at: float | None = None  # time.monotonic() when the broker registered it

    def is_(self, op_type: str, state: str) -> bool:
        """True when the last operation is `op_type` in `state`."""
        return self.last_operation.type == op_type and self.last_operation.state == state

    @property
    def in_flight(self) -> bool:
        """A create or delete that has not finished."""
        return self.last_operation.state in ("initial", "in progress")


@dataclass(kw_only=True)
class Job(Resource):
    operation: str
    state: str = "PROCESSING"
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    resource_type: str = "service_credential_binding"
    resource_guid: str | None = None


@dataclass(kw_only=True)
class Package(Resource):
    app_guid: str
    type: str = "bits"
    state: str = "READY"


@dataclass(kw_only=True)
class Droplet(Resource):
    app_guid: str
    package_guid: str | None
    state: str = "STAGED"


@dataclass(kw_only=True)
class Build(Resource):
    app_guid: str
    package_guid: str
    state: str = "STAGING"
    droplet_guid: str | None = None
    error: str | None = None


@dataclass(kw_only=True)
class Revision(Resource):
    app_guid: str
    version: int
    droplet_guid: str | None
    env_vars: dict[str, str]
    description: str


@dataclass(kw_only=True)
class Process(Resource):
    """A web process: what the app's instances run; a deployment makes a new one."""

    app_guid: str
    type: str = "web"
    instances: int = 1
    revision_guid: str | None = None


@dataclass(kw_only=True)
class Deployment(Resource):
    app_guid: str
    strategy: str = "rolling"
    max_in_flight: int = 1
    value: str = "ACTIVE"
    reason: str = "DEPLOYING"
    droplet_guid: str | None = None
    previous_droplet_guid: str | None = None
    new_process_guid: str | None = None
    revision_guid: str | None = None
    revision_version: int | None = None
    last_status_change: datetime.datetime = field(default_factory=now)
    last_healthcheck: datetime.datetime = field(default_factory=now)
    error: str | None = None

    def set_status(self, value: str, reason: str) -> None:
        """Move to a new status value/reason."""
        self.value, self.reason = value, reason
        self.last_status_change = now()
        self.touch()


@dataclass
class Options:
    """What a landscape can be tuned with, live (`Landscape.set_options`).

    Operator settings of a real landscape (the CC job spec in capi-release
    `jobs/cloud_controller_ng/spec`, CC `config/cloud_controller.yml`):
    - `bindings_limit`: `max_service_credential_bindings_per_app_service_instance`
      (CC default 1; capi-release default 5 from 1.231.0);
    - `max_labels_per_resource` / `max_annotations_per_resource` (50 / 200);
    - `rate_limit` / `rate_limit_window_s`: `rate_limiter.per_process_general_limit` and
      `reset_interval_in_minutes` (None: the limiter is off);
    - `temporary_enable_v2`: whether `GET /` links `cloud_controller_v2` and `/v2/info` says
      v2 is on (root_controller.rb, info_controller.rb);
    - `instance_file_descriptor_limit`: VCAP_APPLICATION.limits.fds in `/env` (16384).
    What the broker does (OSBAPI; SAP does not document it for it-rt):
    - `broker_async`: the broker answers bind/unbind with 202 and CC polls it (job POLLING);
    - `bindings_retrievable`: the catalog's `bindings_retrievable` (GET binding; needed by
      CC for an async bind, and for `/parameters`).
    What UAA's zone shows (`IdentityZoneConfiguration`, `LoginInfoEndpoint.populatePrompts`):
    - `uaa_passcode_prompt`: `/login` lists the SSO `passcode` prompt (an IdP with a link).
    - `uaa_restrict_refresh_grant`: UAA's `jwt.refresh.restrict_grant`: no refresh token
      unless the scope holds `uaa.offline_token` (RefreshTokenCreator.isRefreshTokenSupported).
    - `uaa_token_query_string`: UAA's `jwt.token.queryString.enabled` (default true); off,
      a token request with a query string is refused (uaa `UaaTokenEndpoint.java`).
    The rest are the sandbox's own durations and switches (api_version, pinning, timings).
    """

    api_version: str = "3.228.0"
    bindings_limit: int = 5
    max_labels_per_resource: int = 50
    max_annotations_per_resource: int = 200
    temporary_enable_v2: bool = False
    instance_file_descriptor_limit: int = 16384
    broker_async: bool = False
    bindings_retrievable: bool = False
    uaa_passcode_prompt: bool = True
    uaa_restrict_refresh_grant: bool = False
    uaa_token_query_string: bool = True
    pinning: bool = True
    token_ttl_s: float = 600.0
    start_s: float = 0.05
    staging_s: float = 0.2
    job_steps_s: float = 0.05
    cpi_propagation_s: float = 0.0
    rate_limit: int | None = None
    rate_limit_window_s: float = 60.0
    service_instance_creation: bool = True
    """CC's feature flag of that name (default on); off, only admins create instances."""

    def update(self, changes: dict[str, Any]) -> Options:
        """A copy with `changes` applied; unknown names or bad versions raise ValueError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(unknown)}")
        updated = replace(self, **changes)
        version_tuple(updated.api_version)
        if updated.bindings_limit < 1:
            raise ValueError("bindings_limit must be >= 1")
        return updated

    @property
    def supports_multiple(self) -> bool:
        """Whether `strategy` is a known field of binding creates (CC >= 3.205.0)."""
        return version_tuple(self.api_version) >= MULTIPLE_BINDINGS_VERSION

    @property
    def supports_deployment_options(self) -> bool:
        """Whether a deployment create knows `options` and `canary` (CC >= 3.173.0)."""
        return version_tuple(self.api_version) >= DEPLOYMENT_OPTIONS_VERSION


class Store:
    """All resources by type, plus the options; guarded by `lock`."""

    def __init__(self, options: Options) -> None:
        self.lock = threading.RLock()
        self.options = options
        self.orgs: dict[str, Org] = {}
        self.spaces: dict[str, Space] = {}
        self.apps: dict[str, App] = {}
        self.offerings: dict[str, Offering] = {}
        self.plans: dict[str, Plan] = {}
        self.instances: dict[str, ServiceInstance] = {}
        self.bindings: dict[str, Binding] = {}
        self.jobs: dict[str, Job] = {}
        self.packages: dict[str, Package] = {}
        self.droplets: dict[str, Droplet] = {}
        self.builds: dict[str, Build] = {}
        self.revisions: dict[str, Revision] = {}
        self.processes: dict[str, Process] = {}
        self.deployments: dict[str, Deployment] = {}

    def add(self, resource: Resource) -> Any:
        """Insert a resource into its table; returns it."""
        table = self._table(resource)
        table[resource.guid] = resource
        return resource

    def _table(self, resource: Resource) -> dict[str, Any]:
        tables: dict[type, dict[str, Any]] = {
            Org: self.orgs,
            Space: self.spaces,
            App: self.apps,
            Offering: self.offerings,
            Plan: self.plans,
            ServiceInstance: self.instances,
            Binding: self.bindings,
            Job: self.jobs,
            Package: self.packages,
            Droplet: self.droplets,
            Build: self.builds,
            Revision: self.revisions,
            Process: self.processes,
            Deployment: self.deployments,
        }
        return tables[type(resource)]

    def plan_of(self, si: ServiceInstance) -> Plan | None:
        """The plan of a managed instance."""
        return self.plans.get(si.plan_guid) if si.plan_guid else None

    def offering_of(self, si: ServiceInstance) -> Offering | None:
        """The offering of a managed instance."""
        plan = self.plan_of(si)
        return self.offerings.get(plan.offering_guid) if plan else None

    def app_bindings(self, app_guid: str, si_guid: str) -> list[Binding]:
        """The app's bindings to one instance, oldest first (CC's default order)."""
        found = [
            b
            for b in self.bindings.values()
            if b.type == "app" and b.app_guid == app_guid and b.service_instance_guid == si_guid
        ]
        return sorted(found, key=lambda b: b.seq)

    def web_processes(self, app_guid: str) -> list[Process]:
        """The app's web processes, oldest first (two while a deployment runs)."""
        found = [p for p in self.processes.values() if p.app_guid == app_guid and p.type == "web"]
        return sorted(found, key=lambda p: p.seq)

    def active_deployment(self, app_guid: str) -> Deployment | None:
        """The app's ACTIVE deployment, if any."""
        for dep in self.deployments.values():
            if dep.app_guid == app_guid and dep.value == "ACTIVE":
                return dep
        return None

    def newest_revision(self, app_guid: str) -> Revision | None:
        """The app's newest revision."""
        found = [r for r in self.revisions.values() if r.app_guid == app_guid]
        return max(found, key=lambda r: r.version) if found else None
