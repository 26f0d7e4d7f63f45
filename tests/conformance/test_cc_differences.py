"""The places where the sandbox answered differently from CC, each checked against CC's file.

Issue 8 item 5 and what reading the sources turned up next to it; the binding job and
delete rules are in tests/sandbox/test_bindings.py. Sources are cloud_controller_ng unless
another repository is named.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
from conformance_kit import Api

from cf_sandbox import Landscape

pytestmark = pytest.mark.e2e


def _bad_query(api: Api, path: str) -> str:
    error = api.error(api.get(path), 400)
    assert (error["code"], error["title"]) == (10005, "CF-BadQueryParameter")
    return str(error["detail"])


# -- list parameters (app/messages/*_list_message.rb, validators.rb) ------------------------


def test_binding_list_type_is_validated(api: Api) -> None:
    """service_credential_binding_list_message.rb: `type` inclusion."""
    detail = _bad_query(api, "/v3/service_credential_bindings?type=apps")
    assert detail == "The query parameter is invalid: Type must be one of 'app', 'key'"


def test_service_instance_type_is_validated(api: Api) -> None:
    detail = _bad_query(api, "/v3/service_instances?type=managed-ish")
    assert detail == (
        "The query parameter is invalid: Type must be one of 'managed', 'user-provided'"
    )


def test_timestamps_take_relational_operators(api: Api) -> None:
    """list_message.rb + base_list_fetcher.rb: `created_ats[gt]=...` and friends."""
    app = api.ok(api.get(f"/v3/apps/{api.ls.app_guid}"))
    created = app["created_at"]
    names = lambda q: [a["name"] for a in api.ok(api.get(f"/v3/apps?{q}"))["resources"]]  # noqa: E731
    assert api.ls.app in names(f"created_ats[lte]={created}")
    assert api.ls.app in names(f"created_ats[gte]={created}")
    assert api.ls.app not in names(f"created_ats[lt]={created}")
    assert api.ls.app not in names(f"created_ats[gt]={created}")
    assert api.ls.app in names(f"created_ats={created}")
    assert api.ls.app in names("created_ats[gt]=2000-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("created_ats[eq]=2020-01-01T00:00:00Z", "Created ats Invalid relational operator: 'eq'"),
        (
            "created_ats[gt]=2020-01-01T00:00:00Z,2021-01-01T00:00:00Z",
            "Created ats only accepts one value when using a relational operator",
        ),
        (
            "updated_ats=yesterday",
            "Updated ats has an invalid timestamp format. Timestamps should be formatted as "
            "'YYYY-MM-DDThh:mm:ssZ'",
        ),
        ("page=0", "Page must be a positive integer"),
        ("per_page=5001", "Per page must be between 1 and 5000"),
        ("per_page=x", "Per page must be a positive integer"),
        ("order_by=guid", "Order by can only be: 'created_at', 'updated_at', 'name', 'state'"),
        (
            "include=routes",
            "Invalid included resource: 'routes'. Valid included resources are: "
            "'space', 'org', 'space.organization'",
        ),
        ("include=space,space", "Duplicate included resource: 'space'"),
    ],
)
def test_app_list_query_texts(api: Api, query: str, message: str) -> None:
    assert _bad_query(api, f"/v3/apps?{query}") == f"The query parameter is invalid: {message}"


def test_unknown_parameter_lists_ccs_keys_in_ccs_order(api: Api) -> None:
    detail = _bad_query(api, "/v3/apps?name=ntifext")
    assert detail == (
        "The query parameter is invalid: Unknown query parameter(s): 'name'. Valid parameters "
        "are: 'page', 'per_page', 'order_by', 'created_ats', 'updated_ats', 'guids', 'names', "
        "'organization_guids', 'space_guids', 'stacks', 'include', 'lifecycle_type', "
        "'label_selector'"
    )


def test_all_problems_of_a_query_are_reported_together(api: Api) -> None:
    detail = _bad_query(api, "/v3/service_credential_bindings?page=0&type=x&foo=1")
    assert detail.startswith(
        "The query parameter is invalid: Page must be a positive integer, Unknown query "
        "parameter(s): 'foo'."
    )
    assert detail.endswith(", Type must be one of 'app', 'key'")


def test_service_instance_fields_fill_included(api: Api) -> None:
    """field_service_instance_plan_decorator.rb and ..._offering_decorator.rb."""
    query = (
        "fields[service_plan]=guid,name,relationships.service_offering"
        "&fields[service_plan.service_offering]=name,guid"
        f"&names={api.ls.service_instance}"
    )
    listed = api.ok(api.get(f"/v3/service_instances?{query}"))
    [plan] = listed["included"]["service_plans"]
    assert set(plan) == {"guid", "name", "relationships"}
    assert plan["name"] == "integration-flow"
    [offering] = listed["included"]["service_offerings"]
    assert offering == {
        "name": "it-rt",
        "guid": plan["relationships"]["service_offering"]["data"]["guid"],
    }
    shown = api.ok(
        api.get(f"/v3/service_instances/{api.ls.service_instance_guid}?fields[service_plan]=name")
    )
    assert shown["included"]["service_plans"] == [{"name": "integration-flow"}]
    detail = _bad_query(api, "/v3/service_instances?fields[plan]=name")
    assert detail == (
        "The query parameter is invalid: Fields [plan] valid resources are: 'space', "
        "'space.organization', 'service_plan', 'service_plan.service_offering', "
        "'service_plan.service_offering.service_broker'"
    )


def test_include_space_organization_on_one_app_and_on_the_list(api: Api) -> None:
    """apps_controller.rb with include_space_decorator.rb + include_organization_decorator.rb."""
    one = api.ok(api.get(f"/v3/apps/{api.ls.app_guid}?include=space.organization"))
    assert [s["name"] for s in one["included"]["spaces"]] == [api.ls.space]
    assert [o["name"] for o in one["included"]["organizations"]] == [api.ls.org]
    listed = api.ok(api.get(f"/v3/apps?names={api.ls.app}&include=space.organization"))
    assert listed["included"] == one["included"]
    org_only = api.ok(api.get(f"/v3/apps/{api.ls.app_guid}?include=org"))
    assert set(org_only["included"]) == {"organizations"}
    assert "included" not in api.ok(api.get(f"/v3/apps/{api.ls.app_guid}"))


# -- endpoints the cf CLI calls (config/routes.rb) -----------------------------------------


def test_package_droplets_sidecars_routes_tasks_features(api: Api) -> None:
    app = api.ok(api.get(f"/v3/apps/{api.ls.app_guid}"))
    for link in ("tasks", "features", "clear_buildpack_cache"):
        assert link in app["links"]
    [package] = api.ok(api.get(f"/v3/apps/{api.ls.app_guid}/packages"))["resources"]
    staged = api.ok(api.get(f"/v3/packages/{package['guid']}/droplets?states=STAGED"))
    assert [d["guid"] for d in staged["resources"]] == [
        app["relationships"]["current_droplet"]["data"]["guid"]
    ]
    [process] = api.ok(api.get(f"/v3/apps/{api.ls.app_guid}/processes"))["resources"]
    assert api.ok(api.get(f"/v3/processes/{process['guid']}/sidecars"))["resources"] == []
    assert api.ok(api.get(app["links"]["tasks"]["href"]))["resources"] == []
    assert api.ok(api.get(f"/v3/apps/{api.ls.app_guid}/routes"))["resources"] == []
    features = api.ok(api.get(app["links"]["features"]["href"]))
    assert [f["name"] for f in features["resources"]] == [
        "ssh",
        "revisions",
        "service-binding-k8s",
        "file-based-vcap-services",
    ]
    assert api.error(api.get(f"/v3/apps/{api.ls.app_guid}/features/nope"), 404)["detail"] == (
        "Feature not found"
    )
    assert api.error(api.get("/v3/processes/nope/sidecars"), 404)["detail"] == "Process not found"
    assert api.error(api.get("/v3/packages/nope/droplets"), 404)["detail"] == "Package not found"
    refused = _bad_query(api, f"/v3/apps/{api.ls.app_guid}/droplets?app_guids=x")
    assert refused == "The query parameter is invalid: Unknown query parameter(s): 'app_guids'"


def test_log_cache_read(api: Api) -> None:
    """cloudfoundry/go-log-cache client.go: /api/v1/info, then /api/v1/read/<source>."""
    base = api.ok(api.get("/"))["links"]["log_cache"]["href"]
    info = api.ok(api.http.get(f"{base}/api/v1/info", timeout=10))
    assert int(info["version"].split(".")[0]) >= 2
    assert api.http.get(f"{base}/api/v1/read/x", timeout=10).status_code == 401  # needs a token
    [package] = api.ok(api.get(f"/v3/apps/{api.ls.app_guid}/packages"))["resources"]
    start = time.time_ns()
    build = api.ok(api.call("POST", "/v3/builds", json={"package": {"guid": package["guid"]}}), 201)
    read = api.ok(
        api.get(f"{base}/api/v1/read/{api.ls.app_guid}?start_time={start}&envelope_types=LOG")
    )
    [first, *_] = read["envelopes"]["batch"]
    assert first["tags"]["source_type"] == "STG"
    assert int(first["timestamp"]) >= start
    assert base64.b64decode(first["log"]["payload"]).decode() == "Staging app and tracing logs..."
    assert build["state"] == "STAGING"


# -- deployments (deployment_presenter.rb, deployment_cancel.rb, the create message) --------


@pytest.fixture
def slow(api: Api) -> Iterator[Landscape]:
    api.ls.set_options(start_s=0.4)
    yield api.ls
    api.ls.set_options(start_s=0.05)


def _deploy(api: Api, **extra: object) -> dict[str, object]:
    body = {"relationships": {"app": {"data": {"guid": api.ls.app_guid}}}, **extra}
    return dict(api.ok(api.call("POST", "/v3/deployments", json=body), 201))


def test_cancel_link_only_while_cancelable_and_ccs_texts(api: Api, slow: Landscape) -> None:
    dep = _deploy(api)
    assert dep["links"]["cancel"] == {  # type: ignore[index]
        "href": f"{api.ls.api_url}/v3/deployments/{dep['guid']}/actions/cancel",
        "method": "POST",
    }
    cancel = api.call("POST", f"/v3/deployments/{dep['guid']}/actions/cancel")
    assert (cancel.status_code, cancel.content) == (200, b"")
    canceling = api.ok(api.get(f"/v3/deployments/{dep['guid']}"))
    if canceling["status"]["reason"] == "CANCELING":  # still cancelable
        assert "cancel" in canceling["links"]
    end = time.monotonic() + 10
    while canceling["status"]["value"] != "FINALIZED":
        assert time.monotonic() < end
        time.sleep(0.05)
        canceling = api.ok(api.get(f"/v3/deployments/{dep['guid']}"))
    assert canceling["status"]["reason"] == "CANCELED"
    assert "cancel" not in canceling["links"]
    again = api.error(api.call("POST", f"/v3/deployments/{dep['guid']}/actions/cancel"), 422)
    assert (
        again["detail"] == "Cannot cancel a deployment with status: FINALIZED and reason: CANCELED"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"options": {"max_in_flight": 1, "speed": "max"}},
            "Options has unsupported key(s): speed",
        ),
        ({"options": {"max_in_flight": 0}}, "Max in flight must be an integer greater than 0"),
        ({"options": "fast"}, "Options must be an object"),
        (
            {"strategy": "blue-green"},
            "Strategy 'blue-green' is not a supported deployment strategy",
        ),
        (
            {"droplet": {"guid": "a"}, "revision": {"guid": "b"}},
            "Droplet Cannot set both fields 'droplet' and 'revision'",
        ),
    ],
)
def test_deployment_create_texts(api: Api, extra: dict[str, object], message: str) -> None:
    body = {"relationships": {"app": {"data": {"guid": api.ls.app_guid}}}, **extra}
    assert api.error(api.call("POST", "/v3/deployments", json=body), 422)["detail"] == message


# -- bindings: the name rule under an operator limit > 1 -------------------------------------


def test_binding_name_change_is_refused_without_strategy_under_a_limit_above_one(
    api: Api,
) -> None:
    """service_credential_binding_app_create.rb `validate_binding!` runs before the strategy
    matters: with limit 5 a new name is refused before "already bound"."""
    leaf = api.ls.mint("renamed").chain_pem.split("-----END CERTIFICATE-----")[0]
    body = {
        "type": "app",
        "name": "renamed",
        "relationships": {
            "app": {"data": {"guid": api.ls.app_guid}},
            "service_instance": {"data": {"guid": api.ls.service_instance_guid}},
        },
        "parameters": {
            "key-type": "certificate_external",
            "X.509": leaf + "-----END CERTIFICATE-----\n",
        },
    }
    refused = api.error(api.call("POST", "/v3/service_credential_bindings", json=body), 422)
    assert refused["detail"] == (
        "The binding name cannot be changed for the same app and service instance"
    )
    api.ls.set_options(bindings_limit=1)
    try:
        refused = api.error(api.call("POST", "/v3/service_credential_bindings", json=body), 422)
        assert refused["detail"] == "The app is already bound to the service instance"
    finally:
        api.ls.set_options(bindings_limit=5)


# -- UAA (uaa server/.../oauth/UaaTokenServices.java, .../provider/endpoint/TokenEndpoint.java) -


def test_uaa_tokens_have_integer_claims_and_are_not_cached(api: Api) -> None:
    ls = api.ls
    resp = api.http.post(
        f"{ls.uaa_url}/oauth/token",
        data={"grant_type": "password", "username": ls.username, "password": ls.password},
        auth=("cf", ""),
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Pragma"] == "no-cache"
    payload = resp.json()["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert isinstance(claims["exp"], int)
    assert isinstance(claims["iat"], int)
    refused = api.http.post(
        f"{ls.uaa_url}/oauth/token",
        data={"grant_type": "password", "username": ls.username, "password": "wrong"},
        auth=("cf", ""),
        timeout=10,
    )
    assert refused.status_code == 401
    assert refused.headers["Cache-Control"] == "no-store"


def test_uaa_login_info_prompts(api: Api) -> None:
    """uaa LoginInfoEndpoint.java: JSON only when asked for; `passcode` with an IdP link."""
    url = f"{api.ls.uaa_url}/login"
    info = api.ok(api.http.get(url, headers={"Accept": "application/json"}, timeout=10))
    assert info["prompts"]["username"] == ["text", "Email"]
    assert info["prompts"]["password"] == ["password", "Password"]
    assert info["prompts"]["passcode"][0] == "password"
    api.ls.set_options(uaa_passcode_prompt=False)
    try:
        info = api.ok(api.http.get(url, headers={"Accept": "application/json"}, timeout=10))
        assert "passcode" not in info["prompts"]
    finally:
        api.ls.set_options(uaa_passcode_prompt=True)
    assert api.http.get(url, timeout=10).headers["Content-Type"].startswith("text/html")


# -- env, discovery -------------------------------------------------------------------------


def test_vcap_application_limits_as_cc_builds_them_for_an_app(api: Api) -> None:
    """app_env_presenter.rb + lib/vcap/vars_builder.rb: an AppModel gets only `fds`."""
    env = api.ok(api.get(f"/v3/apps/{api.ls.app_guid}/env"))
    vcap = env["application_env_json"]["VCAP_APPLICATION"]
    assert vcap["limits"] == {"fds": 16384}
    assert "version" not in vcap
    assert "process_id" not in vcap
    [entry] = env["system_env_json"]["VCAP_SERVICES"]["it-rt"]
    assert list(entry)[:8] == [
        "name",
        "instance_guid",
        "instance_name",
        "binding_guid",
        "binding_name",
        "credentials",
        "syslog_drain_url",
        "volume_mounts",
    ]


def test_v2_link_and_v2_info_follow_temporary_enable_v2(api: Api) -> None:
    """root_controller.rb and runtime/info_controller.rb."""
    assert "cloud_controller_v2" not in api.ok(api.get("/"))["links"]
    info = api.ok(api.get("/v2/info"))
    assert (info["support"], info["api_version"]) == ("CF API v2 is disabled", "")
    api.ls.set_options(temporary_enable_v2=True)
    try:
        assert api.ok(api.get("/"))["links"]["cloud_controller_v2"]["href"].endswith("/v2")
        assert api.ok(api.get("/v2/info"))["api_version"] != ""
    finally:
        api.ls.set_options(temporary_enable_v2=False)


def test_v3_info_rate_limits_unset_are_empty_strings(api: Api) -> None:
    """v3/info_controller.rb: `general_limit` and the interval are "" when not configured."""
    limits = api.ok(api.get("/v3/info"))["rate_limits"]
    assert limits == {"enabled": False, "general_limit": "", "reset_interval_in_minutes": ""}
