"""The issue's "done when" flows: the seed's cf CLI sequence has an outage; a rolling
deployment that changes nothing about the certificate has none."""

from __future__ import annotations

import time

from sandbox_client import Cf, bind_body, leaf_of

from cf_sandbox import Landscape


def _restage_like_cf_cli(cf: Cf, app_guid: str) -> None:
    """`cf restage` as the CLI calls it (reference section 5, steps 1-6)."""
    packages = cf.ok(
        cf.get(f"/v3/packages?app_guids={app_guid}&states=READY&order_by=-created_at&per_page=1")
    )
    package_guid = packages["resources"][0]["guid"]
    build = cf.ok(cf.post("/v3/builds", {"package": {"guid": package_guid}}), 201)
    assert build["state"] == "STAGING"
    while build["state"] == "STAGING":
        time.sleep(0.02)
        build = cf.ok(cf.get(f"/v3/builds/{build['guid']}"))
    assert build["state"] == "STAGED"
    droplet_guid = build["droplet"]["guid"]
    assert cf.ok(cf.post(f"/v3/apps/{app_guid}/actions/stop"))["state"] == "STOPPED"
    rel = cf.ok(
        cf.patch(
            f"/v3/apps/{app_guid}/relationships/current_droplet", {"data": {"guid": droplet_guid}}
        )
    )
    assert rel["data"] == {"guid": droplet_guid}
    assert cf.ok(cf.post(f"/v3/apps/{app_guid}/actions/start"))["state"] == "STARTED"
    while True:
        stats = cf.ok(cf.get(f"/v3/apps/{app_guid}/processes/web/stats"))["resources"]
        if stats and all(s["state"] == "RUNNING" for s in stats):
            return
        time.sleep(0.02)


def test_seed_flow_replayed_as_cf_cli_shows_an_outage() -> None:
    with Landscape(instances=2, start_s=0.3, staging_s=0.2) as ls:
        cf = Cf(ls)
        new = ls.mint("ntifext-client-2")
        ls.probe_start(rps=20)
        time.sleep(0.3)
        # cf unbind-service: list app+SI bindings, delete each, wait for the jobs
        listed = cf.ok(
            cf.get(
                f"/v3/service_credential_bindings?app_guids={ls.app_guid}"
                f"&service_instance_guids={ls.service_instance_guid}&type=app"
            )
        )
        assert listed["pagination"]["total_results"] == 1
        for binding in listed["resources"]:
            resp = cf.delete(f"/v3/service_credential_bindings/{binding['guid']}")
            assert resp.status_code == 202
            assert cf.wait_job(resp.headers["Location"])["state"] == "COMPLETE"
        # cf bind-service -c '{"key-type":"certificate_external","X.509":"<leaf>"}'
        resp = cf.post("/v3/service_credential_bindings", bind_body(ls, leaf_of(new.chain_pem)))
        assert resp.status_code == 202
        assert cf.wait_job(resp.headers["Location"])["state"] == "COMPLETE"
        # cf set-env CLI_CHAIN ...; cf set-env CLI_KEY ...
        for key, value in (("CLI_CHAIN", new.chain_pem), ("CLI_KEY", new.key_pem)):
            cf.ok(cf.patch(f"/v3/apps/{ls.app_guid}/environment_variables", {"var": {key: value}}))
        _restage_like_cf_cli(cf, ls.app_guid)
        time.sleep(0.3)
        ls.probe_stop()
        probe = ls.probe()
        state = ls.state()
    assert probe["failures"] > 0
    assert probe["longest_outage_s"] > 0.3  # at least the restart's start time
    assert probe["timeline"][-1]["ok"], "calls succeed again with the new certificate"
    assert {i["leaf_sha256"] for i in state["apps"][0]["instances"]} == {new.leaf_sha256}


def test_rolling_deployment_without_cert_change_has_no_failures() -> None:
    with Landscape(instances=3, start_s=0.2) as ls:
        cf = Cf(ls)
        old_guids = {i["guid"] for i in ls.state()["apps"][0]["instances"]}
        ls.probe_start(rps=20)
        time.sleep(0.2)
        dep = cf.ok(
            cf.post(
                "/v3/deployments",
                {
                    "strategy": "rolling",
                    "relationships": {"app": {"data": {"guid": ls.app_guid}}},
                },
            ),
            201,
        )
        assert dep["status"]["value"] == "ACTIVE"
        assert dep["status"]["reason"] == "DEPLOYING"
        final = cf.wait_deployment(dep["guid"])
        time.sleep(0.2)
        end = time.monotonic() + 5  # on a loaded machine the probe may lag behind its rate
        while ls.probe()["calls"] < 10 and time.monotonic() < end:
            time.sleep(0.05)
        ls.probe_stop()
        probe = ls.probe()
        instances = ls.state()["apps"][0]["instances"]
    assert final["status"]["reason"] == "DEPLOYED"
    served_by = {e["instance_guid"] for e in probe["timeline"]}
    assert served_by & old_guids, "calls went through the old instances"
    assert served_by - old_guids, "and through the new ones"
    assert probe["calls"] >= 10
    assert probe["failures"] == 0, probe["timeline"]
    assert {i["process_guid"] for i in instances} == {dep["new_processes"][0]["guid"]}
    assert len(instances) == 3
