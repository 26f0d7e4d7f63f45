"""The Cloud Controller requests the engine sends, held to cloud_controller_ng's rules.

The audit of issues 11 and 14 (docs/sandbox-conformance.md, "The engine's requests"):
every request shape the engine and the fleet scan send is in `ENGINE_REQUESTS` with the
CC file that decides whether it is accepted; the sandbox must accept each one, and must
refuse the near misses CC refuses, with CC's texts. Sources are cloud_controller_ng
(`config/routes.rb`, `app/messages/*_message.rb`, `app/messages/base_message.rb`,
`list_message.rb`) unless another repository is named.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

import pytest
from conformance_kit import Api

from cf_sandbox import Landscape
from cpi_cert_rotate import material
from cpi_cert_rotate.fleet import Place, ScanRequest, scan
from cpi_cert_rotate.models import CfAuth, CfTarget, RotationRequest, Strategy
from cpi_cert_rotate.rotation import rotate

pytestmark = pytest.mark.e2e


def _bad_query(api: Api, path: str) -> str:
    error = api.error(api.get(path), 400)
    assert (error["code"], error["title"]) == (10005, "CF-BadQueryParameter")
    detail = str(error["detail"])
    prefix = "The query parameter is invalid: "
    assert detail.startswith(prefix)
    return detail[len(prefix) :]


_BASE = "'page', 'per_page', 'order_by', 'created_ats', 'updated_ats', 'guids'"


# -- near misses of the engine's queries: refused as CC refuses them ---------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (  # apps_list_message.rb: IncludeParamValidator valid_values
            "/v3/apps?names=x&include=organization",
            "Invalid included resource: 'organization'. Valid included resources are: "
            "'space', 'org', 'space.organization'",
        ),
        (  # spaces_list_message.rb
            "/v3/spaces?guids=x&include=space.organization",
            "Invalid included resource: 'space.organization'. Valid included resources "
            "are: 'org', 'organization'",
        ),
        (  # service_credential_binding_list_message.rb
            "/v3/service_credential_bindings?type=app&include=apps",
            "Invalid included resource: 'apps'. Valid included resources are: 'app', "
            "'service_instance'",
        ),
        (
            "/v3/service_credential_bindings?type=app&include=app,app",
            "Duplicate included resource: 'app'",
        ),
        (  # list_message.rb: PaginationPageValidator
            "/v3/service_credential_bindings?type=app&per_page=5001",
            "Per page must be between 1 and 5000",
        ),
        (  # service_instances_list_message.rb: no `include` (only `fields`)
            "/v3/service_instances?type=user-provided&include=space",
            "Unknown query parameter(s): 'include'. Valid parameters are: "
            f"{_BASE}, 'type', 'fields', 'names', 'space_guids', 'organization_guids', "
            "'service_plan_guids', 'service_plan_names', 'label_selector'",
        ),
        (  # orgs_list_message.rb: no `include`
            "/v3/organizations?names=x&include=spaces",
            "Unknown query parameter(s): 'include'. Valid parameters are: "
            f"{_BASE}, 'names', 'isolation_segment_guid', 'label_selector'",
        ),
        (  # deployments_list_message.rb: the keys are plural
            "/v3/deployments?app_guids=x&status_value=ACTIVE",
            "Unknown query parameter(s): 'status_value'. Valid parameters are: "
            f"{_BASE}, 'app_guids', 'states', 'status_reasons', 'status_values', "
            "'label_selector'",
        ),
        (  # processes_list_message.rb
            "/v3/processes?app_guids=x&type=web",
            "Unknown query parameter(s): 'type'. Valid parameters are: "
            f"{_BASE}, 'app_guid', 'types', 'space_guids', 'organization_guids', "
            "'app_guids', 'embed', 'label_selector'",
        ),
        (  # service_credential_binding_list_message.rb: `type` is app or key
            "/v3/service_credential_bindings?type=user-provided",
            "Type must be one of 'app', 'key'",
        ),
        (  # packages_list_message.rb: ListMessage#valid_order_by_values
            "/v3/packages?app_guids=x&order_by=-created",
            "Order by can only be: 'created_at', 'updated_at'",
        ),
    ],
)
def test_near_misses_of_the_engines_queries_get_ccs_400(api: Api, query: str, message: str) -> None:
    assert _bad_query(api, query) == message


# -- deployment `options` exist from CC API 3.173.0 ---------------------------------------------


@pytest.fixture
def api_version(landscape: Landscape) -> Iterator[None]:
    """Restores the module landscape's API version after a test that changes it."""
    before = landscape.options()["api_version"]
    yield
    landscape.set_options(api_version=before)


def _deploy(api: Api, **extra: object) -> tuple[int, str]:
    body = {
        "strategy": "rolling",
        "relationships": {"app": {"data": {"guid": api.ls.app_guid}}},
        **extra,
    }
    resp = api.call("POST", "/v3/deployments", json=body)
    if resp.status_code == 201:
        api.ok(api.call("POST", f"/v3/deployments/{resp.json()['guid']}/actions/cancel"))
        return 201, ""
    return resp.status_code, str(resp.json()["errors"][0]["detail"])


@pytest.mark.usefixtures("api_version")
def test_deployment_options_are_an_unknown_field_before_3_173(
    api: Api, landscape: Landscape
) -> None:
    """deployment_create_message.rb before commits d66f46a60d ("Add Canary deployments")
    and 2329550f2d ("Max in flight"), both at config/version 3.173.0: the allowed keys
    were relationships, droplet, revision and strategy, and strategy only `rolling`."""
    landscape.set_options(api_version="3.172.0")
    assert _deploy(api, options={"max_in_flight": 2}) == (422, "Unknown field(s): 'options'")
    assert _deploy(api, strategy="canary") == (
        422,
        "Strategy 'canary' is not a supported deployment strategy",
    )
    assert _deploy(api) == (201, "")
    landscape.set_options(api_version="3.173.0")
    assert _deploy(api, options={"max_in_flight": 2}) == (201, "")


# -- the table: every request shape the engine and the scan send ------------------------------

_VALUED = frozenset(
    {"include", "type", "per_page", "order_by", "states", "types"}
    | {
        "status_values",
        "status_reasons",
    }
)
"""Query keys whose value is part of the shape (the others hold names and guids)."""
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Shape:
    """One request shape: `path` with `{name}` for guids, `query` as the engine builds it
    (names and guids as `{name}`), and for a write the body keys CC's message allows."""

    method: str
    path: str
    query: str = ""
    source: str = ""
    """The cloud_controller_ng file that decides, and the CC API version that brought it."""
    body: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return _key(self.method, re.sub(r"\{\w+\}", ":guid", self.path), self.query)


def _key(method: str, path: str, query: str) -> str:
    pairs = sorted(
        (k, v if k in _VALUED else "")
        for k, v in parse_qsl(query, keep_blank_values=True)
        if k != "page"  # a `next` link's page number
    )
    shown = "&".join(f"{k}={v}" for k, v in pairs)
    return f"{method} {_GUID.sub(':guid', path)}" + (f"?{shown}" if shown else "")


_M = "app/messages/"
ENGINE_REQUESTS = (
    Shape("GET", "/", source="app/controllers/runtime/root_controller.rb"),
    Shape("GET", "/v3/organizations", "names={o}&per_page=200", f"{_M}orgs_list_message.rb"),
    Shape("GET", "/v3/organizations", "names={o}&per_page=5000", f"{_M}orgs_list_message.rb"),
    Shape(
        "GET",
        "/v3/spaces",
        "names={s}&organization_guids={org}&per_page=200",
        f"{_M}spaces_list_message.rb",
    ),
    Shape(
        "GET",
        "/v3/spaces",
        "guids={space}&include=organization&per_page=5000",
        f"{_M}spaces_list_message.rb (include organization: 3.77.0)",
    ),
    Shape(
        "GET",
        "/v3/spaces",
        "organization_guids={org}&include=organization&per_page=5000",
        f"{_M}spaces_list_message.rb (include organization: 3.77.0)",
    ),
    Shape(
        "GET",
        "/v3/apps",
        "names={a}&space_guids={space}&per_page=200",
        f"{_M}apps_list_message.rb",
    ),
    Shape(
        "GET",
        "/v3/apps",
        "names={a}&include=space.organization&per_page=5000",
        f"{_M}apps_list_message.rb (include space.organization: 3.77.0)",
    ),
    Shape("GET", "/v3/apps/{app}", source="app/controllers/v3/apps_controller.rb#show"),
    Shape(
        "PATCH",
        "/v3/apps/{app}",
        source=f"{_M}app_update_message.rb + metadata_base_message.rb",
        body=frozenset({"name", "lifecycle", "metadata"}),
    ),
    Shape("GET", "/v3/apps/{app}/environment_variables", source="config/routes.rb"),
    Shape(
        "PATCH",
        "/v3/apps/{app}/environment_variables",
        source=f"{_M}update_environment_variables_message.rb",
        body=frozenset({"var"}),
    ),
    Shape("POST", "/v3/apps/{app}/actions/stop", source="config/routes.rb"),
    Shape("POST", "/v3/apps/{app}/actions/start", source="config/routes.rb"),
    Shape(
        "PATCH",
        "/v3/apps/{app}/relationships/current_droplet",
        source="app/controllers/v3/apps_controller.rb#assign_current_droplet",
        body=frozenset({"data"}),
    ),
    Shape("GET", "/v3/apps/{app}/processes/web/stats", source="config/routes.rb"),
    Shape(
        "GET",
        "/v3/processes",
        "app_guids={app}&types=web&per_page=5000",
        f"{_M}processes_list_message.rb",
    ),
    Shape("GET", "/v3/processes/{process}/stats", source="config/routes.rb"),
    Shape(
        "GET",
        "/v3/service_credential_bindings",
        "app_guids={app}&service_instance_guids={si}&type=app&per_page=200",
        f"{_M}service_credential_binding_list_message.rb (3.88.0)",
    ),
    Shape(
        "GET",
        "/v3/service_credential_bindings",
        "app_guids={app}&service_instance_guids={si}&type=app&include=app&per_page=5000",
        f"{_M}service_credential_binding_list_message.rb (include app: 3.88.0)",
    ),
    Shape(
        "GET",
        "/v3/service_credential_bindings",
        "app_names={a}&service_instance_names={i}&type=app&include=service_instance&per_page=5000",
        f"{_M}service_credential_binding_list_message.rb (include service_instance: 3.88.0)",
    ),
    Shape(
        "GET",
        "/v3/service_credential_bindings",
        "type=app&service_offering_names={off}&service_plan_names={plan}"
        "&include=app,service_instance&per_page=5000",
        f"{_M}service_credential_binding_list_message.rb (offering and plan names: 3.88.0)",
    ),
    Shape(
        "POST",
        "/v3/service_credential_bindings",
        source=f"{_M}service_credential_binding_create_message.rb (strategy: 3.205.0)",
        body=frozenset({"type", "strategy", "name", "relationships", "parameters", "metadata"}),
    ),
    Shape("GET", "/v3/service_credential_bindings/{binding}", source="config/routes.rb"),
    Shape("GET", "/v3/service_credential_bindings/{binding}/details", source="config/routes.rb"),
    Shape("DELETE", "/v3/service_credential_bindings/{binding}", source="config/routes.rb"),
    Shape(
        "GET",
        "/v3/service_instances",
        "names={i}&space_guids={space}&per_page=200",
        f"{_M}service_instances_list_message.rb",
    ),
    Shape(
        "GET",
        "/v3/service_instances",
        "type=user-provided&space_guids={space}&per_page=5000",
        f"{_M}service_instances_list_message.rb (type: 3.83.0)",
    ),
    Shape("GET", "/v3/service_instances/{si}", source="config/routes.rb"),
    Shape(
        "POST",
        "/v3/service_instances",
        source=f"{_M}service_instance_create_user_provided_message.rb",
        body=frozenset(
            {"type", "name", "tags", "relationships", "credentials", "metadata"}
            | {"syslog_drain_url", "route_service_url"}
        ),
    ),
    Shape("DELETE", "/v3/service_instances/{si}", source="config/routes.rb"),
    Shape(
        "GET",
        "/v3/deployments",
        "app_guids={app}&status_values=ACTIVE&per_page=200",
        f"{_M}deployments_list_message.rb (status_values: 3.74.0)",
    ),
    Shape(
        "GET",
        "/v3/deployments",
        "app_guids={app}&status_reasons=DEPLOYED&per_page=200",
        f"{_M}deployments_list_message.rb (status_reasons: 3.74.0)",
    ),
    Shape(
        "POST",
        "/v3/deployments",
        source=f"{_M}deployment_create_message.rb (options: 3.173.0)",
        body=frozenset({"relationships", "droplet", "revision", "strategy", "options"})
        | {"metadata"},
    ),
    Shape("GET", "/v3/deployments/{deployment}", source="config/routes.rb"),
    Shape("POST", "/v3/deployments/{deployment}/actions/cancel", source="config/routes.rb"),
    Shape(
        "GET",
        "/v3/packages",
        "app_guids={app}&states=READY&order_by=-created_at&per_page=200",
        f"{_M}packages_list_message.rb",
    ),
    Shape(
        "POST",
        "/v3/builds",
        source=f"{_M}build_create_message.rb",
        body=frozenset({"package", "lifecycle", "metadata", "environment_variables"})
        | {"staging_memory_in_mb", "staging_disk_in_mb"}
        | {"staging_log_rate_limit_bytes_per_second"},
    ),
    Shape("GET", "/v3/builds/{build}", source="config/routes.rb"),
    Shape("GET", "/v3/jobs/{job}", source="config/routes.rb"),
)
_BY_KEY = {shape.key: shape for shape in ENGINE_REQUESTS}


@pytest.fixture(scope="module")
def engine_calls() -> list[dict[str, Any]]:
    """The CC calls of: a rotation (auto, max-in-flight 2 of 3 instances), a restage, runs
    for a missing app and a missing instance (the lookups one by one) and two fleet scans
    (everything, one org), on a landscape of their own."""
    with Landscape(instances=3, fleet_apps=3) as ls:
        target = CfTarget(ls.api_url, ls.org, ls.space, ls.app, ls.service_instance)
        auth = CfAuth(
            username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem
        )
        runs: list[tuple[CfTarget, dict[str, Any]]] = [
            (target, {"max_in_flight": 2}),
            (target, {"strategy": Strategy.RESTAGE}),
            (replace(target, app="no-such-app"), {}),
            (replace(target, service_instance="no-such-instance"), {}),
        ]
        for where, changes in runs:
            minted = ls.mint(cn="ntifext-client", days=90)
            request = RotationRequest(
                target=where,
                auth=auth,
                chain=material.load_chain(minted.chain_pem),
                key=material.load_key(minted.key_pem),
                trusted_roots=material.load_chain(ls.trusted_root_pem),
                verify_path="/http/ping",
                timeout_s=120.0,
                **changes,
            )
            rotate(request)

        scan(ScanRequest(ls.api_url, auth))
        scan(ScanRequest(ls.api_url, auth, places=(Place(ls.org),)))
        return [c for c in ls.calls() if c["server"] == "cc"]


def test_every_request_the_engine_sends_is_in_the_audited_table(
    engine_calls: list[dict[str, Any]],
) -> None:
    """A new parameter, include or body key in the engine fails here until it is checked
    against CC and added to `ENGINE_REQUESTS` (docs/sandbox-conformance.md)."""
    unaudited = set()
    for call in engine_calls:
        shape = _BY_KEY.get(_key(call["method"], call["path"], call["query"]))
        if shape is None or not set(call.get("body_keys") or ()) <= shape.body:
            unaudited.add(
                f"{_key(call['method'], call['path'], call['query'])} {call.get('body_keys') or ''}"
            )
    assert sorted(unaudited) == []
    assert {c["status"] for c in engine_calls} <= {200, 201, 202, 204, 404}
    sent = {(c["method"], c["path"], k) for c in engine_calls for k in c.get("body_keys", ())}
    assert ("POST", "/v3/deployments", "options") in sent  # max-in-flight 2
    assert ("POST", "/v3/service_credential_bindings", "strategy") in sent  # overlap


def test_the_runs_reach_most_of_the_table(engine_calls: list[dict[str, Any]]) -> None:
    """The table holds no dead rows: what the runs do not reach are the calls of a
    rollback (a deployment's cancel, the deployments that ended DEPLOYED), the app read
    alone when it has no binding (`app_bindings_and_app`), and `get_service_instance`,
    which only tests call."""
    seen = {_key(c["method"], c["path"], c["query"]) for c in engine_calls}
    assert sorted(set(_BY_KEY) - seen) == [
        "GET /v3/apps/:guid",
        "GET /v3/deployments?app_guids=&per_page=200&status_reasons=DEPLOYED",
        "GET /v3/service_instances/:guid",
        "POST /v3/deployments/:guid/actions/cancel",
    ]


@pytest.mark.parametrize(
    "shape", [s for s in ENGINE_REQUESTS if s.method == "GET" and s.query], ids=lambda s: s.key
)
def test_each_audited_query_is_accepted(api: Api, shape: Shape) -> None:
    ls = api.ls
    app = api.ok(api.get(f"/v3/apps/{ls.app_guid}"))
    values = {
        "o": ls.org, "s": ls.space, "a": ls.app, "i": ls.service_instance,
        "off": "it-rt", "plan": "integration-flow",
        "app": ls.app_guid, "si": ls.service_instance_guid,
        "space": app["relationships"]["space"]["data"]["guid"],
        "org": api.ok(api.get(f"/v3/organizations?names={ls.org}"))["resources"][0]["guid"],
    }  # fmt: skip
    body = api.ok(api.get(f"{shape.path}?{shape.query.format(**values)}"))
    wanted = (
        shape.query.split("include=")[1].split("&")[0].split(",")
        if "include=" in shape.query
        else []
    )
    plural = {"organization": "organizations", "space.organization": "spaces"}
    for name in wanted if body["resources"] else ():
        key = plural.get(name, name + "s")
        assert body["included"][key], (shape.key, key)
