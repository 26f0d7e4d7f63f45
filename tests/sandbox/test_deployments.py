"""Deployments (reference section 5): 201 ACTIVE/DEPLOYING -> FINALIZED/DEPLOYED, rolling
replacement, supersede, cancel with the old instances restored, the quota 422."""

from __future__ import annotations

import time
from typing import Any

from sandbox_client import Cf

from cf_sandbox import Landscape


def _deploy(cf: Cf, **extra: Any) -> dict[str, Any]:
    body = {
        "strategy": "rolling",
        "relationships": {"app": {"data": {"guid": cf.ls.app_guid}}},
        **extra,
    }
    return dict(cf.ok(cf.post("/v3/deployments", body), 201))


def test_create_shape_and_rollout_to_deployed(cf: Cf) -> None:
    dep = _deploy(cf, options={"max_in_flight": 2})
    assert {
        "guid",
        "status",
        "strategy",
        "options",
        "droplet",
        "previous_droplet",
        "new_processes",
        "revision",
        "relationships",
        "metadata",
        "links",
    } <= set(dep)
    assert (dep["status"]["value"], dep["status"]["reason"]) == ("ACTIVE", "DEPLOYING")
    assert {"last_successful_healthcheck", "last_status_change"} <= set(dep["status"]["details"])
    assert dep["options"] == {"max_in_flight": 2}
    assert dep["links"]["cancel"]["method"] == "POST"
    assert dep["revision"]["version"] >= 1
    final = cf.wait_deployment(dep["guid"])
    assert (final["status"]["value"], final["status"]["reason"]) == ("FINALIZED", "DEPLOYED")
    procs = cf.ok(cf.get(f"/v3/apps/{cf.ls.app_guid}/processes"))["resources"]
    assert [p["guid"] for p in procs] == [dep["new_processes"][0]["guid"]]


def test_rollout_keeps_capacity_and_swaps_one_at_a_time() -> None:
    with Landscape(instances=3, start_s=0.15) as ls:
        cf = Cf(ls)
        dep = _deploy(cf)
        new_guid = dep["new_processes"][0]["guid"]
        running_counts, max_new_starting = [], 0
        while cf.ok(cf.get(f"/v3/deployments/{dep['guid']}"))["status"]["value"] == "ACTIVE":
            instances = ls.state()["apps"][0]["instances"]
            running_counts.append(sum(1 for i in instances if i["state"] == "RUNNING"))
            max_new_starting = max(
                max_new_starting,
                sum(
                    1
                    for i in instances
                    if i["process_guid"] == new_guid and i["state"] == "STARTING"
                ),
            )
            time.sleep(0.01)
    assert min(running_counts) >= 3  # an old one stops only after a new one is healthy
    assert max_new_starting == 1  # max_in_flight 1


def test_new_instances_get_the_new_env_old_ones_keep_theirs() -> None:
    with Landscape(instances=2, start_s=0.3) as ls:
        cf = Cf(ls)
        old_fp = ls.state()["apps"][0]["instances"][0]["leaf_sha256"]
        new = ls.mint("rolled")
        cf.ok(
            cf.patch(
                f"/v3/apps/{ls.app_guid}/environment_variables",
                {"var": {"CLI_CHAIN": new.chain_pem, "CLI_KEY": new.key_pem}},
            )
        )
        dep = _deploy(cf)
        time.sleep(0.15)
        mid = {(i["process_guid"], i["leaf_sha256"]) for i in ls.state()["apps"][0]["instances"]}
        assert (dep["new_processes"][0]["guid"], new.leaf_sha256) in mid
        assert any(fp == old_fp for _, fp in mid)
        cf.wait_deployment(dep["guid"])
        assert {i["leaf_sha256"] for i in ls.state()["apps"][0]["instances"]} == {new.leaf_sha256}


def test_newer_deployment_supersedes() -> None:
    with Landscape(instances=3, start_s=0.3) as ls:
        cf = Cf(ls)
        first = _deploy(cf)
        second = _deploy(cf)
        old = cf.ok(cf.get(f"/v3/deployments/{first['guid']}"))["status"]
        assert (old["value"], old["reason"]) == ("FINALIZED", "SUPERSEDED")
        final = cf.wait_deployment(second["guid"])
        assert final["status"]["reason"] == "DEPLOYED"
        instances = ls.state()["apps"][0]["instances"]
        assert {i["process_guid"] for i in instances} == {second["new_processes"][0]["guid"]}
        assert len(instances) == 3


def test_cancel_restores_the_old_instances() -> None:
    with Landscape(instances=3, start_s=0.2) as ls:
        cf = Cf(ls)
        before = {i["process_guid"] for i in ls.state()["apps"][0]["instances"]}
        dep = _deploy(cf)
        time.sleep(0.3)  # first batch swapped
        resp = cf.post(f"/v3/deployments/{dep['guid']}/actions/cancel")
        assert resp.status_code == 200
        assert cf.ok(cf.get(f"/v3/deployments/{dep['guid']}"))["status"]["reason"] in (
            "CANCELING",
            "CANCELED",
        )
        final = cf.wait_deployment(dep["guid"])
        assert (final["status"]["value"], final["status"]["reason"]) == ("FINALIZED", "CANCELED")
        instances = ls.state()["apps"][0]["instances"]
        assert {i["process_guid"] for i in instances} == before
        assert len(instances) == 3
        error = cf.error(cf.post(f"/v3/deployments/{dep['guid']}/actions/cancel"), 422)
        assert error["code"] == 10008


def test_platform_cancel_fault() -> None:
    with Landscape(instances=2, start_s=0.05) as ls:
        cf = Cf(ls)
        ls.add_fault({"deployment": "cancel", "times": 1})
        final = cf.wait_deployment(_deploy(cf)["guid"])
        assert final["status"]["reason"] == "CANCELED"


def test_quota_fault_is_422(ls: Landscape, cf: Cf) -> None:
    ls.add_fault({"deployment": "quota", "times": 1})
    body = {"relationships": {"app": {"data": {"guid": ls.app_guid}}}}
    error = cf.error(cf.post("/v3/deployments", body), 422)
    assert (error["code"], error["title"]) == (10008, "CF-UnprocessableEntity")
    assert "quota" in error["detail"]
    assert cf.post("/v3/deployments", body).status_code == 201


def test_unknown_app_is_422(cf: Cf) -> None:
    body = {"relationships": {"app": {"data": {"guid": "nope"}}}}
    assert cf.error(cf.post("/v3/deployments", body), 422)["detail"] == (
        "Unable to use app. Ensure that the app exists and you have access to it."
    )


def test_droplet_and_revision_together_is_422(cf: Cf) -> None:
    error = cf.error(
        cf.post(
            "/v3/deployments",
            {
                "droplet": {"guid": "d"},
                "revision": {"guid": "r"},
                "relationships": {"app": {"data": {"guid": cf.ls.app_guid}}},
            },
        ),
        422,
    )
    assert error["code"] == 10008


def test_stopped_app_is_started_and_deployed_at_once(cf: Cf) -> None:
    cf.ok(cf.post(f"/v3/apps/{cf.ls.app_guid}/actions/stop"))
    dep = _deploy(cf)
    assert (dep["status"]["value"], dep["status"]["reason"]) == ("FINALIZED", "DEPLOYED")
    assert cf.ok(cf.get(f"/v3/apps/{cf.ls.app_guid}"))["state"] == "STARTED"


def test_stop_during_a_deployment_is_accepted_by_v3() -> None:
    """`StopDisabledDuringDeployment` is v2 only (app/actions/v2/app_update.rb)."""
    with Landscape(instances=2, start_s=0.5) as ls:
        cf = Cf(ls)
        dep = _deploy(cf)
        assert cf.ok(cf.post(f"/v3/apps/{ls.app_guid}/actions/stop"))["state"] == "STOPPED"
        cancel = cf.post(f"/v3/deployments/{dep['guid']}/actions/cancel")
        assert (cancel.status_code, cancel.content) == (200, b"")


def test_list_by_app_and_status(cf: Cf) -> None:
    dep = _deploy(cf)
    cf.wait_deployment(dep["guid"])
    found = cf.ok(cf.get(f"/v3/deployments?app_guids={cf.ls.app_guid}&status_values=FINALIZED"))[
        "resources"
    ]
    assert [d["guid"] for d in found] == [dep["guid"]]
