"""User-provided service instances as Cloud Controller serves them (cf_sandbox.cc_user_provided).

Each expectation cites the cloud_controller_ng file it comes from; the lock of a rotation
relies on exactly these: a create-if-absent by name, 201 at once, a synchronous delete.
"""

from __future__ import annotations

import threading
from typing import Any

from sandbox_client import Cf

from cf_sandbox import Landscape


def _space_guid(cf: Cf, ls: Landscape) -> str:
    org = cf.ok(cf.get("/v3/organizations", params={"names": ls.org}))["resources"][0]
    spaces = cf.get("/v3/spaces", params={"names": ls.space, "organization_guids": org["guid"]})
    return str(cf.ok(spaces)["resources"][0]["guid"])


def _body(space_guid: str, name: str = "lock-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "user-provided",
        "name": name,
        "relationships": {"space": {"data": {"guid": space_guid}}},
        **extra,
    }


def test_create_is_201_at_once_with_tags_and_metadata(cf: Cf, ls: Landscape) -> None:
    space = _space_guid(cf, ls)
    body = _body(
        space,
        tags=["owner=run-1", "expires=2030-01-01T00:00:00Z"],
        metadata={"annotations": {"rotation.example.com/app": "ntifext"}},
    )
    created = cf.ok(cf.post("/v3/service_instances", body), 201)
    assert created["type"] == "user-provided"
    assert created["name"] == "lock-1"
    assert created["tags"] == ["owner=run-1", "expires=2030-01-01T00:00:00Z"]
    assert created["last_operation"]["type"] == "create"
    assert created["last_operation"]["state"] == "succeeded"
    assert created["metadata"]["annotations"] == {"rotation.example.com/app": "ntifext"}
    assert "credentials" not in created  # only /credentials shows them
    shown = cf.ok(cf.get(f"/v3/service_instances/{created['guid']}"))
    assert shown["tags"] == created["tags"]
    listed = cf.ok(
        cf.get("/v3/service_instances", params={"names": "lock-1", "space_guids": space})
    )
    assert [r["guid"] for r in listed["resources"]] == [created["guid"]]


def test_second_create_of_a_name_is_422_name_taken(cf: Cf, ls: Landscape) -> None:
    """app/actions/mixins/service_instance_create.rb: 422, v3's CF-UnprocessableEntity."""
    space = _space_guid(cf, ls)
    cf.ok(cf.post("/v3/service_instances", _body(space)), 201)
    error = cf.error(cf.post("/v3/service_instances", _body(space, tags=["other"])), 422)
    assert error == {
        "code": 10008,
        "title": "CF-UnprocessableEntity",
        "detail": "The service instance name is taken: lock-1.",
    }
    # the seeded it-rt instance's name is taken too, whatever the type
    error = cf.error(cf.post("/v3/service_instances", _body(space, name=ls.service_instance)), 422)
    assert error["detail"] == f"The service instance name is taken: {ls.service_instance}."


def test_of_concurrent_creates_of_one_name_exactly_one_wins(cf: Cf, ls: Landscape) -> None:
    """The database's unique index si_space_id_name_index, not a check-then-insert race."""
    space = _space_guid(cf, ls)
    statuses: list[int] = []
    start = threading.Barrier(8)

    def create(i: int) -> None:
        own = Cf(ls)  # one session per thread, as separate processes would have
        start.wait()
        statuses.append(own.post("/v3/service_instances", _body(space, tags=[f"n{i}"])).status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [422] * 7


def test_names_are_unique_per_space_and_stripped(cf: Cf, ls: Landscape) -> None:
    space = _space_guid(cf, ls)
    other = ls.add_space("qa").guid
    cf.ok(cf.post("/v3/service_instances", _body(space)), 201)
    cf.ok(cf.post("/v3/service_instances", _body(other)), 201)
    error = cf.error(cf.post("/v3/service_instances", _body(space, name="  lock-1 ")), 422)
    assert error["detail"] == "The service instance name is taken: lock-1."


def test_create_validations_and_texts(cf: Cf, ls: Landscape) -> None:
    """The generic then the specific message (app/messages/service_instance_create_*)."""
    space = _space_guid(cf, ls)
    cases = [
        (_body(space, type="other"), "Type must be one of 'managed', 'user-provided'"),
        (_body(space, name=""), "Name can't be blank"),
        (_body(space, tags="a"), "Tags must be an array"),
        (_body(space, tags=[1]), "Tags must be a list of strings"),
        ({"type": "user-provided", "name": "x"}, "Relationships 'relationships' is not an object"),
        (_body(space, parameters={}), "Unknown field(s): 'parameters'"),
        (_body(space, route_service_url="http://x.example"), "Route service url must be https"),
        (
            _body("no-such-space"),
            "Invalid space. Ensure that the space exists and you have access to it.",
        ),
        (_body(space, tags=["x" * 2049]), "tags too_long"),
    ]
    for body, detail in cases:
        error = cf.error(cf.post("/v3/service_instances", body), 422)
        assert error["detail"] == detail, body


def test_feature_flag_off_is_403(cf: Cf, ls: Landscape) -> None:
    ls.set_options(service_instance_creation=False)
    error = cf.error(cf.post("/v3/service_instances", _body(_space_guid(cf, ls))), 403)
    assert error == {
        "code": 330002,
        "title": "CF-FeatureDisabled",
        "detail": "Feature Disabled: service_instance_creation",
    }


def test_delete_is_204_synchronous_then_404(cf: Cf, ls: Landscape) -> None:
    created = cf.ok(cf.post("/v3/service_instances", _body(_space_guid(cf, ls))), 201)
    path = f"/v3/service_instances/{created['guid']}"
    assert cf.delete(path).status_code == 204
    assert cf.get(path).status_code == 404
    error = cf.error(cf.delete(path), 404)
    assert error == {
        "code": 10010,
        "title": "CF-ResourceNotFound",
        "detail": "Service instance not found",
    }
    # the name is free again at once: no job, no "delete in progress"
    cf.ok(cf.post("/v3/service_instances", _body(_space_guid(cf, ls))), 201)


def test_credentials_are_served_only_by_their_own_route(cf: Cf, ls: Landscape) -> None:
    body = _body(_space_guid(cf, ls), credentials={"k": "v"})
    created = cf.ok(cf.post("/v3/service_instances", body), 201)
    assert cf.ok(cf.get(f"/v3/service_instances/{created['guid']}/credentials")) == {"k": "v"}
