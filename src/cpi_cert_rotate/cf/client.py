"""`CfClient`: the Cloud Controller v3 calls a rotation needs, typed in and out.

Lookups, service credential bindings (with `strategy: multiple` and async jobs), app
environment variables and annotations, rolling deployments and the seed's restage. The
transport rules (timeouts, retries, errors, warnings, token refresh) live in `http` and
`auth`, the shared plumbing in `base`; this module only knows paths and shapes
(https://v3-apidocs.cloudfoundry.org). It knows nothing of certificates: binding `parameters` are
passed through as given.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests

from ..errors import CfApiError, CfJobFailed
from .base import (
    MIN_VERSION_BINDING_STRATEGY,
    MIN_VERSION_DEPLOYMENT_OPTIONS,
    CfBase,
    filter_values,
    not_found,
)
from .resources import (
    App,
    Binding,
    BindingListing,
    Build,
    Deployment,
    Org,
    Package,
    ServiceInstance,
    Space,
    SpaceListing,
    parse,
)
from .together import together

__all__ = ["MIN_VERSION_BINDING_STRATEGY", "MIN_VERSION_DEPLOYMENT_OPTIONS", "CfClient"]

logger = logging.getLogger(__name__)

_BINDING_BUSY = "in progress for the service binding"
_EARLIEST = datetime.min.replace(tzinfo=UTC)  # sorts bindings without created_at first

LIST_PER_PAGE = 5000
"""Cloud Controller's largest page (`per_page` 1..5000, app/messages/list_message.rb):
a landscape-wide list is then one call per 5000 resources."""
GUIDS_PER_CALL = 100
"""Guids per `guids=` filter: 100 guids are ~3.7 KB of query, well under the 8 KiB
request line that common proxies (nginx's default buffers) accept."""
_MAX_LIST_PAGES = 1000


class CfClient(CfBase):
    """A Cloud Foundry v3 client for one API endpoint and one set of credentials.

    `CfClient(api_url, auth, *, timeout_s=30.0, poll_cap_s=3.0, user_agent=..., login=...)`
    (`login`: another client's, shared);
    construction does no I/O. `deadline` arguments are absolute `time.monotonic()`
    values. Errors: `CfUnreachable` (no answer), `CfApiError` (an error envelope; 404 for
    lookups that find nothing), `CfJobFailed` (a job ended FAILED), `CfTimeout` (a wait
    missed its deadline). `warnings` holds every Cloud Controller warning seen;
    `root()`, `supports_binding_strategy()`, `authenticate()` and `get_job()` come from
    `CfBase`.
    """

    # -- lookups ------------------------------------------------------------------------

    def find_org(self, name: str) -> Org:
        """The org called `name` (case-insensitive), or a 404 `CfApiError`."""
        missing = f"Org {name!r} not found, or the user cannot see it"
        org = self._find_one("/v3/organizations", name, {}, Org.from_api, missing)
        self._where[org.guid] = f"org {org.name!r}"
        return org

    def find_space(self, org_guid: str, name: str) -> Space:
        """The space `name` of an org (case-insensitive), or a 404 `CfApiError`."""
        where = self._where.get(org_guid, f"org {org_guid}")
        missing = f"Space {name!r} not found in {where}, or the user cannot see it"
        params = {"organization_guids": org_guid}
        space = self._find_one("/v3/spaces", name, params, Space.from_api, missing)
        self._where[space.guid] = f"{where} / space {space.name!r}"
        return space

    def find_app(self, space_guid: str, name: str) -> App:
        """The app `name` in a space (case-insensitive), or a 404 `CfApiError`."""
        missing = f"App {name!r} not found in {self._where.get(space_guid, f'space {space_guid}')}"
        params = {"space_guids": space_guid}
        return self._find_one("/v3/apps", name, params, App.from_api, missing)

    def locate_app(self, org: str, space: str, app: str) -> tuple[Org, Space, App]:
        """Org, space and app by name in one call: `GET /v3/apps?names=APP&include=
        space.organization` (cloud_controller_ng `app/messages/apps_list_message.rb`:
        `include` of `space`, `org`, `space.organization`) lists the apps of that name the
        user can see, each with its space and org; the one in `org`/`space` is picked here.
        Names match as `find_*` match them (the exact spelling first, then case-folded).
        When none is there, the three lookups run one by one for their precise 404.
        """
        orgs: dict[str, Org] = {}
        spaces: dict[str, Space] = {}
        apps: list[App] = []
        params = {"names": filter_values(app), "include": "space.organization"}
        for resources, included in self._page_bodies("/v3/apps", params):
            apps += [parse(App.from_api, raw, "an app", status=200) for raw in resources]
            for raw in included.get("spaces") or ():
                found_space = parse(Space.from_api, raw, "an included space", status=200)
                spaces[found_space.guid] = found_space
            for raw in included.get("organizations") or ():
                found_org = parse(Org.from_api, raw, "an included org", status=200)
                orgs[found_org.guid] = found_org
        candidates: list[tuple[Org, Space, App]] = []
        for found_app in apps:
            in_space = spaces.get(found_app.space_guid or "")
            in_org = orgs.get(in_space.org_guid or "") if in_space is not None else None
            if in_space is not None and in_org is not None:
                candidates.append((in_org, in_space, found_app))
        wanted = (org, space, app)
        exact = [c for c in candidates if tuple(x.name for x in c) == wanted]
        folded = [
            c
            for c in candidates
            if tuple(x.name.lower() for x in c) == tuple(w.lower() for w in wanted)
        ]
        for found_org, found_space, found_app in exact or folded:
            self._where[found_org.guid] = f"org {found_org.name!r}"
            self._where[found_space.guid] = f"org {found_org.name!r} / space {found_space.name!r}"
            return found_org, found_space, found_app
        found_org = self.find_org(org)  # each raises its own 404 with what is missing
        found_space = self.find_space(found_org.guid, space)
        return found_org, found_space, self.find_app(found_space.guid, app)

    def bindings_of_app_named(
        self, app: str, instance: str
    ) -> tuple[list[Binding], list[ServiceInstance]]:
        """The `type=app` bindings of apps named `app` to instances named `instance`,
        oldest first, with those instances: `GET /v3/service_credential_bindings?app_names=
        ..&service_instance_names=..&type=app&include=service_instance`
        (cloud_controller_ng `app/messages/service_credential_binding_list_message.rb`).
        Needs no guid, so it runs beside `locate_app`; the caller keeps the bindings of
        the app it located. An app binds only to instances in or shared into its space, so
        an included instance of that app's bindings is the space's instance by that name;
        with no binding, `find_service_instance` says which instance it is."""
        params = {
            "app_names": filter_values(app),
            "service_instance_names": filter_values(instance),
            "type": "app",
            "include": "service_instance",
        }
        bindings: list[Binding] = []
        instances: dict[str, ServiceInstance] = {}
        for resources, included in self._page_bodies("/v3/service_credential_bindings", params):
            bindings += [parse(Binding.from_api, r, "a binding", status=200) for r in resources]
            for raw in included.get("service_instances") or ():
                found = parse(ServiceInstance.from_api, raw, "an included instance", status=200)
                instances[found.guid] = found
        named = [si for si in instances.values() if si.name == instance]
        return sorted(bindings, key=lambda b: b.created_at or _EARLIEST), named

    def app_bindings_and_app(self, app_guid: str, si_guid: str) -> tuple[list[Binding], App]:
        """`list_app_bindings` with the app itself, metadata included, in the same call
        (`include=app`); the app is read on its own only when there is no binding."""
        params = {
            "app_guids": app_guid,
            "service_instance_guids": si_guid,
            "type": "app",
            "include": "app",
        }
        bindings: list[Binding] = []
        app: App | None = None
        for resources, included in self._page_bodies("/v3/service_credential_bindings", params):
            bindings += [parse(Binding.from_api, r, "a binding", status=200) for r in resources]
            for raw in included.get("apps") or ():
                found = parse(App.from_api, raw, "an included app", status=200)
                app = found if found.guid == app_guid else app
        ordered = sorted(bindings, key=lambda b: b.created_at or _EARLIEST)
        return ordered, app if app is not None else self.get_app(app_guid)

    def find_service_instance(self, space_guid: str, name: str) -> ServiceInstance:
        """The service instance `name` in (or shared into) a space; names are case-sensitive."""
        where = self._where.get(space_guid, f"space {space_guid}")
        missing = (
            f"Service instance {name!r} not found in {where} (service instance names are "
            "case-sensitive)"
        )
        params = {"space_guids": space_guid}
        build = ServiceInstance.from_api
        return self._find_one(
            "/v3/service_instances", name, params, build, missing, exact_case=True
        )

    def find_service_instance_named(self, space_guid: str, name: str) -> ServiceInstance | None:
        """The instance called exactly `name` in the space, or None (no 404)."""
        params = {"names": filter_values(name), "space_guids": space_guid}
        found = self._list("/v3/service_instances", params, ServiceInstance.from_api)
        return next((si for si in found if si.name == name and si.space_guid == space_guid), None)

    def get_service_instance(self, guid: str) -> ServiceInstance | None:
        """The instance, or None when it does not exist (any more)."""
        try:
            return self._get(
                f"/v3/service_instances/{guid}", ServiceInstance.from_api, "a service instance"
            )
        except CfApiError as error:
            if error.status == 404:
                return None
            raise

    def create_user_provided_instance(
        self, space_guid: str, name: str, *, tags: tuple[str, ...] = ()
    ) -> ServiceInstance:
        """Create a user-provided instance (no broker: 201 at once); never replayed.

        Names are unique in a space, so a second create of the same name is refused with
        422 "The service instance name is taken: NAME." (a `CfApiError`): a true
        create-if-absent.
        """
        body = {
            "type": "user-provided",
            "name": name,
            "tags": list(tags),
            "relationships": {"space": {"data": {"guid": space_guid}}},
        }
        response = self._call("POST", "/v3/service_instances", json_body=body)
        return self._parse(response, ServiceInstance.from_api, "a service instance")

    def delete_user_provided_instance(self, guid: str) -> bool:
        """Delete a user-provided instance (204, synchronous); False when it was gone."""
        try:
            self._call("DELETE", f"/v3/service_instances/{guid}")
        except CfApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    def get_app(self, app_guid: str) -> App:
        """The app with its current state and metadata."""
        return self._get(f"/v3/apps/{app_guid}", App.from_api, "an app")

    # -- service credential bindings ----------------------------------------------------

    def list_app_bindings(self, app_guid: str, si_guid: str) -> list[Binding]:
        """Every `type=app` binding of the app to the instance, all pages, oldest first."""
        params = {"app_guids": app_guid, "service_instance_guids": si_guid, "type": "app"}
        bindings = self._list("/v3/service_credential_bindings", params, Binding.from_api)
        return sorted(bindings, key=lambda b: b.created_at or _EARLIEST)

    def get_binding(self, guid: str) -> Binding | None:
        """The binding, or None when it does not exist (any more)."""
        try:
            return self._get(
                f"/v3/service_credential_bindings/{guid}", Binding.from_api, "a binding"
            )
        except CfApiError as error:
            if error.status == 404:
                return None
            raise

    def create_app_binding(
        self,
        app_guid: str,
        si_guid: str,
        *,
        name: str | None,
        parameters: Mapping[str, Any],
        strategy: str | None,
        deadline: float,
    ) -> Binding:
        """Bind the app to the instance with broker `parameters`; wait until it succeeded.

        The POST is never replayed (a second binding could result). A managed instance
        answers 202 with a job, which is polled to COMPLETE; FAILED raises `CfJobFailed`
        with the broker's error and the new binding's guid. A 422 (already bound, too many
        bindings, unknown field 'strategy', ...) is raised as `CfApiError` with the text.
        """
        body: dict[str, Any] = {
            "type": "app",
            "relationships": {
                "app": {"data": {"guid": app_guid}},
                "service_instance": {"data": {"guid": si_guid}},
            },
            "parameters": dict(parameters),
        }
        if name is not None:
            body["name"] = name
        if strategy is not None:
            body["strategy"] = strategy
        path = "/v3/service_credential_bindings"
        sent = time.monotonic()
        response = self._call("POST", path, json_body=body)
        if response.status_code == 201:  # user-provided instance: bound at once
            return self._parse(response, Binding.from_api, "the new binding")
        job = self._wait_job(
            self._job_guid(response, path), deadline, "creating the binding", started=sent
        )
        guid = job.resource_guid or self._newest_binding_guid(app_guid, si_guid)
        binding: Binding | None = None
        if guid:  # its details are read at once too: the test step needs its URL next
            binding, _ = together(lambda: self.get_binding(guid), lambda: self._prefetch(guid))
        if binding is None:
            raise not_found("the binding created by the job is gone", path)
        if not binding.succeeded:
            description = self._http.redact(binding.description or "")
            raise CfJobFailed(
                f"creating the binding ended {binding.operation} {binding.state}: "
                f"{description or 'no description'}",
                job_guid=job.guid,
                binding_guid=binding.guid,
                detail=description,
            )
        return binding

    def delete_binding(self, guid: str, *, deadline: float) -> None:
        """Delete a binding and wait until it is gone; a missing binding counts as deleted."""
        path = f"/v3/service_credential_bindings/{guid}"
        for attempt in (1, 2):
            sent = time.monotonic()
            try:
                response = self._call("DELETE", path)
            except CfApiError as error:
                if error.status == 404:
                    return
                if error.status == 422 and _BINDING_BUSY in error.detail and attempt == 1:
                    # A create or delete is running (perhaps our own, replayed after a 502).
                    if self._wait_binding_settled(guid, deadline) is None:
                        return
                    continue
                raise
            if response.status_code == 202:
                job_guid = self._job_guid(response, path)
                self._wait_job(job_guid, deadline, "deleting the binding", started=sent)
            return

    def binding_credentials(self, guid: str) -> dict[str, Any]:
        """The binding's `credentials` (broker-defined, so the one dict that leaves `cf`).

        Read once per binding: a binding's credentials never change (cloud_controller_ng
        `app/messages/service_credential_binding_update_message.rb` allows metadata only),
        so a second read under the lock, or the test step's, costs no call. The copies
        live in this client's memory and go with `close()`.
        """
        known = self._credentials.get(guid)
        if known is not None:
            return dict(known)
        response = self._call("GET", f"/v3/service_credential_bindings/{guid}/details")
        body = self._json(response, "binding details")
        credentials = body.get("credentials") if isinstance(body, dict) else None
        if not isinstance(credentials, dict):
            raise CfApiError(
                "binding details carry no credentials object",
                status=response.status_code,
                method="GET",
                path=f"/v3/service_credential_bindings/{guid}/details",
            )
        self._credentials[guid] = dict(credentials)
        return credentials

    def _prefetch(self, guid: str) -> None:
        """Read a new binding's credentials now (a failure is the later reader's to see)."""
        try:
            self.binding_credentials(guid)
        except CfApiError as error:
            logger.debug("binding %s: details not readable yet (%s)", guid, error.status)

    def close(self) -> None:
        """Close pooled connections and forget the credentials read."""
        self._credentials.clear()
        super().close()

    # -- environment variables and metadata ----------------------------------------------

    def get_env_vars(self, app_guid: str) -> dict[str, str]:
        """The app's user-provided environment variables."""
        response = self._call("GET", f"/v3/apps/{app_guid}/environment_variables")
        return self._vars(response)

    def patch_env_vars(self, app_guid: str, values: Mapping[str, str | None]) -> dict[str, str]:
        """Merge `values` in one PATCH (None deletes); returns all variables after it.

        Idempotent, so retried on 502/503/504. Takes effect on the next restart/deployment.
        """
        response = self._call(
            "PATCH", f"/v3/apps/{app_guid}/environment_variables", json_body={"var": dict(values)}
        )
        return self._vars(response)

    def patch_app_annotations(self, app_guid: str, annotations: Mapping[str, str | None]) -> App:
        """Merge annotations into the app's metadata (None deletes); returns the app."""
        body = {"metadata": {"annotations": dict(annotations)}}
        response = self._call("PATCH", f"/v3/apps/{app_guid}", json_body=body)
        return self._parse(response, App.from_api, "an app")

    # -- deployments --------------------------------------------------------------------

    def create_deployment(
        self, app_guid: str, *, max_in_flight: int = 1, droplet_guid: str | None = None
    ) -> Deployment:
        """Start a rolling deployment (current droplet unless given); not replayed.

        `options` goes only with a `max_in_flight` other than 1: Cloud Controller knows it
        from API 3.173.0 (`MIN_VERSION_DEPLOYMENT_OPTIONS`), the engine checks that first.
        """
        body: dict[str, Any] = {
            "strategy": "rolling",
            "relationships": {"app": {"data": {"guid": app_guid}}},
        }
        if max_in_flight != 1:
            body["options"] = {"max_in_flight": max_in_flight}
        if droplet_guid:
            body["droplet"] = {"guid": droplet_guid}
        response = self._call("POST", "/v3/deployments", json_body=body)
        return self._parse(response, Deployment.from_api, "a deployment")

    def get_deployment(self, guid: str) -> Deployment:
        """The deployment's current state and reason."""
        return self._get(f"/v3/deployments/{guid}", Deployment.from_api, "a deployment")

    def list_active_deployments(self, app_guid: str) -> list[Deployment]:
        """The app's deployments still ACTIVE (rolling, or waiting to be cancelled)."""
        params = {"app_guids": app_guid, "status_values": "ACTIVE"}
        return self._list("/v3/deployments", params, Deployment.from_api)

    def list_deployed(self, app_guid: str) -> list[Deployment]:
        """The app's deployments that ended DEPLOYED (every instance on its droplet and
        env; cloud_controller_ng `app/messages/deployments_list_message.rb`)."""
        params = {"app_guids": app_guid, "status_reasons": "DEPLOYED"}
        return self._list("/v3/deployments", params, Deployment.from_api)

    def wait_deployment(
        self,
        guid: str,
        *,
        deadline: float,
        started: float | None = None,
        check: Callable[[], None] | None = None,
        instances: int | None = None,
        max_in_flight: int = 1,
        process_guid: str | None = None,
    ) -> Deployment:
        """Poll until FINALIZED and return it (check `.succeeded`); `CfTimeout` at the deadline.

        `started`: when the create was sent; `check` runs before each poll. With the app's
        web `instances` and the deployment's new web process known, the deployment is
        `instances / max_in_flight` batches, and each poll also counts the new process's
        RUNNING instances (at once, one round trip): the batches seen done so far say how
        long one takes, and the polls aim at the next batch's end, the last one's included,
        so its end is seen about when it comes whatever the number of instances.
        (`status.details.last_successful_healthcheck` is given to the second only, so two
        batches can look like one.)
        """
        batch = max(max_in_flight, 1)
        steps = math.ceil(instances / batch) if instances else 1
        if steps > 1 and process_guid:
            polled, _ = self._poll(
                lambda: together(
                    lambda: self.get_deployment(guid), lambda: self.running(process_guid)
                ),
                lambda pair: pair[0].finalized,
                deadline=deadline,
                what="the rolling deployment",
                guid=guid,
                started=started,
                check=check,
                progress=lambda pair: min(pair[1] // batch, steps),
                steps=steps,
            )
            deployment: Deployment = polled
            return deployment
        return self._poll(
            lambda: self.get_deployment(guid),
            lambda d: d.finalized,
            deadline=deadline,
            what="the rolling deployment",
            guid=guid,
            started=started,
            check=check,
        )

    def running(self, process_guid: str) -> int:
        """How many instances of a process are RUNNING (`GET /v3/processes/:guid/stats`);
        0 when it cannot be read (it is only a hint for a wait)."""
        try:
            body = self._json(self._call("GET", f"/v3/processes/{process_guid}/stats"), "stats")
        except CfApiError:
            return 0
        resources = body.get("resources") if isinstance(body, dict) else None
        return sum(
            1 for r in resources or () if isinstance(r, dict) and r.get("state") == "RUNNING"
        )

    def web_instances(self, app_guid: str) -> int | None:
        """How many web instances the app runs (`GET /v3/processes?app_guids=..&types=web`,
        cloud_controller_ng `app/messages/processes_list_message.rb`); None when unknown.
        A rolling deployment replaces them `max_in_flight` at a time."""
        params = {"app_guids": app_guid, "types": "web"}
        try:
            counts = [
                raw.get("instances")
                for resources, _ in self._page_bodies("/v3/processes", params)
                for raw in resources
                if isinstance(raw, dict)
            ]
        except CfApiError as error:
            logger.debug("web instances of %s not readable (%s)", app_guid, error.status)
            return None
        numbers = [c for c in counts if isinstance(c, int)]
        return max(numbers) if numbers else None

    def cancel_deployment(self, guid: str) -> None:
        """Cancel an active deployment; one that already finalized is left as it is."""
        try:
            self._call("POST", f"/v3/deployments/{guid}/actions/cancel")
        except CfApiError as error:
            if error.status == 422 and self.get_deployment(guid).finalized:
                return
            raise

    # -- the seed's restage (downtime; the baseline strategy) ----------------------------

    def stop_app(self, app_guid: str) -> App:
        """Stop every instance (downtime)."""
        response = self._call("POST", f"/v3/apps/{app_guid}/actions/stop")
        return self._parse(response, App.from_api, "an app")

    def start_app(self, app_guid: str) -> App:
        """Start the app on its current droplet."""
        response = self._call("POST", f"/v3/apps/{app_guid}/actions/start")
        return self._parse(response, App.from_api, "an app")

    def restage(self, app_guid: str, *, deadline: float) -> None:
        """What `cf restage` does: stage the newest package, stop, set the droplet, start.

        The app is down from the stop until its instances run again (that is the point of
        measuring it). Staging failure raises `CfJobFailed` before the app is stopped.
        """
        packages = self._list(
            "/v3/packages",
            {"app_guids": app_guid, "states": "READY", "order_by": "-created_at"},
            Package.from_api,
        )
        if not packages:
            raise not_found("the app has no READY package to stage", "/v3/packages")
        response = self._call(
            "POST", "/v3/builds", json_body={"package": {"guid": packages[0].guid}}
        )
        build = self._parse(response, Build.from_api, "a build")
        build = self._poll(
            lambda: self._get(f"/v3/builds/{build.guid}", Build.from_api, "a build"),
            lambda b: b.state in ("STAGED", "FAILED"),
            deadline=deadline,
            what="staging",
            guid=build.guid,
        )
        if build.state == "FAILED" or not build.droplet_guid:
            raise CfJobFailed(
                f"staging failed: {build.error or 'no error given'}", detail=build.error or ""
            )
        self.stop_app(app_guid)
        droplet = {"data": {"guid": build.droplet_guid}}
        self._call("PATCH", f"/v3/apps/{app_guid}/relationships/current_droplet", json_body=droplet)
        self.start_app(app_guid)
        self._wait_web_running(app_guid, deadline)

    # -- helpers --------------------------------------------------------------------------

    def _vars(self, response: requests.Response) -> dict[str, str]:
        body = self._json(response, "environment variables")
        variables = body.get("var") if isinstance(body, dict) else None
        if not isinstance(variables, dict):
            raise CfApiError(
                "environment variables answer has no `var` object", status=response.status_code
            )
        return {str(k): v for k, v in variables.items() if isinstance(v, str)}

    def _newest_binding_guid(self, app_guid: str, si_guid: str) -> str | None:
        bindings = self.list_app_bindings(app_guid, si_guid)
        return bindings[-1].guid if bindings else None

    def _wait_binding_settled(self, guid: str, deadline: float) -> Binding | None:
        """Wait until no operation runs on the binding; None when it is gone."""
        return self._poll(
            lambda: self.get_binding(guid),
            lambda b: b is None or b.state not in ("initial", "in progress"),
            deadline=deadline,
            what="the binding's running operation",
            guid=guid,
        )

    def _wait_web_running(self, app_guid: str, deadline: float) -> None:
        """After a start: wait until every web instance is RUNNING (as `cf restage` does)."""
        path = f"/v3/apps/{app_guid}/processes/web/stats"

        def states() -> list[str]:
            body = self._json(self._call("GET", path), "process stats")
            return [str(r.get("state")) for r in body.get("resources") or () if isinstance(r, dict)]

        try:
            self._poll(
                states,
                lambda s: bool(s) and all(state == "RUNNING" for state in s),
                deadline=deadline,
                what="the app's instances to start",
                guid=app_guid,
            )
        except CfApiError as error:
            if error.status != 404:
                raise
            logger.debug("no process stats here (404); not waiting for instances")

    # -- landscape-wide lists (the fleet scan) ----------------------------------------------
    # Each of these is one call per page of LIST_PER_PAGE resources, whatever the number
    # of apps: the parameters are those of cloud_controller_ng's list messages
    # (app/messages/service_credential_binding_list_message.rb, spaces_list_message.rb,
    # orgs_list_message.rb).

    def list_app_bindings_of_plan(self, offering: str, plan: str) -> BindingListing:
        """Every `type=app` binding to an instance of `offering`/`plan` the user can see,
        with the bound apps (metadata included) and the instances from the same pages
        (`include=app,service_instance`). Offering and plan names are matched exactly."""
        params = {
            "type": "app",
            "service_offering_names": filter_values(offering),
            "service_plan_names": filter_values(plan),
            "include": "app,service_instance",
        }
        path = "/v3/service_credential_bindings"
        bindings: list[Binding] = []
        apps: dict[str, App] = {}
        instances: dict[str, ServiceInstance] = {}
        for resources, included in self._page_bodies(path, params):
            bindings += [parse(Binding.from_api, r, "a binding", status=200) for r in resources]
            for raw in included.get("apps") or ():
                app = parse(App.from_api, raw, "an included app", status=200)
                apps[app.guid] = app
            for raw in included.get("service_instances") or ():
                instance = parse(ServiceInstance.from_api, raw, "an included instance", status=200)
                instances[instance.guid] = instance
        return BindingListing(tuple(bindings), apps, instances)

    def list_orgs(self, names: Sequence[str]) -> list[Org]:
        """The orgs with these names (case-insensitive, as Cloud Controller matches them)."""
        if not names:
            return []
        params = {"names": filter_values(*names)}
        return [
            parse(Org.from_api, r, "an org", status=200)
            for resources, _ in self._page_bodies("/v3/organizations", params)
            for r in resources
        ]

    def list_spaces(
        self, *, guids: Sequence[str] = (), org_guids: Sequence[str] = ()
    ) -> SpaceListing:
        """Spaces by guid or by org, with their orgs (`include=organization`).

        Long guid lists are split over several calls (GUIDS_PER_CALL each) so that no
        request line outgrows what proxies in front of Cloud Controller accept.
        """
        spaces: dict[str, Space] = {}
        orgs: dict[str, Org] = {}
        for key, values in (("guids", guids), ("organization_guids", org_guids)):
            unique = list(dict.fromkeys(values))
            for start in range(0, len(unique), GUIDS_PER_CALL):
                chunk = ",".join(unique[start : start + GUIDS_PER_CALL])
                params = {key: chunk, "include": "organization"}
                for resources, included in self._page_bodies("/v3/spaces", params):
                    for raw in resources:
                        space = parse(Space.from_api, raw, "a space", status=200)
                        spaces[space.guid] = space
                    for raw in included.get("organizations") or ():
                        org = parse(Org.from_api, raw, "an included org", status=200)
                        orgs[org.guid] = org
        return SpaceListing(tuple(spaces.values()), orgs)

    def _page_bodies(
        self, path: str, params: Mapping[str, str]
    ) -> Iterator[tuple[list[Any], dict[str, Any]]]:
        """(resources, included) of every page, LIST_PER_PAGE at a time, following
        `pagination.next` re-rooted on the API URL (the token goes nowhere else)."""
        url: str | None = self.api_url + path
        query: Mapping[str, str | int] | None = {**params, "per_page": LIST_PER_PAGE}
        for _ in range(_MAX_LIST_PAGES):
            if url is None:
                return
            response = self._http.request("GET", url, bearer=self._auth, params=query)
            body = self._json(response, f"a list of {path}")
            resources, included, next_href = parse(
                _page_with_included, body, f"a list of {path}", status=200
            )
            yield resources, included
            url, query = (self._same_origin(next_href), None) if next_href else (None, None)
        raise CfApiError(f"more than {_MAX_LIST_PAGES} pages listing {path}", status=200, path=path)

    def list_user_provided_instances(self, space_guids: Sequence[str]) -> list[ServiceInstance]:
        """The user-provided instances of these spaces (with their tags), for the fleet
        scan's lock check: `GET /v3/service_instances?type=user-provided&space_guids=...`,
        GUIDS_PER_CALL spaces a call, LIST_PER_PAGE a page (cloud_controller_ng
        `app/messages/service_instances_list_message.rb`: `type`, `space_guids`). A
        user-provided instance cannot be shared (`app/actions/service_instance_share.rb`),
        so each one listed lives in one of the spaces."""
        unique = list(dict.fromkeys(space_guids))
        found: dict[str, ServiceInstance] = {}
        for start in range(0, len(unique), GUIDS_PER_CALL):
            params = {
                "type": "user-provided",
                "space_guids": ",".join(unique[start : start + GUIDS_PER_CALL]),
            }
            for resources, _ in self._page_bodies("/v3/service_instances", params):
                for raw in resources:
                    instance = parse(
                        ServiceInstance.from_api, raw, "a service instance", status=200
                    )
                    found[instance.guid] = instance
        return list(found.values())


def _page_with_included(data: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any], str | None]:
    resources = data["resources"]
    if not isinstance(resources, list):
        raise TypeError("resources is not a list")
    included = data.get("included") or {}
    if not isinstance(included, dict):
        raise TypeError("included is not an object")
    next_link = (data.get("pagination") or {}).get("next") or {}
    href = next_link.get("href") if isinstance(next_link, Mapping) else None
    return resources, included, href if isinstance(href, str) and href else None
