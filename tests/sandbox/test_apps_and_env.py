"""App env vars, `/env`, metadata, lifecycle, droplets, processes (reference sections 4, 5)."""

from __future__ import annotations

import time

from sandbox_client import Cf

from cf_sandbox import Landscape


def _env_url(cf: Cf) -> str:
    return f"/v3/apps/{cf.ls.app_guid}/environment_variables"


def test_env_vars_get_shape(cf: Cf) -> None:
    body = cf.ok(cf.get(_env_url(cf)))
    assert set(body) == {"var", "links"}
    assert {"CLI_CHAIN", "CLI_KEY"} <= set(body["var"])
    assert set(body["links"]) == {"self", "app"}


def test_env_vars_patch_merges_and_null_deletes(cf: Cf) -> None:
    merged = cf.ok(cf.patch(_env_url(cf), {"var": {"A": "1", "B": "2"}}))["var"]
    assert {"A", "B", "CLI_CHAIN", "CLI_KEY"} <= set(merged)
    after = cf.ok(cf.patch(_env_url(cf), {"var": {"A": None, "B": "3"}}))["var"]
    assert "A" not in after
    assert after["B"] == "3"
    assert cf.ok(cf.get(_env_url(cf)))["var"] == after


def test_env_vars_non_string_value(cf: Cf) -> None:
    error = cf.error(cf.patch(_env_url(cf), {"var": {"K": 5}}), 422)
    assert error["code"] == 10008
    assert error["detail"] == "Non-string value in environment variable for key 'K', value '5'"


def test_env_vars_forbidden_keys_and_fields(cf: Cf) -> None:
    for key in ("VCAP_SERVICES", "VMC_X", "PORT"):
        error = cf.error(cf.patch(_env_url(cf), {"var": {key: "x"}}), 422)
        assert error["code"] == 10008
    assert cf.error(cf.patch(_env_url(cf), {"var": {}, "other": 1}), 422)["detail"] == (
        "Unknown field(s): 'other'"
    )


def test_malformed_json_body_is_message_parse_error(cf: Cf) -> None:
    resp = cf.call(
        "PATCH", _env_url(cf), data=b"{not json", headers={"Content-Type": "application/json"}
    )
    error = cf.error(resp, 400)
    assert (error["code"], error["title"]) == (1001, "CF-MessageParseError")


def test_env_document_shape(cf: Cf) -> None:
    env = cf.ok(cf.get(f"/v3/apps/{cf.ls.app_guid}/env"))
    assert set(env) == {
        "staging_env_json",
        "running_env_json",
        "environment_variables",
        "system_env_json",
        "application_env_json",
    }
    [entry] = env["system_env_json"]["VCAP_SERVICES"]["it-rt"]
    assert {
        "name",
        "instance_name",
        "binding_name",
        "label",
        "tags",
        "plan",
        "credentials",
        "syslog_drain_url",
        "volume_mounts",
        "provider",
    } <= set(entry)
    assert entry["name"] == "iflowext"  # no binding name: the instance name
    assert entry["binding_name"] is None
    vcap_app = env["application_env_json"]["VCAP_APPLICATION"]
    assert vcap_app["application_name"] == "ntifext"


def test_annotations_patch_merge_and_delete(cf: Cf) -> None:
    url = f"/v3/apps/{cf.ls.app_guid}"
    app = cf.ok(
        cf.patch(
            url,
            {
                "metadata": {
                    "annotations": {
                        "cpi-cert-rotate.example.com/fingerprint": "ab" * 32,
                        "cpi-cert-rotate.example.com/not-after": "2030",
                    }
                }
            },
        )
    )
    assert app["metadata"]["annotations"]["cpi-cert-rotate.example.com/not-after"] == "2030"
    deletion = {"metadata": {"annotations": {"cpi-cert-rotate.example.com/not-after": None}}}
    app = cf.ok(cf.patch(url, deletion))
    assert app["metadata"]["annotations"] == {"cpi-cert-rotate.example.com/fingerprint": "ab" * 32}
    assert cf.ls.state()["apps"][0]["annotations"] == app["metadata"]["annotations"]
    bad = cf.error(cf.patch(url, {"metadata": {"annotations": {"bad key!": "x"}}}), 422)
    assert bad["code"] == 10008


def test_stop_start_restart(cf: Cf) -> None:
    ls, url = cf.ls, f"/v3/apps/{cf.ls.app_guid}"
    assert cf.ok(cf.post(f"{url}/actions/stop"))["state"] == "STOPPED"
    assert ls.state()["apps"][0]["instances"] == []
    stats = cf.ok(cf.get(f"{url}/processes/web/stats"))["resources"]
    assert {s["state"] for s in stats} == {"DOWN"}
    assert cf.ok(cf.post(f"{url}/actions/start"))["state"] == "STARTED"
    time.sleep(0.2)
    stats = cf.ok(cf.get(f"{url}/processes/web/stats"))["resources"]
    assert [s["state"] for s in stats] == ["RUNNING"] * 3
    assert cf.ok(cf.post(f"{url}/actions/restart"))["state"] == "STARTED"


def test_new_env_reaches_instances_only_after_a_restart(cf: Cf) -> None:
    ls, url = cf.ls, f"/v3/apps/{cf.ls.app_guid}"
    new = ls.mint("fresh")
    cf.ok(cf.patch(_env_url(cf), {"var": {"CLI_CHAIN": new.chain_pem, "CLI_KEY": new.key_pem}}))
    assert new.leaf_sha256 not in {i["leaf_sha256"] for i in ls.state()["apps"][0]["instances"]}
    cf.ok(cf.post(f"{url}/actions/restart"))
    assert {i["leaf_sha256"] for i in ls.state()["apps"][0]["instances"]} == {new.leaf_sha256}


def test_current_droplet_relationship(cf: Cf) -> None:
    url = f"/v3/apps/{cf.ls.app_guid}"
    rel = cf.ok(cf.get(f"{url}/relationships/current_droplet"))
    droplet = cf.ok(cf.get(f"{url}/droplets/current"))
    assert rel["data"]["guid"] == droplet["guid"]
    assert droplet["state"] == "STAGED"
    error = cf.error(
        cf.patch(f"{url}/relationships/current_droplet", {"data": {"guid": "nope"}}), 422
    )
    assert error["code"] == 10008


def test_packages_builds_droplets() -> None:
    with Landscape(staging_s=0.2) as ls:
        cf = Cf(ls)
        packages = cf.ok(
            cf.get(
                f"/v3/packages?app_guids={ls.app_guid}&states=READY&order_by=-created_at&per_page=1"
            )
        )["resources"]
        assert packages[0]["state"] == "READY"
        build = cf.ok(cf.post("/v3/builds", {"package": {"guid": packages[0]["guid"]}}), 201)
        assert (build["state"], build["droplet"]) == ("STAGING", None)
        time.sleep(0.35)
        build = cf.ok(cf.get(f"/v3/builds/{build['guid']}"))
        assert build["state"] == "STAGED"
        droplet = cf.ok(cf.get(f"/v3/droplets/{build['droplet']['guid']}"))
        assert droplet["state"] == "STAGED"
        assert len(cf.ok(cf.get(f"/v3/apps/{ls.app_guid}/droplets"))["resources"]) == 2
        error = cf.error(cf.post("/v3/builds", {"package": {"guid": "nope"}}), 422)
        assert "Unable to use package" in error["detail"]


def test_processes_and_stats(cf: Cf) -> None:
    procs = cf.ok(cf.get(f"/v3/apps/{cf.ls.app_guid}/processes"))["resources"]
    assert [(p["type"], p["instances"]) for p in procs] == [("web", 3)]
    proc = cf.ok(cf.get(f"/v3/processes/{procs[0]['guid']}"))
    assert {"guid", "type", "instances", "health_check", "relationships", "links"} <= set(proc)
    stats = cf.ok(cf.get(f"/v3/processes/{procs[0]['guid']}/stats"))["resources"]
    assert sorted(s["index"] for s in stats) == [0, 1, 2]
    assert {"type", "index", "state", "uptime", "usage"} <= set(stats[0])


def test_revisions_track_env_changes(cf: Cf) -> None:
    url = f"/v3/apps/{cf.ls.app_guid}"
    before = cf.ok(cf.get(f"{url}/revisions"))["resources"]
    cf.ok(cf.patch(_env_url(cf), {"var": {"X": "1"}}))
    cf.ok(cf.post(f"{url}/actions/restart"))
    after = cf.ok(cf.get(f"{url}/revisions"))["resources"]
    assert len(after) == len(before) + 1
    assert after[-1]["description"] == "New environment variables deployed."
    deployed = cf.ok(cf.get(f"{url}/revisions/deployed"))["resources"]
    assert [r["guid"] for r in deployed] == [after[-1]["guid"]]
