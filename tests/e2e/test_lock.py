"""The app's lock: a user-provided service instance whose name Cloud Controller keeps unique.

Two runs started together, with Cloud Controller slowed on one call: at most one changes
anything, the other exits 1 naming the holder, and neither touches the other's lock. Each
run's calls are recorded by its own client, so "who did what" is known, not inferred.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from rotation_kit import (
    assert_consistent,
    env_leaf_sha256,
    live_binding_leaves,
    request_for,
    write_calls,
)

from cf_sandbox import Landscape
from cpi_cert_rotate.cf import CfApiError, CfClient
from cpi_cert_rotate.models import CfAuth, Outcome, Report, RotationRequest
from cpi_cert_rotate.rotation import lock, rotate

pytestmark = pytest.mark.e2e

Calls = list[tuple[str, str, int | None]]
LOCK = "cpi-cert-rotate-lock-ntifext"


def _recording(calls: Calls) -> Callable[[RotationRequest], CfClient]:
    """A client factory whose clients log every call they make: (method, path, status)."""

    def factory(request: RotationRequest) -> CfClient:
        client = CfClient(request.target.api_url, request.auth, timeout_s=30.0)
        send = client._http.request

        def request_(method: str, url: str, **kw: Any) -> Any:
            path = urlsplit(url).path
            try:
                response = send(method, url, **kw)
            except CfApiError as error:
                calls.append((method, path, error.status))
                raise
            except Exception:
                calls.append((method, path, None))
                raise
            calls.append((method, path, response.status_code))
            return response

        client._http.request = request_  # type: ignore[method-assign]
        return client

    return factory


def _writes(calls: Calls) -> Calls:
    return [
        c for c in calls if c[0] in ("POST", "PATCH", "PUT", "DELETE") and c[1] != "/oauth/token"
    ]


def _lock_instances(ls: Landscape) -> list[Any]:
    with ls.store.lock:
        return [si for si in ls.store.instances.values() if si.name.startswith(LOCK)]


def _client(ls: Landscape) -> CfClient:
    auth = CfAuth(username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem)
    client = CfClient(ls.api_url, auth)
    client.authenticate()
    return client


def _space_guid(client: CfClient, ls: Landscape) -> str:
    return client.find_space(client.find_org(ls.org).guid, ls.space).guid


def _run_together(ls: Landscape, requests: list[RotationRequest]) -> list[tuple[Report, Calls]]:
    """Start the runs at the same moment, each with its own recording client."""
    results: list[tuple[Report, Calls] | None] = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def run(i: int) -> None:
        calls: Calls = []
        factory = _recording(calls)
        start.wait()
        results[i] = (rotate(requests[i], client_factory=factory), calls)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


SLOWED = {
    "lock-create": {"method": "POST", "path": r"^/v3/service_instances$", "delay_s": 1.0},
    "first-lookup": {"method": "GET", "path": r"^/v3/organizations$", "delay_s": 1.0},
    "nothing": None,
}


@pytest.mark.parametrize("slowed", list(SLOWED))
def test_two_runs_started_together_only_one_changes_anything(
    landscape_factory: Callable[..., Landscape], slowed: str
) -> None:
    ls = landscape_factory(start_s=0.4)  # the winner holds the lock for a few seconds
    fault = SLOWED[slowed]
    if fault is not None:
        ls.add_fault({**fault, "times": 1})
    mints = [ls.mint(cn="ntifext-client", days=90) for _ in range(2)]
    requests = [
        request_for(ls, m.chain_pem, m.key_pem, run_id=f"run-{name}")
        for m, name in zip(mints, "ab", strict=True)
    ]
    ls.probe_start(rps=20)
    (first, first_calls), (second, second_calls) = _run_together(ls, requests)
    ls.probe_stop()

    outcomes = sorted([first.outcome, second.outcome])
    assert outcomes == sorted([Outcome.ROTATED, Outcome.FAILED]), (first.error, second.error)
    winner, loser = (first, second) if first.outcome is Outcome.ROTATED else (second, first)
    loser_calls = first_calls if loser is first else second_calls
    winner_calls = second_calls if loser is first else first_calls
    winner_id = "run-a" if winner is first else "run-b"

    assert loser.exit_code == 1
    assert loser.error_code == "locked"
    assert f"another rotation ({winner_id}) holds the lock {LOCK}" in (loser.error or "")
    # the loser's only write is the create that Cloud Controller refused
    assert _writes(loser_calls) == [("POST", "/v3/service_instances", 422)]
    # the winner created its lock, and only it deleted it, by its own guid
    lock_deletes = [c for c in _writes(winner_calls) if c[1].startswith("/v3/service_instances/")]
    assert [(m, s) for m, _, s in lock_deletes] == [("DELETE", 204)]
    assert _lock_instances(ls) == []
    winner_leaf = next(m.leaf_sha256 for m, r in zip(mints, requests, strict=True)
                       if r.run_id == winner_id)  # fmt: skip
    assert assert_consistent(ls) == winner_leaf
    assert live_binding_leaves(ls) == {winner_leaf}
    assert ls.probe()["failures"] == 0


def test_a_stale_lock_taken_over_by_two_runs_at_once_loses_cleanly(
    landscape_factory: Callable[..., Landscape],
) -> None:
    ls = landscape_factory(start_s=0.4)
    client = _client(ls)
    stale = lock.LockInfo("gha:other/ops/7/1", datetime.now(UTC) - timedelta(minutes=1), "0ld")
    stale_guid = client.create_user_provided_instance(
        _space_guid(client, ls), LOCK, tags=stale.tags()
    ).guid
    mints = [ls.mint(cn="ntifext-client", days=90) for _ in range(2)]
    requests = [
        request_for(ls, m.chain_pem, m.key_pem, run_id=f"run-{n}")
        for m, n in zip(mints, "ab", strict=True)
    ]
    results = _run_together(ls, requests)

    assert sorted(r.outcome for r, _ in results) == sorted([Outcome.ROTATED, Outcome.FAILED])
    for report, calls in results:
        deletes = [
            c for c in calls if c[0] == "DELETE" and c[1].startswith("/v3/service_instances/")
        ]
        if report.outcome is Outcome.FAILED:
            assert report.error_code == "locked"
            # the loser deleted nothing but the stale lock (or found it gone already)
            assert {path for _, path, _ in deletes} <= {f"/v3/service_instances/{stale_guid}"}
            assert not [c for c in _writes(calls) if "service_credential_bindings" in c[1]]
            assert not [c for c in _writes(calls) if "environment_variables" in c[1]]
    assert client.get_service_instance(stale_guid) is None
    assert _lock_instances(ls) == []
    assert_consistent(ls)


def test_a_lock_held_by_another_run_blocks_without_change_until_it_expires(
    landscape: Landscape,
) -> None:
    client = _client(landscape)
    space = _space_guid(client, landscape)
    held = lock.LockInfo("someone-else", datetime.now(UTC) + timedelta(hours=1), "t1")
    guid = client.create_user_provided_instance(space, LOCK, tags=held.tags()).guid
    before = env_leaf_sha256(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    mark = len(landscape.calls())
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.FAILED
    assert report.exit_code == 1
    assert "another rotation (someone-else) holds the lock" in (report.error or "")
    assert f"cf delete-service {LOCK} -f" in (report.hint or "")
    assert [(c["method"], c["path"], c["status"]) for c in write_calls(landscape, mark)] == [
        ("POST", "/v3/service_instances", 422)
    ]
    assert env_leaf_sha256(landscape) == before
    assert client.get_service_instance(guid) is not None, "another run's lock was touched"

    client.delete_user_provided_instance(guid)
    expired = lock.LockInfo("someone-else", datetime.now(UTC) - timedelta(seconds=1), "t2")
    old_guid = client.create_user_provided_instance(space, LOCK, tags=expired.tags()).guid
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.ROTATED, report.error
    assert client.get_service_instance(old_guid) is None
    assert _lock_instances(landscape) == []


def test_a_rerun_attempt_takes_over_its_earlier_attempts_lock(landscape: Landscape) -> None:
    """GitHub never runs two attempts of one workflow run at once: attempt 1 has ended."""
    client = _client(landscape)
    left = lock.LockInfo("gha:acme/ops/42/1", datetime.now(UTC) + timedelta(minutes=20), "k1")
    client.create_user_provided_instance(_space_guid(client, landscape), LOCK, tags=left.tags())
    minted = landscape.mint(cn="ntifext-client", days=90)
    report = rotate(
        request_for(landscape, minted.chain_pem, minted.key_pem, run_id="gha:acme/ops/42/2")
    )
    assert report.outcome is Outcome.ROTATED, report.error
    assert _lock_instances(landscape) == []


def test_a_lost_answer_to_the_lock_create_is_recognised_by_its_token(
    landscape: Landscape,
) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    landscape.add_fault(
        {"method": "POST", "path": r"^/v3/service_instances$", "drop_connection": True,
         "after_apply": True, "times": 1}
    )  # fmt: skip
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.ROTATED, report.error
    assert _lock_instances(landscape) == []
    creates = [c for c in landscape.calls() if c["path"] == "/v3/service_instances"]
    assert [c["method"] for c in creates].count("POST") == 1  # adopted, not created twice


def test_a_lock_created_unseen_is_taken_back_when_the_run_cannot_go_on(
    landscape: Landscape,
) -> None:
    """The create's answer is lost and the lookup that would recognise it fails: the run
    stops, but it removes the lock it may have made, so the next run is not blocked."""
    minted = landscape.mint(cn="ntifext-client", days=90)
    landscape.add_fault(
        {"method": "POST", "path": r"^/v3/service_instances$", "drop_connection": True,
         "after_apply": True, "times": 1}
    )  # fmt: skip
    # observe finds the instance through the app's bindings: this is the lock's lookup
    landscape.add_fault({"method": "GET", "path": r"^/v3/service_instances$", "status": 500,
                         "times": 1})  # fmt: skip
    before = env_leaf_sha256(landscape)
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    landscape.clear_faults()
    assert report.outcome is Outcome.FAILED
    assert _lock_instances(landscape) == []
    assert env_leaf_sha256(landscape) == before
    assert rotate(request_for(landscape, minted.chain_pem, minted.key_pem)).rotated


def test_release_deletes_only_a_lock_that_carries_its_token(landscape: Landscape) -> None:
    client = _client(landscape)
    space = _space_guid(client, landscape)
    mine = lock.acquire(client, space, landscape.app, lock.LockInfo.new("run-a", 600))
    # taken over meanwhile (deleted by hand, another run took the name)
    client.delete_user_provided_instance(mine.guid)
    theirs = lock.acquire(client, space, landscape.app, lock.LockInfo.new("run-b", 600))
    note = lock.release(client, mine)
    assert note is not None
    assert "already gone" in note
    assert client.get_service_instance(theirs.guid) is not None
    assert lock.release(client, theirs) is None
    assert client.get_service_instance(theirs.guid) is None


def test_the_lock_name_taken_by_another_instance_is_refused_without_change(
    landscape: Landscape,
) -> None:
    client = _client(landscape)
    client.create_user_provided_instance(_space_guid(client, landscape), LOCK, tags=("db",))
    before = env_leaf_sha256(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.FAILED
    assert report.error_code == "lock-name-taken"
    assert "not a rotation lock" in (report.error or "")
    assert env_leaf_sha256(landscape) == before
    assert len(_lock_instances(landscape)) == 1


def test_without_the_service_instance_creation_flag_nothing_changes(
    landscape: Landscape,
) -> None:
    landscape.set_options(service_instance_creation=False)
    before = env_leaf_sha256(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.FAILED
    assert "Feature Disabled: service_instance_creation" in (report.error or "")
    assert env_leaf_sha256(landscape) == before


def test_while_a_run_holds_the_lock_cf_services_shows_who_and_until_when(
    landscape_factory: Callable[..., Landscape],
) -> None:
    ls = landscape_factory(start_s=0.6)
    client = _client(ls)
    space = _space_guid(client, ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    seen: list[Any] = []
    credentials: list[dict[str, Any]] = []

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not seen:
            found = client.find_service_instance_named(space, LOCK)
            if found is not None:
                seen.append(found)
                with ls.store.lock:
                    lock_si = ls.store.instances.get(found.guid)
                    credentials.append(dict(lock_si.credentials) if lock_si else {})
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem, run_id="gha:acme/ops/9/1"))
    watcher.join()
    assert report.outcome is Outcome.ROTATED
    assert seen, "the lock was never visible"
    instance = seen[0]
    assert instance.type == "user-provided"
    assert instance.tags[:2] == ("cpi-cert-rotate-lock", "owner=gha:acme/ops/9/1")
    assert instance.tags[2].startswith("expires=")
    assert credentials == [{}], "nothing for an app that binds it by mistake to read"
