"""The cf CLI v8's HTTP requests, replayed from its source against the sandbox.

Read from cloudfoundry/cli at tag v8.18.4 (commit 3fcd823; HEAD differs only in UI text
and module paths for these files). Every request below names the file that sends it.
How the CLI sends requests:
- `api/cloudcontroller/ccv3/request.go` `newHTTPRequest`: `Accept: application/json`,
  `Content-Type: application/json` (GETs too), a `User-Agent`; queries are Go's
  `url.Values.Encode()` (keys sorted, values query-escaped, so "," becomes %2C) of
  `ccv3/query.go` `FormatQueryParameters` (a name's own commas are pre-encoded);
- `api/cloudcontroller/wrapper/uaa_authentication.go`: `Authorization: bearer <token>`
  once logged in;
- `api/cloudcontroller/ccv3/requester.go` `MakeListRequest` and `paginate.go`: a list
  follows `pagination.next.href`, unless the query names a `page`;
- `api/uaa/request.go`: UAA calls send `Accept: application/json`, `Connection: close`,
  each on a connection of its own (`DefaultUAADisableKeepAlives`, `util/configv3/defaults.go`);
- `api/cloudcontroller/ccv3/job.go` `PollJobToEventStream` and
  `command/v7/shared/result_waiter.go` `WaitForResult`: poll the job until COMPLETE or
  FAILED, or return early at POLLING (no `--wait`).
The CLI's pauses (`DefaultPollingInterval`, 3 s, `util/configv3/defaults.go`) are
shortened to `poll_s` (bench/overhead.py replays them at 3 s); the requests are the same.
`PollJobToEventStream` sleeps once more after the job's last event before it closes the
stream that `WaitForResult` reads to its end, and so does the replay.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from cf_sandbox import Landscape
from cf_sandbox.memtls import client_context, session

USER_AGENT = "cf/8.18.4+3fcd823.2026-06-29 (go1.24.4; amd64 linux)"
_POLL_S = 0.05
_DEADLINE_S = 30.0
# Go's time.Time{}.UnixNano(): go-log-cache `client.go` sends it as `start_time` when the
# CLI asks for the newest envelope (`actor/sharedaction/logging.go` latestEnvelopeTimestamp).
_ZERO_TIME_NS = -6795364578871345152


def go_query(pairs: list[tuple[str, str]]) -> str:
    """`url.Values.Encode()`: sorted by key, `QueryEscape`d (space -> +, "," -> %2C)."""
    return urlencode(sorted(pairs))


@dataclass
class Exchange:
    """One request the CLI made and what came back."""

    source: str
    method: str
    target: str
    status: int

    def line(self) -> str:
        """`GET /v3/apps?names=x -> 200` (no host)."""
        return f"{self.method} {self.target} -> {self.status}"


@dataclass
class CfCli:
    """The CLI's state after `cf login`: target, token and what it has sent."""

    ls: Landscape
    poll_s: float = _POLL_S
    """The CLI's pause between polls (3 s in the CLI, `DefaultPollingInterval`)."""
    api_url: str = ""
    """Where CC is reached (default: the landscape's own URL)."""
    token: str | None = None
    org_guid: str = ""
    space_guid: str = ""
    root: dict[str, Any] = field(default_factory=dict)
    transcript: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = session(client_context(self.ls.ca_pem))

    # -- transport ----------------------------------------------------------------------

    def _send(
        self,
        source: str,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        data: bytes | None,
        expect: tuple[int, ...],
    ) -> requests.Response:
        if headers.get("Connection") == "close":  # a connection of its own, closed after
            with session(client_context(self.ls.ca_pem)) as once:
                resp = once.request(method, url, headers=headers, data=data, timeout=10)
        else:
            resp = self.http.request(method, url, headers=headers, data=data, timeout=10)
        target = url.split("//", 1)[1].split("/", 1)[1]
        self.transcript.append(Exchange(source, method, "/" + target, resp.status_code))
        assert resp.status_code in expect, f"{method} {url}: {resp.status_code} {resp.text}"
        return resp

    def cc(
        self,
        source: str,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (200,),
        base: str | None = None,
    ) -> requests.Response:
        """A ccv3 request (ccv3/request.go headers; the UAA wrapper's bearer token)."""
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        if self.token:
            headers["Authorization"] = self.token
        url = (
            path
            if path.startswith("https://")
            else f"{base or self.api_url or self.ls.api_url}{path}"
        )
        if query:
            url += "?" + go_query(query)
        data = json.dumps(body).encode() if body is not None else None
        return self._send(source, method, url, headers=headers, data=data, expect=expect)

    def cc_list(
        self, source: str, path: str, query: list[tuple[str, str]] | None = None
    ) -> list[dict[str, Any]]:
        """`MakeListRequest`: every page, or only the one asked for (`page=` given)."""
        page = self.cc(source, "GET", path, query=query).json()
        resources = list(page["resources"])
        specific = any(key == "page" for key, _ in query or [])
        while not specific and (page.get("pagination") or {}).get("next"):
            page = self.cc(
                "api/cloudcontroller/ccv3/paginate.go", "GET", page["pagination"]["next"]["href"]
            ).json()
            resources += page["resources"]
        return resources

    def poll_job(self, location: str) -> str:
        """`PollJobToEventStream` + `WaitForResult` without `--wait`."""
        end = time.monotonic() + _DEADLINE_S
        while True:
            job = self.cc("api/cloudcontroller/ccv3/job.go", "GET", location).json()
            if job["state"] == "FAILED":
                first = job["errors"][0]  # job.Errors()[0]: CC always sends one
                raise AssertionError(f"job failed: {first['detail']}")
            if job["state"] in ("COMPLETE", "POLLING"):
                time.sleep(self.poll_s)  # the stream closes one pause after its last event
                return str(job["state"])
            assert time.monotonic() < end, "job still PROCESSING"
            time.sleep(self.poll_s)

    # -- cf login -a API -u USER -p PASSWORD --origin ORIGIN -o ORG -s SPACE -------------

    def login(self, username: str, password: str, origin: str, org: str, space: str) -> None:
        """`command/v7/login_command.go` `Execute`."""
        # targetAPI -> actor/v7action/target.go SetTarget -> ccv3/root.go GetRoot (no token)
        self.root = self.cc("api/cloudcontroller/ccv3/root.go", "GET", "/").json()
        links = self.root["links"]
        version = links["cloud_controller_v3"]["meta"]["version"]
        assert tuple(int(p) for p in version.split(".")) >= (3, 99, 0)  # ccversion minimum
        login = links["login"]["href"]
        # authenticate -> actor/v7action/auth.go GetLoginPrompts -> api/uaa/prompts.go
        prompts = self._uaa("api/uaa/prompts.go", "GET", f"{login}/login").json()["prompts"]
        assert prompts["username"][0] == "text"
        assert prompts["password"][0] == "password"
        extra = {k: v for k, v in prompts.items() if k not in ("username", "password")}
        assert all(v[0] == "password" for v in extra.values()), "the CLI would prompt for more"
        credentials = {"username": username, "password": password}
        # actor/v7action/auth.go Authenticate -> api/uaa/auth.go: form body, Basic cf:,
        # login_hint in the *query*
        form = urlencode(sorted({"grant_type": "password", **credentials}.items()))
        hint = go_query([("login_hint", json.dumps({"origin": origin}, separators=(",", ":")))])
        token = self._uaa(
            "api/uaa/auth.go",
            "POST",
            f"{login}/oauth/token?{hint}",
            data=form.encode(),
            basic=("cf", ""),
        ).json()
        self.token = f"bearer {token['access_token']}"
        assert token.get("refresh_token")
        # GetOrganizationByName -> actor/v7action/organization.go
        [found_org] = self.cc_list(
            "actor/v7action/organization.go",
            "/v3/organizations",
            [("names", org), ("per_page", "1"), ("page", "1")],
        )
        self.org_guid = found_org["guid"]
        # GetSpaceByNameAndOrganization -> actor/v7action/space.go
        [found_space] = self.cc_list(
            "actor/v7action/space.go",
            "/v3/spaces",
            [
                ("names", space),
                ("organization_guids", self.org_guid),
                ("per_page", "1"),
                ("page", "1"),
            ],
        )
        self.space_guid = found_space["guid"]

    def _uaa(
        self,
        source: str,
        method: str,
        url: str,
        *,
        data: bytes | None = None,
        basic: tuple[str, str] | None = None,
    ) -> requests.Response:
        headers = {"Accept": "application/json", "Connection": "close", "User-Agent": USER_AGENT}
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if basic is not None:
            import base64

            pair = f"{basic[0]}:{basic[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return self._send(source, method, url, headers=headers, data=data, expect=(200,))

    # -- lookups the commands share -------------------------------------------------------

    def app_by_name(self, name: str) -> dict[str, Any]:
        """actor/v7action/application.go GetApplicationByNameAndSpace (no paging params)."""
        [app] = self.cc_list(
            "actor/v7action/application.go",
            "/v3/apps",
            [("names", name), ("space_guids", self.space_guid)],
        )
        return app

    def app_by_name_ccv3(self, name: str) -> dict[str, Any]:
        """api/cloudcontroller/ccv3/application.go GetApplicationByNameAndSpace."""
        [app] = self.cc_list(
            "api/cloudcontroller/ccv3/application.go",
            "/v3/apps",
            [("names", name), ("space_guids", self.space_guid), ("per_page", "1"), ("page", "1")],
        )
        return app

    def service_instance_by_name(self, name: str) -> dict[str, Any]:
        """api/cloudcontroller/ccv3/service_instance.go GetServiceInstanceByNameAndSpace."""
        [si] = self.cc_list(
            "api/cloudcontroller/ccv3/service_instance.go",
            "/v3/service_instances",
            [("names", name), ("space_guids", self.space_guid), ("per_page", "1"), ("page", "1")],
        )
        return si

    # -- cf bind-service APP SI -c PARAMS [--strategy multiple] ---------------------------

    def bind_service(
        self, app: str, instance: str, parameters: dict[str, Any], strategy: str | None = None
    ) -> str:
        """`command/v7/bind_service_command.go` -> actor/v7action/service_app_binding.go
        `CreateServiceAppBinding`; returns "COMPLETE", "POLLING" or "already bound"."""
        si = self.service_instance_by_name(instance)
        found = self.app_by_name_ccv3(app)
        # resources/service_credential_binding_resource.go (jsonry; empty fields omitted)
        body: dict[str, Any] = {
            "type": "app",
            "relationships": {
                "service_instance": {"data": {"guid": si["guid"]}},
                "app": {"data": {"guid": found["guid"]}},
            },
            "parameters": parameters,
        }
        if strategy:
            body["strategy"] = strategy
        resp = self.cc(
            "api/cloudcontroller/ccv3/service_credential_binding.go",
            "POST",
            "/v3/service_credential_bindings",
            body=body,
            expect=(201, 202, 422),
        )
        if resp.status_code == 422:
            # ccv3/errors.go: this text is ResourceAlreadyExistsError, which the command
            # reports as "already bound" and exits 0; any other 422 is a failure.
            detail = resp.json()["errors"][0]["detail"]
            assert "The app is already bound to the service instance" in detail, detail
            return "already bound"
        location = resp.headers.get("Location")
        return self.poll_job(location) if location else "COMPLETE"

    # -- cf unbind-service APP SI -----------------------------------------------------------

    def unbind_service(self, app: str, instance: str) -> list[str]:
        """`command/v7/unbind_service_command.go`: every binding of app and instance."""
        si = self.service_instance_by_name(instance)
        found = self.app_by_name_ccv3(app)
        # service_app_binding.go getServiceAppBindings: type, app_guids, service_instance_guids
        bindings = self.cc_list(
            "actor/v7action/service_app_binding.go",
            "/v3/service_credential_bindings",
            [("type", "app"), ("app_guids", found["guid"]), ("service_instance_guids", si["guid"])],
        )
        states = []
        for binding in bindings:
            resp = self.cc(
                "api/cloudcontroller/ccv3/service_credential_binding.go",
                "DELETE",
                f"/v3/service_credential_bindings/{binding['guid']}",
                expect=(202, 204),
            )
            location = resp.headers.get("Location")
            states.append(self.poll_job(location) if location else "COMPLETE")
        return states

    # -- cf set-env / cf env -----------------------------------------------------------------

    def set_env(self, app: str, name: str, value: str) -> dict[str, Any]:
        """`command/v7/set_env_command.go` -> actor/v7action/environment_variable.go."""
        found = self.app_by_name(app)
        resp = self.cc(
            "api/cloudcontroller/ccv3/environment_variables.go",
            "PATCH",
            f"/v3/apps/{found['guid']}/environment_variables",
            body={"var": {name: value}},  # resources/environment_variables_resource.go
        )
        return dict(resp.json())

    def env(self, app: str) -> dict[str, Any]:
        """`command/v7/env_command.go` -> GetEnvironmentVariablesByApplicationNameAndSpace."""
        found = self.app_by_name(app)
        resp = self.cc(
            "api/cloudcontroller/ccv3/environment.go", "GET", f"/v3/apps/{found['guid']}/env"
        )
        document = dict(resp.json())
        # ccv3/environment.go decodes these five objects
        for key in (
            "application_env_json",
            "environment_variables",
            "running_env_json",
            "staging_env_json",
            "system_env_json",
        ):
            assert isinstance(document[key], dict), key
        return document

    # -- cf restage APP (no --strategy: stop, stage, start) ---------------------------------

    def restage(self, app: str) -> dict[str, Any]:
        """`command/v7/restage_command.go` -> `command/v7/shared/app_stager.go` StageAndStart."""
        found = self.app_by_name(app)
        # actor/v7action/package.go GetNewestReadyPackageForApplication
        [package] = self.cc_list(
            "actor/v7action/package.go",
            "/v3/packages",
            [
                ("app_guids", found["guid"]),
                ("states", "READY"),
                ("order_by", "-created_at"),
                ("per_page", "1"),
                ("page", "1"),
            ],
        )
        # StageApp: actor/v7action/logging.go GetStreamingLogsForApplicationByNameAndSpace
        self.app_by_name(app)
        started_ns = time.time_ns()
        self._newest_log(found["guid"])
        # actor/v7action/build.go StagePackage
        self.app_by_name(app)  # GetApplicationsByNamesAndSpace
        self.cc_list(
            "actor/v7action/build.go",
            "/v3/packages",
            [
                ("guids", package["guid"]),
                ("app_guids", found["guid"]),
                ("per_page", "1"),
                ("page", "1"),
            ],
        )
        build = self.cc(
            "api/cloudcontroller/ccv3/build.go",
            "POST",
            "/v3/builds",
            body={"package": {"guid": package["guid"]}},  # resources/build_resource.go
            expect=(201,),
        ).json()
        end = time.monotonic() + _DEADLINE_S
        while build["state"] == "STAGING":
            assert time.monotonic() < end, "still staging"
            time.sleep(self.poll_s)
            build = self.cc(
                "api/cloudcontroller/ccv3/build.go", "GET", f"/v3/builds/{build['guid']}"
            ).json()
        assert build["state"] == "STAGED", build
        staging_log = self._walk_logs(found["guid"], started_ns)
        self._start_without_strategy(found, build["droplet"]["guid"])
        return {"staging_log": staging_log, "summary": self.app_summary(app)}

    def _start_without_strategy(self, app: dict[str, Any], droplet_guid: str) -> None:
        """`shared/app_stager.go` StartApp without a strategy: stop, droplet, start, poll."""
        guid = app["guid"]
        if app["state"] == "STARTED":
            self.cc(
                "api/cloudcontroller/ccv3/application.go", "POST", f"/v3/apps/{guid}/actions/stop"
            )
        self.cc(
            "api/cloudcontroller/ccv3/relationship.go",
            "PATCH",
            f"/v3/apps/{guid}/relationships/current_droplet",
            body={"data": {"guid": droplet_guid}},
        )
        self.cc("api/cloudcontroller/ccv3/application.go", "POST", f"/v3/apps/{guid}/actions/start")
        self._poll_start(guid)

    def _poll_start(self, app_guid: str) -> None:
        """actor/v7action/application.go PollStart / PollProcesses: every process has an
        instance RUNNING (or none at all)."""
        processes = self.cc_list(
            "api/cloudcontroller/ccv3/process.go", f"/v3/apps/{app_guid}/processes"
        )
        end = time.monotonic() + _DEADLINE_S
        while True:
            stable = 0
            for process in processes:
                stats = self.cc_list(
                    "api/cloudcontroller/ccv3/process_instance.go",
                    f"/v3/processes/{process['guid']}/stats",
                )
                states = [s["state"] for s in stats]
                assert not states or any(s != "CRASHED" for s in states), "all instances crashed"
                if not states or "RUNNING" in states:
                    stable += 1
                else:
                    break
            if stable == len(processes):
                return
            assert time.monotonic() < end, "instances never RUNNING"
            time.sleep(self.poll_s)

    def _newest_log(self, app_guid: str) -> None:
        """go-log-cache client.go: version, then the newest envelope (limit=1, descending)."""
        base = self.root["links"]["log_cache"]["href"]
        info = self.cc("go-log-cache client.go LogCacheVersion", "GET", "/api/v1/info", base=base)
        assert int(info.json()["version"].split(".")[0]) >= 2  # the API lives under /api/v1
        self.cc(
            "actor/sharedaction/logging.go latestEnvelopeTimestamp",
            "GET",
            f"/api/v1/read/{app_guid}",
            query=[("start_time", str(_ZERO_TIME_NS)), ("limit", "1"), ("descending", "true")],
            base=base,
        )

    def _walk_logs(self, app_guid: str, start_ns: int) -> list[str]:
        """actor/sharedaction/logging.go GetStreamingLogs: LOG envelopes from a start time."""
        import base64

        base = self.root["links"]["log_cache"]["href"]
        batch = self.cc(
            "actor/sharedaction/logging.go GetStreamingLogs",
            "GET",
            f"/api/v1/read/{app_guid}",
            query=[("start_time", str(start_ns)), ("envelope_types", "LOG")],
            base=base,
        ).json()["envelopes"]["batch"]
        return [
            f"[{e['tags']['source_type']}/{e['instance_id']}] "
            + base64.b64decode(e["log"]["payload"]).decode()
            for e in batch
        ]

    # -- cf restart APP --strategy rolling ------------------------------------------------------

    def restart_rolling(self, app: str) -> dict[str, Any]:
        """`command/v7/restart_command.go` with `--strategy rolling`."""
        found = self.app_by_name(app)
        # actor/v7action/application.go GetUnstagedNewestPackageGUID
        [package] = self.cc_list(
            "actor/v7action/application.go",
            "/v3/packages",
            [
                ("app_guids", found["guid"]),
                ("order_by", "-created_at"),
                ("per_page", "1"),
                ("page", "1"),
            ],
        )
        droplets = self.cc_list(
            "api/cloudcontroller/ccv3/droplet.go",
            f"/v3/packages/{package['guid']}/droplets",
            [("states", "STAGED"), ("per_page", "1"), ("page", "1")],
        )
        assert droplets, "the newest package is staged, so restart does not stage again"
        # shared/app_stager.go StartApp with a strategy -> actor/v7action/deployment.go
        # resources/deployment_resource.go: no droplet, no options (max_in_flight unset)
        deployment = self.cc(
            "api/cloudcontroller/ccv3/deployment.go",
            "POST",
            "/v3/deployments",
            body={
                "strategy": "rolling",
                "relationships": {"app": {"data": {"guid": found["guid"]}}},
            },
            expect=(201,),
        ).json()
        # actor/v7action/application.go PollStartForDeployment: until FINALIZED/DEPLOYED;
        # CANCELED or SUPERSEDED end the command with an error.
        end = time.monotonic() + _DEADLINE_S
        while True:
            deployment = self.cc(
                "api/cloudcontroller/ccv3/deployment.go",
                "GET",
                f"/v3/deployments/{deployment['guid']}",
            ).json()
            status = deployment["status"]
            if status["value"] == "FINALIZED":
                assert status["reason"] == "DEPLOYED", status
                break
            assert time.monotonic() < end, "deployment never finished"
            time.sleep(self.poll_s)
        self._poll_start(found["guid"])
        return {"deployment": deployment, "summary": self.app_summary(app)}

    # -- the app summary both print at the end ------------------------------------------------

    def app_summary(self, app: str) -> dict[str, Any]:
        """actor/v7action/application_summary.go GetDetailedAppSummary."""
        found = self.app_by_name(app)
        guid = found["guid"]
        # process_summary.go getProcessSummariesForApp: sidecars, then stats, per process
        processes = self.cc_list(
            "api/cloudcontroller/ccv3/process.go", f"/v3/apps/{guid}/processes"
        )
        instances = {}
        for process in processes:
            self.cc_list(
                "api/cloudcontroller/ccv3/sidecar.go", f"/v3/processes/{process['guid']}/sidecars"
            )
            stats = self.cc_list(
                "api/cloudcontroller/ccv3/process_instance.go",
                f"/v3/processes/{process['guid']}/stats",
            )
            instances[process["type"]] = [s["state"] for s in stats]
        routes = self.cc_list("api/cloudcontroller/ccv3/route.go", f"/v3/apps/{guid}/routes")
        droplet = self.cc(
            "api/cloudcontroller/ccv3/droplet.go", "GET", f"/v3/apps/{guid}/droplets/current"
        ).json()
        # actor/v7action/deployment.go GetLatestActiveDeploymentForApp
        active = self.cc_list(
            "actor/v7action/deployment.go",
            "/v3/deployments",
            [
                ("app_guids", guid),
                ("status_values", "ACTIVE"),
                ("order_by", "-created_at"),
                ("per_page", "1"),
                ("page", "1"),
            ],
        )
        return {
            "state": found["state"],
            "instances": instances,
            "routes": routes,
            "droplet": droplet["guid"],
            "active_deployments": active,
        }
