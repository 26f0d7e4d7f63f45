"""The fleet scan against a sandbox fleet, checked exactly against the sandbox's own state.

The expectation is computed from the landscape's store (bindings, the certificates the
broker registered, the apps' env vars), not from the scan's code: every app bound to an
it-rt `integration-flow` instance with a certificate, its live certificate and whether
it is due under renew-before 30d. The scan must find exactly those, with exactly those
expiry dates, in a fixed number of list calls plus two reads per app.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cf_sandbox import Landscape
from checkout_kit import checkout_env
from cpi_cert_rotate.cf import CfApiError, CfClient, client
from cpi_cert_rotate.fleet import Overlap, Place, ProblemCode, ScanReport, ScanRequest, scan
from cpi_cert_rotate.models import CfAuth
from cpi_cert_rotate.rotation import lock
from cpi_cert_rotate.rotation.lock import LockInfo, lock_name
from fleet_kit import Row, expected

pytestmark = pytest.mark.e2e

APPS = 50


def _request(ls: Landscape, **changes: Any) -> ScanRequest:
    auth = CfAuth(username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem)
    return ScanRequest(ls.api_url, auth, **changes)


def _rows(report: ScanReport) -> dict[Row, tuple[dt.datetime, bool]]:
    found = {}
    for f in report.findings:
        assert f.live is not None, f
        assert f.due is not None
        found[(f.org, f.space, f.app, f.instance)] = (f.live.not_after, f.due)
    return found


@pytest.fixture(scope="module")
def fleet() -> Any:
    with Landscape(instances=1, fleet_apps=APPS) as ls:
        yield ls


def test_the_scan_finds_exactly_the_certificate_bound_apps_with_their_expiry(
    fleet: Landscape,
) -> None:
    fleet.clear_calls()
    report = scan(_request(fleet))
    want = expected(fleet)
    assert _rows(report) == want
    kinds = {a.name: a.kind for a in fleet.fleet}
    found_apps = {f.app for f in report.findings}
    assert not found_apps & {n for n, k in kinds.items() if k in ("no-it-rt", "odata-only")}
    assert sum(due for _, due in want.values()) >= 8  # the fleet has due and fresh apps
    assert sum(not due for _, due in want.values()) >= 8

    # the matrix: every due app bound to one instance, most urgent first
    single = Counter(f.app_guid for f in report.findings)
    matrix_want = {
        (f.org, f.space, f.app) for f in report.findings if f.due and single[f.app_guid] == 1
    }
    assert {(e["org"], e["space"], e["app"]) for e in report.matrix} == matrix_want
    assert all(e["environment"] == f"cpi-{e['app']}" for e in report.matrix)
    order = [want[(e["org"], e["space"], e["app"], e["instance"])][0] for e in report.matrix]
    assert order == sorted(order)
    held = [f for f in report.due if not f.in_matrix]
    assert held
    assert all(f.has(ProblemCode.SEVERAL_INSTANCES) for f in held)

    # problems that follow from the fleet's shape
    by_app = {f.app: f for f in report.findings if f.instance == "cpi-rt"}
    assert by_app["app-009"].overlap is Overlap.PROVEN
    assert by_app["app-009"].has(ProblemCode.SEVERAL_BINDINGS)
    assert by_app["app-004"].last_rotation is not None
    assert by_app["app-004"].last_rotation.run_id == "gha:acme/cpi-ops/4004/1"
    assert by_app["app-001"].problems == ()
    assert by_app["app-001"].overlap is Overlap.POSSIBLE

    # calls: GET /, one token, one binding list, one space list, one list of the spaces'
    # user-provided instances (the locks); then per app its env vars and per row its live
    # binding's credentials; nothing else
    calls = fleet.calls()
    apps = len({f.app_guid for f in report.findings})
    kinds_of_call = Counter(_kind(c) for c in calls)
    assert kinds_of_call == {
        "root": 1,
        "token": 1,
        "binding list": 1,
        "space list": 1,
        "instance list": 1,
        "env vars": apps,
        "credentials": len(report.findings),
    }
    list_call = next(c for c in calls if _kind(c) == "binding list")
    assert "per_page=5000" in list_call["query"]
    assert "include=app,service_instance" in list_call["query"]
    locks_call = next(c for c in calls if _kind(c) == "instance list")
    assert "type=user-provided" in locks_call["query"]
    assert "per_page=5000" in locks_call["query"]
    assert not [f for f in report.findings if f.lock is not None]  # the seed holds no lock


def _kind(call: dict[str, Any]) -> str:
    path = call["path"]
    if path == "/":
        return "root"
    if path.endswith("/oauth/token"):
        return "token"
    if path == "/v3/service_credential_bindings":
        return "binding list"
    if path == "/v3/spaces":
        return "space list"
    if path == "/v3/service_instances" and call["method"] == "GET":
        return "instance list"
    if path.endswith("/environment_variables"):
        return "env vars"
    if path.endswith("/details"):
        return "credentials"
    return f"{call['method']} {path}"


def test_small_pages_and_guid_chunks_give_the_same_answer(
    fleet: Landscape, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every `next` link is followed and `included` is merged across pages."""
    whole = scan(_request(fleet))
    monkeypatch.setattr(client, "LIST_PER_PAGE", 4)
    monkeypatch.setattr(client, "GUIDS_PER_CALL", 2)
    fleet.clear_calls()
    paged = scan(_request(fleet, parallel=1))
    assert _rows(paged) == _rows(whole)
    assert paged.matrix == whole.matrix
    lists = [c for c in fleet.calls() if c["path"] == "/v3/service_credential_bindings"]
    assert len(lists) > 3
    assert any("page=2" in c["query"] for c in lists)


def test_rotation_locks_are_found_per_space_and_a_live_one_holds_its_app(
    fleet: Landscape, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The locks are made by the rotation's own `lock.acquire` (a live one, one whose run
    was killed: its expiry passed), plus an instance that only has a lock's name, and a
    lock named for an app but in another space (it is not that app's). Found the same
    with one space a call and one instance a page."""
    before = scan(_request(fleet))
    due = [f for f in before.findings if f.in_matrix]
    live, killed, clash = due[0], due[1], due[2]
    space_of = {a.guid: a.space_guid for a in fleet.store.apps.values()}
    elsewhere = next(f for f in due[3:] if space_of[f.app_guid] != space_of[live.app_guid])
    made: list[str] = []
    with CfClient(fleet.api_url, _request(fleet).auth) as cf:
        try:
            for finding, ttl in ((live, 1800.0), (killed, -120.0)):
                info = LockInfo.new(f"gha:acme/cpi-ops/77/1-{finding.app}", ttl)
                made.append(lock.acquire(cf, space_of[finding.app_guid], finding.app, info).guid)
            taken = lock_name(clash.app)
            made.append(cf.create_user_provided_instance(space_of[clash.app_guid], taken).guid)
            stray = LockInfo.new("gha:acme/cpi-ops/78/1", 1800)
            made.append(lock.acquire(cf, space_of[live.app_guid], elsewhere.app, stray).guid)
            fleet.clear_calls()
            report = scan(_request(fleet))
            calls = fleet.calls()
            monkeypatch.setattr(client, "LIST_PER_PAGE", 1)
            monkeypatch.setattr(client, "GUIDS_PER_CALL", 1)
            fleet.clear_calls()
            paged = scan(_request(fleet))
        finally:
            for guid in made:
                cf.delete_user_provided_instance(guid)
    assert len([c for c in calls if _kind(c) == "instance list"]) == 1
    spaces = {space_of[f.app_guid] for f in report.findings}
    paged_lists = [c for c in fleet.calls() if _kind(c) == "instance list"]
    assert len(paged_lists) > len(spaces) > 1  # every space a call, every instance a page
    assert [f.lock for f in paged.findings] == [f.lock for f in report.findings]
    by_app = {(f.app_guid, f.instance): f for f in report.findings}
    held = by_app[(live.app_guid, live.instance)]
    assert [str(p.code) for p in held.blocked_by] == ["locked"]
    locked = next(p for p in held.problems if p.code is ProblemCode.LOCKED)
    assert f"gha:acme/cpi-ops/77/1-{live.app}" in locked.message
    assert held.lock is not None
    assert held.lock.holder is not None
    assert held.lock.holder.expires is not None
    assert held.lock.holder.expires > report.scanned_at
    expired = by_app[(killed.app_guid, killed.instance)]
    assert [str(p.code) for p in expired.problems if "lock" in p.code] == ["lock-expired"]
    assert expired.in_matrix
    named = by_app[(clash.app_guid, clash.instance)]
    assert [str(p.code) for p in named.blocked_by] == ["lock-name-taken"]
    assert by_app[(elsewhere.app_guid, elsewhere.instance)].lock is None
    # exactly the live lock and the clash leave the matrix; nothing else changed
    assert {e["app"] for e in report.matrix} == {e["app"] for e in before.matrix} - {
        live.app,
        clash.app,
    }
    assert {f.app for f in report.findings if f.lock} == {live.app, killed.app, clash.app}


def test_a_scope_limits_the_scan_and_a_wrong_name_fails_before_the_big_list(
    fleet: Landscape,
) -> None:
    scoped = scan(_request(fleet, places=(Place("fleet-org-01", "SPACE-2"), Place("demo-org"))))
    rows = {(f.org, f.space) for f in scoped.findings}
    assert rows == {("fleet-org-01", "space-2"), ("demo-org", "dev")}
    assert scoped.skipped["outside-scope"] > 0
    want = {r: v for r, v in expected(fleet).items() if (r[0], r[1]) in rows}
    assert _rows(scoped) == want

    fleet.clear_calls()
    with pytest.raises(CfApiError, match="Space 'nope' not found in org 'fleet-org-01'") as caught:
        scan(_request(fleet, places=(Place("fleet-org-01", "nope"),)))
    assert caught.value.status == 404
    assert not [c for c in fleet.calls() if c["path"] == "/v3/service_credential_bindings"]
    with pytest.raises(CfApiError, match="Org 'no-such-org' not found"):
        scan(_request(fleet, places=(Place("no-such-org"),)))


def test_what_the_user_may_not_read_is_reported_and_held(fleet: Landscape) -> None:
    """Space Auditors get 404 for /details (service_credential_bindings_controller.rb
    `details`: not_found! unless can_read_secrets_in_the_binding_space?) and 403 for env
    vars (apps_controller.rb `show_environment_variables`)."""
    report = scan(_request(fleet))
    due = next(f for f in report.findings if f.in_matrix)
    other = next(f for f in report.findings if f.in_matrix and f.app_guid != due.app_guid)
    assert due.live_binding_guid is not None
    not_found = {"errors": [{"code": 10010, "title": "CF-ResourceNotFound",
                             "detail": "Service credential binding not found"}]}  # fmt: skip
    fleet.add_fault(
        {
            "method": "GET",
            "path": f"{due.live_binding_guid}/details$",
            "status": 404,
            "body": not_found,
        }
    )
    fleet.add_fault(
        {"method": "GET", "path": f"{other.app_guid}/environment_variables$", "status": 403}
    )
    try:
        again = scan(_request(fleet))
    finally:
        fleet.clear_faults()
    by_guid = {(f.app_guid, f.instance): f for f in again.findings}
    hidden = by_guid[(due.app_guid, due.instance)]
    assert [str(p.code) for p in hidden.blocked_by] == ["unreadable"]
    assert "binding credentials not readable (404 CF-ResourceNotFound" in hidden.problems[1].message
    assert hidden.live is not None  # the env var still says which certificate the app uses
    no_env = by_guid[(other.app_guid, other.instance)]
    assert "env vars not readable (403 CF-NotAuthorized)" in [p.message for p in no_env.problems]
    assert {e["app"] for e in again.matrix} == {e["app"] for e in report.matrix} - {
        due.app,
        other.app,
    }


def test_a_server_failure_fails_the_scan_instead_of_a_partial_answer(fleet: Landscape) -> None:
    """500 is not retried (cf/http.py); the reads not yet started are cancelled."""
    fleet.add_fault({"method": "GET", "path": "/details$", "status": 500, "after": 3})
    fleet.clear_calls()
    try:
        with pytest.raises(CfApiError) as caught:
            scan(_request(fleet, parallel=2))
    finally:
        fleet.clear_faults()
    assert caught.value.status == 500
    reads = [c for c in fleet.calls() if c["path"].endswith("/details")]
    assert len(reads) < len(scan(_request(fleet)).findings)


@pytest.mark.parametrize(
    ("options", "note"),
    [({"pinning": False}, "pinning is off"), ({"api_version": "3.204.0"}, "3.204.0 has no")],
    ids=["pinning-off", "old-api"],
)
def test_overlap_is_ruled_out_where_the_landscape_forbids_it(
    landscape_factory: Callable[..., Landscape], options: dict[str, Any], note: str
) -> None:
    ls = landscape_factory(instances=1, fleet_apps=10, **options)
    report = scan(_request(ls))
    assert report.findings
    assert {f.overlap for f in report.findings} == {Overlap.NO}
    assert all(note in f.overlap_note for f in report.findings)
    if "pinning" in options:
        assert {f.pinning for f in report.findings} == {False}


def test_the_report_holds_no_key_and_no_password(fleet: Landscape) -> None:
    text = json.dumps(scan(_request(fleet)).to_json())
    keys = [a["env"]["CLI_KEY"] for a in fleet.state()["apps"] if "CLI_KEY" in a["env"]]
    lines = {ln for k in keys for ln in k.splitlines() if len(ln) > 20 and "PRIVATE" not in ln}
    assert lines
    assert not [ln for ln in lines if ln in text]
    assert fleet.password not in text


def _cli(ls: Landscape, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    ca = tmp_path / "ca.pem"
    ca.write_text(ls.ca_pem)
    login = ["--cf-api", ls.api_url, "--cf-ca-cert", str(ca), "--cf-username", ls.username,
             "--cf-password-env", "SANDBOX_PW", "--cf-origin", ls.origin]  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "cpi_cert_rotate", "scan", *login, *args],
        env=checkout_env({"PATH": "/usr/bin:/bin", "SANDBOX_PW": ls.password}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_prints_a_table_json_and_exit_codes(fleet: Landscape, tmp_path: Path) -> None:
    table = _cli(fleet, tmp_path)
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header[:8] == ["ORG", "SPACE", "APP", "INSTANCE", "SUBJECT", "ISSUER", "NOT", "AFTER"]
    found = scan(_request(fleet))
    assert f"{len(found.findings)} certificate(s), {len(found.due)} due" in table.stdout
    data = json.loads(_cli(fleet, tmp_path, "--json").stdout)
    assert [a["app"] for a in data["apps"]] == [f.app for f in found.findings]
    assert data["due"] == found.matrix_json()

    strict = _cli(fleet, tmp_path, "--fail-if-expires-within", "14", "--matrix")
    assert strict.returncode == 1
    assert "expires within 14 days" in strict.stderr

    fleet.clear_calls()
    bad = _cli(fleet, tmp_path, "--environment", "cpi-{application}", "--scope", "acme/")
    assert bad.returncode == 2
    assert "not an org or org/space" in bad.stderr
    assert fleet.calls() == []


def test_without_a_chain_env_var_one_call_per_app_remains(fleet: Landscape) -> None:
    fleet.clear_calls()
    report = scan(_request(fleet, chain_env_var=""))
    assert not [c for c in fleet.calls() if c["path"].endswith("/environment_variables")]
    details = [c for c in fleet.calls() if c["path"].endswith("/details")]
    assert len(details) == len(report.findings)
    assert all(f.source == "binding" for f in report.findings)
