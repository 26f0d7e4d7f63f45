"""Service credential bindings, jobs and the it-rt broker rules (reference sections 3 and 7).

Error texts are quoted from reference/cf-api-v3.md; the broker's descriptions are not
documented, so only their documented gist is asserted.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sandbox_client import Cf, bind_body, leaf_of

from cf_sandbox import Landscape

URL = "/v3/service_credential_bindings"


def _create(cf: Cf, body: dict[str, Any]) -> str:
    resp = cf.post(URL, body)
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    return resp.headers["Location"]


def _unprocessable(cf: Cf, body: dict[str, Any]) -> str:
    error = cf.error(cf.post(URL, body), 422)
    assert (error["code"], error["title"]) == (10008, "CF-UnprocessableEntity")
    return str(error["detail"])


def _new_leaf(ls: Landscape, cn: str = "next") -> str:
    return leaf_of(ls.mint(cn).chain_pem)


def test_create_is_202_with_job_and_row_in_initial_at_once() -> None:
    with Landscape(job_steps_s=0.3, bindings_limit=5) as ls:
        cf = Cf(ls)
        location = _create(cf, bind_body(ls, _new_leaf(ls), strategy="multiple"))
        assert location.startswith(f"{ls.api_url}/v3/jobs/")
        rows = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}&type=app"))["resources"]
        assert [r["last_operation"]["state"] for r in rows] == ["succeeded", "initial"]
        new = rows[1]
        assert new["name"] is None
        assert new["last_operation"]["type"] == "create"
        details = cf.error(cf.get(f"{URL}/{new['guid']}/details"), 404)
        assert details["detail"] == "Creation of service binding initial"
        seen, states = [], []
        while not seen or seen[-1] not in ("COMPLETE", "FAILED"):
            job = cf.ok(cf.get(location))
            binding = cf.ok(cf.get(f"{URL}/{new['guid']}"))
            if not seen or seen[-1] != job["state"]:
                seen.append(job["state"])
            states.append(binding["last_operation"]["state"])
            time.sleep(0.02)
        assert seen == ["PROCESSING", "POLLING", "COMPLETE"]
        assert "in progress" in states
        assert job["operation"] == "service_bindings.create"
        assert job["errors"] == []
        assert job["links"]["service_credential_binding"]["href"].endswith(new["guid"])
        assert cf.ok(cf.get(f"{URL}/{new['guid']}"))["last_operation"]["state"] == "succeeded"


def test_binding_object_shape(cf: Cf) -> None:
    b = cf.ok(cf.get(f"{URL}?app_guids={cf.ls.app_guid}"))["resources"][0]
    assert set(b) == {
        "guid",
        "name",
        "type",
        "created_at",
        "updated_at",
        "last_operation",
        "metadata",
        "relationships",
        "links",
    }
    assert b["type"] == "app"
    assert set(b["relationships"]) == {"app", "service_instance"}
    assert set(b["links"]) == {"self", "details", "parameters", "service_instance", "app"}


def test_details_hold_the_it_rt_oauth_credentials(ls: Landscape, cf: Cf) -> None:
    b = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
    details = cf.ok(cf.get(f"{URL}/{b['guid']}/details"))
    assert set(details) == {"credentials", "syslog_drain_url", "volume_mounts"}
    oauth = details["credentials"]["oauth"]
    assert {"clientid", "certificate", "url", "tokenurl", "certificate-pinning"} <= set(oauth)
    assert oauth["url"] == ls.cpi_url
    assert oauth["certificate"] == leaf_of(ls.state()["apps"][0]["env"]["CLI_CHAIN"])
    assert "key" not in oauth  # external certificates: CPI never holds the key


def test_default_strategy_second_binding_is_already_bound(ls: Landscape, cf: Cf) -> None:
    assert _unprocessable(cf, bind_body(ls, _new_leaf(ls))) == (
        "The app is already bound to the service instance"
    )


def test_strategy_is_an_unknown_field_before_3_205(ls: Landscape, cf: Cf) -> None:
    ls.set_options(api_version="3.204.0")
    body = bind_body(ls, _new_leaf(ls), strategy="multiple")
    assert _unprocessable(cf, body) == "Unknown field(s): 'strategy'"


def test_strategy_value_is_checked(ls: Landscape, cf: Cf) -> None:
    body = bind_body(ls, _new_leaf(ls), strategy="many")
    assert _unprocessable(cf, body) == "Strategy must be 'single' or 'multiple'"


def test_multiple_with_limit_one_is_already_bound(ls: Landscape, cf: Cf) -> None:
    ls.set_options(bindings_limit=1)
    body = bind_body(ls, _new_leaf(ls), strategy="multiple")
    assert _unprocessable(cf, body) == "The app is already bound to the service instance"


def test_multiple_up_to_the_limit_then_too_many(ls: Landscape, cf: Cf) -> None:
    ls.set_options(bindings_limit=2)
    cf.wait_job(_create(cf, bind_body(ls, _new_leaf(ls, "a"), strategy="multiple")))
    body = bind_body(ls, _new_leaf(ls, "b"), strategy="multiple")
    assert _unprocessable(cf, body) == (
        "The app has too many bindings to this service instance (limit: 2). Consider deleting "
        "existing/orphaned bindings."
    )


def test_multiple_name_must_equal_the_existing_name(ls: Landscape, cf: Cf) -> None:
    body = bind_body(ls, _new_leaf(ls), strategy="multiple", name="renamed")
    assert _unprocessable(cf, body) == (
        "The binding name cannot be changed for the same app and service instance"
    )


def test_multiple_while_a_create_is_in_flight(cf: Cf) -> None:
    ls = cf.ls
    ls.set_options(job_steps_s=1.0)
    _create(cf, bind_body(ls, _new_leaf(ls, "a"), strategy="multiple"))
    rows = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"]
    detail = _unprocessable(cf, bind_body(ls, _new_leaf(ls, "b"), strategy="multiple"))
    assert detail == (
        "There is already a binding in progress for this service instance and app "
        f"(binding guid: {rows[1]['guid']})"
    )


def test_multiple_while_a_delete_is_in_flight(cf: Cf) -> None:
    ls = cf.ls
    ls.set_options(job_steps_s=1.0)
    old = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
    assert cf.delete(f"{URL}/{old['guid']}").status_code == 202
    detail = _unprocessable(cf, bind_body(ls, _new_leaf(ls), strategy="multiple"))
    assert detail == (
        "A binding for this service instance and app is getting deleted or its deletion failed"
    )
    ls.set_options(bindings_limit=1)
    assert _unprocessable(cf, bind_body(ls, _new_leaf(ls, "x"))) == (
        "The binding is getting deleted or its deletion failed"
    )


def test_name_used_for_another_instance(ls: Landscape, cf: Cf) -> None:
    other = ls.add_service_instance("other-si")
    named = bind_body(ls, _new_leaf(ls, "a"), name="x")
    named["relationships"]["service_instance"]["data"]["guid"] = other.guid
    cf.wait_job(_create(cf, named))
    body = bind_body(ls, _new_leaf(ls, "b"), strategy="multiple")
    body["name"] = "x"
    # the app's existing binding to iflowext has no name, so the name check fires first
    assert _unprocessable(cf, body) == (
        "The binding name cannot be changed for the same app and service instance"
    )
    third = ls.add_service_instance("third-si")
    body = bind_body(ls, _new_leaf(ls, "c"), name="x")
    body["relationships"]["service_instance"]["data"]["guid"] = third.guid
    assert _unprocessable(cf, body) == (
        "The binding name is invalid. Binding names must be unique for a given service "
        "instance and app. The app already has a binding with name 'x'."
    )


def test_missing_instance_and_app(ls: Landscape, cf: Cf) -> None:
    body = bind_body(ls, _new_leaf(ls))
    body["relationships"]["service_instance"]["data"]["guid"] = "nope"
    assert _unprocessable(cf, body) == "The service instance could not be found: 'nope'"
    body = bind_body(ls, _new_leaf(ls))
    body["relationships"]["app"]["data"]["guid"] = "gone"
    assert _unprocessable(cf, body) == "The app could not be found: 'gone'"


def test_instance_and_app_in_different_spaces(ls: Landscape, cf: Cf) -> None:
    ls.add_space("prod")
    far = ls.add_app("far", space="prod")
    body = bind_body(ls, _new_leaf(ls))
    body["relationships"]["app"]["data"]["guid"] = far.guid
    assert _unprocessable(cf, body) == "The service instance and the app are in different spaces"


def test_instance_operation_in_progress(ls: Landscape, cf: Cf) -> None:
    busy = ls.add_service_instance("busy", operation_state="in progress")
    body = bind_body(ls, _new_leaf(ls))
    body["relationships"]["service_instance"]["data"]["guid"] = busy.guid
    assert _unprocessable(cf, body) == (
        "There is an operation in progress for the service instance"
    )


def test_plan_that_does_not_allow_bindings(ls: Landscape, cf: Cf) -> None:
    si = ls.add_service_instance("nb", label="no-bind", plan="standard", bindable=False)
    body = bind_body(ls, _new_leaf(ls))
    body["relationships"]["service_instance"]["data"]["guid"] = si.guid
    assert _unprocessable(cf, body) == "Service plan does not allow bindings"


def test_user_provided_instance_bindings(ls: Landscape, cf: Cf) -> None:
    ups = ls.add_service_instance("ups", user_provided=True)
    body = bind_body(ls, _new_leaf(ls))
    body["relationships"]["service_instance"]["data"]["guid"] = ups.guid
    assert _unprocessable(cf, body) == (
        "Binding parameters are not supported for user-provided service instances"
    )
    del body["parameters"]
    created = cf.ok(cf.post(URL, body), 201)
    assert created["last_operation"]["state"] == "succeeded"
    assert "parameters" not in created["links"]
    assert cf.delete(f"{URL}/{created['guid']}").status_code == 204


@pytest.mark.parametrize(
    ("params", "gist"),
    [
        ("chain", "certificate chain"),
        ("untrusted", "not signed by a certificate authority"),
        ("duplicate", "Certificate already exists"),
        ("wrong-type", "Invalid parameters"),
    ],
)
def test_broker_errors_fail_the_job_with_10009(
    ls: Landscape, cf: Cf, params: str, gist: str
) -> None:
    current_leaf = leaf_of(ls.state()["apps"][0]["env"]["CLI_CHAIN"])
    x509 = {
        "chain": ls.mint("chain").chain_pem,
        "untrusted": leaf_of(ls.mint("rogue", trusted=False).chain_pem),
        "duplicate": current_leaf,
        "wrong-type": _new_leaf(ls),
    }[params]
    body = bind_body(ls, x509, strategy="multiple")
    if params == "wrong-type":
        body["parameters"]["key-type"] = "certificate"
    location = _create(cf, body)
    job = cf.wait_job(location)
    assert job["state"] == "FAILED"
    [error] = job["errors"]
    assert (error["code"], error["title"]) == (10009, "CF-UnableToPerform")
    assert error["detail"].startswith("bind could not be completed: Service broker error: ")
    assert gist in error["detail"]
    failed = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][-1]
    assert failed["last_operation"]["state"] == "failed"
    assert gist in failed["last_operation"]["description"]
    assert "service_credential_binding" in job["links"]  # the failed row still exists


def test_failed_binding_is_deleted_by_the_next_create(ls: Landscape, cf: Cf) -> None:
    ls.add_fault({"job": "service_bindings.create", "fail": True, "times": 1})
    assert (
        cf.wait_job(_create(cf, bind_body(ls, _new_leaf(ls, "a"), strategy="multiple")))["state"]
        == "FAILED"
    )
    assert len(cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"]) == 2
    assert (
        cf.wait_job(_create(cf, bind_body(ls, _new_leaf(ls, "b"), strategy="multiple")))["state"]
        == "COMPLETE"
    )
    states = [
        b["last_operation"]["state"]
        for b in cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"]
    ]
    assert states == ["succeeded", "succeeded"]


def test_delete_is_202_with_job_then_gone(ls: Landscape, cf: Cf) -> None:
    old = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
    resp = cf.delete(f"{URL}/{old['guid']}")
    assert resp.status_code == 202
    assert cf.ok(cf.get(f"{URL}/{old['guid']}"))["last_operation"]["type"] == "delete"
    job = cf.wait_job(resp.headers["Location"])
    assert (job["state"], job["operation"]) == ("COMPLETE", "service_bindings.delete")
    assert "service_credential_binding" not in job["links"]
    error = cf.error(cf.get(f"{URL}/{old['guid']}"), 404)
    assert error == {
        "code": 10010,
        "title": "CF-ResourceNotFound",
        "detail": "Service credential binding not found",
    }
    assert cf.error(cf.delete(f"{URL}/{old['guid']}"), 404)["detail"] == (
        "Service credential binding not found"
    )


def test_delete_while_deleting_is_422(ls: Landscape, cf: Cf) -> None:
    ls.set_options(job_steps_s=1.0)
    old = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
    assert cf.delete(f"{URL}/{old['guid']}").status_code == 202
    error = cf.error(cf.delete(f"{URL}/{old['guid']}"), 422)
    assert error["detail"] == "There is an operation in progress for the service binding."


def test_failed_delete_job_says_unbind(ls: Landscape, cf: Cf) -> None:
    ls.add_fault({"job": "service_bindings.delete", "fail": True, "detail": "broker down"})
    old = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
    job = cf.wait_job(cf.delete(f"{URL}/{old['guid']}").headers["Location"])
    assert job["state"] == "FAILED"
    assert job["errors"][0]["detail"] == (
        "unbind could not be completed: Service broker error: broker down"
    )
    row = cf.ok(cf.get(f"{URL}/{old['guid']}"))["last_operation"]
    assert (row["type"], row["state"]) == ("delete", "failed")


def test_unknown_job_is_404(cf: Cf) -> None:
    assert cf.error(cf.get("/v3/jobs/nope"), 404)["detail"] == "Job not found"


def test_parameters_are_not_retrievable_from_it_rt(ls: Landscape, cf: Cf) -> None:
    old = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
    error = cf.error(cf.get(f"{URL}/{old['guid']}/parameters"), 502)
    assert error["title"] == "CF-ServiceFetchBindingParametersNotSupported"
    assert error["detail"] == "This service does not support fetching service binding parameters."


def test_list_filters_and_include(ls: Landscape, cf: Cf) -> None:
    listed = cf.ok(cf.get(f"{URL}?service_instance_names=iflowext&include=app,service_instance"))
    assert len(listed["resources"]) == 1
    assert [a["name"] for a in listed["included"]["apps"]] == ["ntifext"]
    assert [s["name"] for s in listed["included"]["service_instances"]] == ["iflowext"]
    assert cf.ok(cf.get(f"{URL}?type=key"))["resources"] == []
    assert cf.ok(cf.get(f"{URL}?service_plan_names=other"))["resources"] == []
    error = cf.error(cf.get(f"{URL}?include=routes"), 400)
    assert "Invalid included resource: 'routes'" in error["detail"]


def test_vcap_services_shows_only_the_newest_succeeded_binding(ls: Landscape, cf: Cf) -> None:
    new = ls.mint("newer")
    cf.wait_job(_create(cf, bind_body(ls, leaf_of(new.chain_pem), strategy="multiple")))
    rows = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"]
    env = cf.ok(cf.get(f"/v3/apps/{ls.app_guid}/env"))
    [entry] = env["system_env_json"]["VCAP_SERVICES"]["it-rt"]
    assert entry["binding_guid"] == rows[-1]["guid"]
    assert entry["credentials"]["oauth"]["certificate"] == leaf_of(new.chain_pem)
    assert entry["instance_name"] == "iflowext"
    assert (entry["label"], entry["plan"]) == ("it-rt", "integration-flow")


def test_service_keys(ls: Landscape, cf: Cf) -> None:
    body = {
        "type": "key",
        "name": "rotation-key",
        "relationships": {"service_instance": {"data": {"guid": ls.service_instance_guid}}},
        "parameters": {"key-type": "certificate_external", "X.509": _new_leaf(ls, "k")},
    }
    assert cf.wait_job(_create(cf, body))["state"] == "COMPLETE"
    key = cf.ok(cf.get(f"{URL}?type=key"))["resources"][0]
    assert set(key["relationships"]) == {"service_instance"}
    assert "app" not in key["links"]
    body["parameters"]["X.509"] = _new_leaf(ls, "k2")
    assert _unprocessable(cf, body) == (
        "The binding name is invalid. Key binding names must be unique. The service instance "
        "already has a key binding with name 'rotation-key'."
    )
    assert ls.state()["service_keys"][0]["state"] == "succeeded"


def test_binding_metadata_patch(ls: Landscape, cf: Cf) -> None:
    old = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
    patched = cf.ok(
        cf.patch(f"{URL}/{old['guid']}", {"metadata": {"annotations": {"rotated-by": "test"}}})
    )
    assert patched["metadata"]["annotations"] == {"rotated-by": "test"}


def test_broker_poll_timeout_fault(ls: Landscape, cf: Cf) -> None:
    ls.add_fault({"job": "service_bindings.create", "timeout": True, "times": 1})
    job = cf.wait_job(_create(cf, bind_body(ls, _new_leaf(ls), strategy="multiple")))
    assert job["errors"][0]["detail"] == (
        "bind could not be completed: Service Broker failed to bind within the required time."
    )


def test_slow_broker_holds_the_job_in_polling(ls: Landscape, cf: Cf) -> None:
    ls.add_fault({"job": "service_bindings.create", "delay_s": 0.5})
    location = _create(cf, bind_body(ls, _new_leaf(ls), strategy="multiple"))
    time.sleep(0.3)
    assert cf.ok(cf.get(location))["state"] == "POLLING"
    assert cf.wait_job(location)["state"] == "COMPLETE"
