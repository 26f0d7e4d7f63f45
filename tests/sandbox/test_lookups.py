"""Lookups and pagination against reference section 2 and the error table of section 6."""

from __future__ import annotations

from sandbox_client import Cf

from cf_sandbox import Landscape


def test_org_space_app_names_are_case_insensitive(cf: Cf) -> None:
    org = cf.ok(cf.get("/v3/organizations?names=DEMO-ORG"))["resources"]
    assert [o["name"] for o in org] == ["demo-org"]
    space = cf.ok(cf.get(f"/v3/spaces?names=Dev&organization_guids={org[0]['guid']}"))
    assert [s["name"] for s in space["resources"]] == ["dev"]
    apps = cf.ok(cf.get(f"/v3/apps?names=NtIfExt&space_guids={space['resources'][0]['guid']}"))
    assert [a["name"] for a in apps["resources"]] == ["ntifext"]


def test_service_instance_names_are_case_sensitive(cf: Cf) -> None:
    space_guid = cf.ok(cf.get("/v3/spaces?names=dev"))["resources"][0]["guid"]
    exact = cf.ok(cf.get(f"/v3/service_instances?names=iflowext&space_guids={space_guid}"))
    assert exact["pagination"]["total_results"] == 1
    upper = cf.ok(cf.get("/v3/service_instances?names=IFLOWEXT"))
    assert upper["pagination"]["total_results"] == 0


def test_app_shape(cf: Cf) -> None:
    app = cf.ok(cf.get(f"/v3/apps/{cf.ls.app_guid}"))
    assert {
        "guid",
        "name",
        "state",
        "created_at",
        "updated_at",
        "lifecycle",
        "relationships",
        "metadata",
        "links",
    } <= set(app)
    assert app["state"] == "STARTED"
    assert set(app["lifecycle"]) == {"type", "data"}
    assert {"buildpacks", "stack"} <= set(app["lifecycle"]["data"])
    assert app["relationships"]["space"]["data"]["guid"]
    assert app["metadata"] == {"labels": {}, "annotations": {}}
    assert {
        "self",
        "space",
        "processes",
        "packages",
        "environment_variables",
        "current_droplet",
        "droplets",
        "start",
        "stop",
        "revisions",
    } <= set(app["links"])


def test_managed_service_instance_shape(cf: Cf) -> None:
    si = cf.ok(cf.get(f"/v3/service_instances/{cf.ls.service_instance_guid}"))
    assert si["type"] == "managed"
    assert set(si["last_operation"]) == {"type", "state", "description", "created_at", "updated_at"}
    assert {"space", "service_plan"} == set(si["relationships"])
    assert {"maintenance_info", "upgrade_available", "dashboard_url", "tags"} <= set(si)
    assert {
        "self",
        "space",
        "service_plan",
        "parameters",
        "shared_spaces",
        "service_credential_bindings",
    } <= set(si["links"])
    plan = cf.ok(cf.get(si["links"]["service_plan"]["href"]))
    assert plan["name"] == "integration-flow"
    offering = cf.ok(
        cf.get(f"/v3/service_offerings/{plan['relationships']['service_offering']['data']['guid']}")
    )
    assert offering["name"] == "it-rt"


def test_user_provided_instance_shape(ls: Landscape, cf: Cf) -> None:
    ups = ls.add_service_instance("drain", user_provided=True)
    si = cf.ok(cf.get(f"/v3/service_instances/{ups.guid}"))
    assert si["type"] == "user-provided"
    assert {"syslog_drain_url", "route_service_url"} <= set(si)
    assert set(si["relationships"]) == {"space"}
    managed = cf.ok(cf.get("/v3/service_instances?type=managed"))["resources"]
    assert [s["name"] for s in managed] == ["iflowext"]


def test_service_instances_by_plan_name(cf: Cf) -> None:
    found = cf.ok(cf.get("/v3/service_instances?service_plan_names=integration-flow"))
    assert [s["name"] for s in found["resources"]] == ["iflowext"]


def test_pagination_envelope_and_per_page(ls: Landscape, cf: Cf) -> None:
    for name in ("a1", "a2"):
        ls.add_app(name)
    page1 = cf.ok(cf.get("/v3/apps?per_page=2"))
    pagination = page1["pagination"]
    assert set(pagination) == {"total_results", "total_pages", "first", "last", "next", "previous"}
    assert (pagination["total_results"], pagination["total_pages"]) == (3, 2)
    assert pagination["previous"] is None
    assert pagination["first"]["href"].endswith("/v3/apps?page=1&per_page=2")
    assert pagination["next"]["href"].endswith("/v3/apps?page=2&per_page=2")
    assert len(page1["resources"]) == 2
    page2 = cf.ok(cf.get(pagination["next"]["href"]))
    assert len(page2["resources"]) == 1
    assert page2["pagination"]["next"] is None
    assert page2["pagination"]["previous"]["href"].endswith("page=1&per_page=2")


def test_order_by_name_descending(ls: Landscape, cf: Cf) -> None:
    ls.add_app("zeta")
    ls.add_app("alpha")
    names = [a["name"] for a in cf.ok(cf.get("/v3/apps?order_by=-name"))["resources"]]
    assert names == ["zeta", "ntifext", "alpha"]


def test_unknown_query_parameter_is_400_listing_valid_ones(cf: Cf) -> None:
    error = cf.error(cf.get("/v3/service_credential_bindings?fruits=avocado"), 400)
    assert (error["code"], error["title"]) == (10005, "CF-BadQueryParameter")
    assert "Unknown query parameter(s): 'fruits'. Valid parameters are: " in error["detail"]
    assert "'app_guids'" in error["detail"]


def test_per_page_out_of_range_is_400(cf: Cf) -> None:
    for bad in ("0", "5001"):
        error = cf.error(cf.get(f"/v3/apps?per_page={bad}"), 400)
        assert error["code"] == 10005


def test_unknown_route_is_cf_not_found_even_without_token(cf: Cf) -> None:
    resp = cf.http.get(f"{cf.ls.api_url}/v3/nonsense", timeout=10)
    assert cf.error(resp, 404) == {
        "code": 10000,
        "title": "CF-NotFound",
        "detail": "Unknown request",
    }


def test_missing_app_is_resource_not_found(cf: Cf) -> None:
    error = cf.error(cf.get("/v3/apps/does-not-exist"), 404)
    assert error == {"code": 10010, "title": "CF-ResourceNotFound", "detail": "App not found"}


def test_label_selector_on_apps(ls: Landscape, cf: Cf) -> None:
    cf.ok(cf.patch(f"/v3/apps/{ls.app_guid}", {"metadata": {"labels": {"env": "prod"}}}))
    ls.add_app("other")
    found = cf.ok(cf.get("/v3/apps?label_selector=env=prod"))["resources"]
    assert [a["name"] for a in found] == ["ntifext"]
    not_prod = cf.ok(cf.get("/v3/apps?label_selector=!env"))["resources"]
    assert [a["name"] for a in not_prod] == ["other"]
