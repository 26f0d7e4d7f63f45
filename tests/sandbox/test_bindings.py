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


def _wait_job_state(cf: Cf, location: str, state: str, deadline_s: float = 5.0) -> None:
    end = time.monotonic() + deadline_s
    while cf.ok(cf.get(location))["state"] != state:
        assert time.monotonic() < end, f"job never {state}"
        time.sleep(0.01)


def _states_until_done(cf: Cf, location: str, guid: str) -> tuple[list[str], list[str]]:
    """The job states and binding states seen while polling, each change once."""
    jobs: list[str] = []
    rows: list[str] = []
    while not jobs or jobs[-1] not in ("COMPLETE", "FAILED"):
        job = cf.ok(cf.get(location))
        row = cf.ok(cf.get(f"{URL}/{guid}"))["last_operation"]["state"]
        if not jobs or jobs[-1] != job["state"]:
            jobs.append(job["state"])
        if not rows or rows[-1] != row:
            rows.append(row)
        time.sleep(0.02)
    return jobs, rows


def test_create_is_202_with_job_and_row_in_initial_at_once() -> None:
    """A synchronous broker: PROCESSING then COMPLETE, never POLLING (reoccurring_job.rb)."""
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
        jobs, states = _states_until_done(cf, location, new["guid"])
        assert jobs == ["PROCESSING", "COMPLETE"]
        assert states == ["initial", "succeeded"]
        job = cf.ok(cf.get(location))
        assert job["operation"] == "service_bindings.create"
        assert job["errors"] == []
        assert job["links"]["service_credential_binding"]["href"].endswith(new["guid"])


def test_async_broker_with_retrievable_bindings_polls() -> None:
    """An asynchronous broker: the row goes `in progress` and the job POLLING."""
    with Landscape(job_steps_s=0.2, broker_async=True, bindings_retrievable=True) as ls:
        cf = Cf(ls)
        location = _create(cf, bind_body(ls, _new_leaf(ls), strategy="multiple"))
        new = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][-1]
        jobs, states = _states_until_done(cf, location, new["guid"])
        assert jobs == ["PROCESSING", "POLLING", "COMPLETE"]
        assert states == ["initial", "in progress", "succeeded"]


def test_async_broker_without_retrievable_bindings_fails_the_bind() -> None:
    """service_binding_create.rb `not_retrievable!`: the job fails with 90001."""
    with Landscape(job_steps_s=0.05, broker_async=True) as ls:
        cf = Cf(ls)
        job = cf.wait_job(_create(cf, bind_body(ls, _new_leaf(ls), strategy="multiple")))
        assert job["state"] == "FAILED"
        reason = "The broker responded asynchronously but does not support fetching binding data"
        assert job["errors"] == [
            {
                "code": 90001,
                "title": "CF-ServiceBindingInvalid",
                "detail": f"The service binding is invalid: {reason}",
            }
        ]
        row = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][-1]
        assert row["last_operation"]["state"] == "failed"
        assert row["last_operation"]["description"] == reason


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


def test_multiple_while_a_delete_is_in_flight() -> None:
    """A delete `in progress` (an asynchronous broker) blocks new bindings; the text
    depends on the operator limit (service_credential_binding_app_create.rb)."""
    with Landscape(job_steps_s=0.05, broker_async=True, bindings_retrievable=True) as ls:
        cf = Cf(ls)
        ls.add_fault({"job": "service_bindings.delete", "delay_s": 2.0, "times": 1})
        old = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
        location = cf.delete(f"{URL}/{old['guid']}").headers["Location"]
        _wait_job_state(cf, location, "POLLING")  # each broker answer takes 2 s
        row = cf.ok(cf.get(f"{URL}/{old['guid']}"))["last_operation"]
        assert (row["type"], row["state"]) == ("delete", "in progress")
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
    """The row is untouched until the job runs (delete_binding_job.rb), then gone."""
    ls.set_options(job_steps_s=0.3)
    old = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
    resp = cf.delete(f"{URL}/{old['guid']}")
    assert resp.status_code == 202
    row = cf.ok(cf.get(f"{URL}/{old['guid']}"))["last_operation"]
    assert (row["type"], row["state"]) == ("create", "succeeded")
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


def test_delete_while_the_create_is_initial_is_422(ls: Landscape, cf: Cf) -> None:
    """`blocking_operation_in_progress?`: a create still `initial` (service_binding_delete.rb)."""
    ls.set_options(job_steps_s=1.0)
    _create(cf, bind_body(ls, _new_leaf(ls), strategy="multiple"))
    new = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][-1]
    assert new["last_operation"]["state"] == "initial"
    error = cf.error(cf.delete(f"{URL}/{new['guid']}"), 422)
    assert error["detail"] == "There is an operation in progress for the service binding."


def test_delete_while_the_create_is_in_progress_is_accepted() -> None:
    """A create `in progress` does not block: the delete wins and the create job fails."""
    with Landscape(job_steps_s=0.05, broker_async=True, bindings_retrievable=True) as ls:
        cf = Cf(ls)
        ls.add_fault({"job": "service_bindings.create", "delay_s": 0.5, "times": 1})
        create_job = _create(cf, bind_body(ls, _new_leaf(ls), strategy="multiple"))
        _wait_job_state(cf, create_job, "POLLING")  # each broker answer takes 0.5 s
        new = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][-1]
        assert new["last_operation"]["state"] == "in progress"
        delete_job = cf.delete(f"{URL}/{new['guid']}")
        assert delete_job.status_code == 202
        assert cf.wait_job(delete_job.headers["Location"])["state"] == "COMPLETE"
        failed = cf.wait_job(create_job)
        assert failed["state"] == "FAILED"
        assert failed["errors"][0] == {
            "code": 10010,
            "title": "CF-ResourceNotFound",
            "detail": f"The binding could not be found: {new['guid']}",
        }


def test_delete_while_deleting_is_422() -> None:
    with Landscape(job_steps_s=0.05, broker_async=True, bindings_retrievable=True) as ls:
        cf = Cf(ls)
        ls.add_fault({"job": "service_bindings.delete", "delay_s": 1.0, "times": 1})
        old = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
        location = cf.delete(f"{URL}/{old['guid']}").headers["Location"]
        _wait_job_state(cf, location, "POLLING")
        error = cf.error(cf.delete(f"{URL}/{old['guid']}"), 422)
        assert error["detail"] == "There is an operation in progress for the service binding."


def test_failed_delete_job_says_unbind(ls: Landscape, cf: Cf) -> None:
    """service_binding_delete.rb `unprocessable!` wraps the broker's error."""
    ls.add_fault({"job": "service_bindings.delete", "fail": True, "detail": "broker down"})
    old = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
    job = cf.wait_job(cf.delete(f"{URL}/{old['guid']}").headers["Location"])
    assert job["state"] == "FAILED"
    assert job["errors"][0]["detail"] == (
        "unbind could not be completed: Service broker failed to delete service binding for "
        "instance iflowext: Service broker error: broker down"
    )
    row = cf.ok(cf.get(f"{URL}/{old['guid']}"))["last_operation"]
    assert (row["type"], row["state"]) == ("delete", "failed")


def test_unknown_job_is_404(cf: Cf) -> None:
    assert cf.error(cf.get("/v3/jobs/nope"), 404)["detail"] == "Job not found"


def test_parameters_are_not_retrievable_from_it_rt(ls: Landscape, cf: Cf) -> None:
    """errors/v2.yml 90007 is a 400."""
    old = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
    error = cf.error(cf.get(f"{URL}/{old['guid']}/parameters"), 400)
    assert error["code"] == 90007
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
    """`handle_timeout` marks the binding; the job fails with CF-JobTimeout 290006."""
    ls.add_fault({"job": "service_bindings.create", "timeout": True, "times": 1})
    job = cf.wait_job(_create(cf, bind_body(ls, _new_leaf(ls), strategy="multiple")))
    assert job["errors"] == [
        {"code": 290006, "title": "CF-JobTimeout", "detail": "The job execution has timed out."}
    ]
    row = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][-1]["last_operation"]
    assert row["description"] == "Service Broker failed to bind within the required time."


def test_slow_broker_holds_the_job_in_processing(ls: Landscape, cf: Cf) -> None:
    ls.add_fault({"job": "service_bindings.create", "delay_s": 0.5})
    location = _create(cf, bind_body(ls, _new_leaf(ls), strategy="multiple"))
    time.sleep(0.3)
    assert cf.ok(cf.get(location))["state"] == "PROCESSING"
    assert cf.wait_job(location)["state"] == "COMPLETE"
