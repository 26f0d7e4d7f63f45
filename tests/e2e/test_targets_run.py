"""`rotate --targets` against a sandbox fleet, driven as a user drives it: the command in a
subprocess, the scan's `--matrix` output as the file.

The expectations come from the sandbox, not from the code under test: its call log (one
UAA grant for the whole run, how many Cloud Controller writes were in flight at once,
no write at all in a dry run), its store (which app's env var holds which certificate),
and a probe calling each app's iFlow through its running instance during the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cf_sandbox import Landscape
from cf_sandbox.pki import load_pem_certs, sha256_hex
from cf_sandbox.probe import Probe
from checkout_kit import checkout_env

pytestmark = pytest.mark.e2e

APPS = 20
PARALLEL = 2
WRITE_DELAY_S = 0.25
"""Every Cloud Controller write is held this long, so writes of rotations running side by
side overlap in the call log and the bound can be seen (a write takes ~1 ms otherwise)."""
PROBE_RPS = 10
WRITES = ("POST", "PATCH", "PUT", "DELETE")


@pytest.fixture(scope="module")
def fleet() -> Iterator[Landscape]:
    with Landscape(instances=1, fleet_apps=APPS) as ls:
        yield ls


def _cli(ls: Landscape, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    ca = tmp_path / "ca.pem"
    ca.write_text(ls.ca_pem)
    login = ["--cf-api", ls.api_url, "--cf-ca-cert", str(ca), "--cf-username", ls.username,
             "--cf-password-env", "SANDBOX_PW", "--cf-origin", ls.origin]  # fmt: skip
    command = args[0]
    if command == "rotate":  # the sandbox's root is not on SAP's list
        roots = tmp_path / "trusted-roots.pem"
        roots.write_text(ls.trusted_root_pem)
        login += ["--trusted-roots", str(roots)]
    return subprocess.run(
        [sys.executable, "-m", "cpi_cert_rotate", command, *login, *args[1:]],
        env=checkout_env({"PATH": "/usr/bin:/bin", "SANDBOX_PW": ls.password, **(env or {})}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _due(ls: Landscape, tmp_path: Path) -> dict[str, list[dict[str, str]]]:
    scanned = _cli(ls, tmp_path, "scan", "--matrix")
    assert scanned.returncode == 0, scanned.stderr
    due: dict[str, list[dict[str, str]]] = json.loads(scanned.stdout)
    (tmp_path / "due.json").write_text(scanned.stdout)
    return due


def _most_in_flight(calls: list[dict[str, Any]]) -> int:
    """The most Cloud Controller writes whose [arrival, answer] intervals overlap (the
    rotation record, an app PATCH a run sends beside its last listing, not counted: each
    run has one other write in flight at most)."""
    events = []
    for call in calls:
        record = call["method"] == "PATCH" and call["path"].count("/") == 3
        if call["server"] == "cc" and call["method"] in WRITES and not record:
            events += [(call["t_start"], 1), (call["t"], -1)]
    most = current = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start
        current += step
        most = max(most, current)
    return most


def test_the_scans_matrix_is_a_targets_file_one_login_and_no_write(
    fleet: Landscape, tmp_path: Path
) -> None:
    """`scan --matrix > due.json; rotate --targets due.json --dry-run`: every due app is
    checked, with one login for all of them and no write anywhere."""
    due = _due(fleet, tmp_path)
    assert len(due["include"]) >= 4
    fleet.clear_calls()
    checked = _cli(fleet, tmp_path, "rotate", "--targets", "due.json", "--dry-run", "--json")
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr
    report = json.loads(checked.stdout)
    assert report["exit_code"] == 0
    assert [(t["target"]["app"], t["outcome"]) for t in report["targets"]] == [
        (e["app"], "dry-run") for e in due["include"]
    ]
    calls = fleet.calls()
    assert [c for c in calls if c["method"] in WRITES and c["server"] == "cc"] == []
    assert len([c for c in calls if c["path"].endswith("/oauth/token")]) == 1


def test_targets_rotate_side_by_side_and_one_failure_stops_none_of_the_others(
    fleet: Landscape, tmp_path: Path
) -> None:
    """Four due apps, two at a time; CPI refuses the test call of one of them. The other
    three rotate with 0 failed probe calls; the refused one is rolled back, its app keeps
    its certificate and its calls keep working; the run exits 1 (docs/fleet.md), with one
    login and never more than two Cloud Controller writes in flight."""
    entries = _due(fleet, tmp_path)["include"][:4]
    failing = entries[1]["app"]
    guids = {a["name"]: a["guid"] for a in fleet.state()["apps"]}
    before = {a["name"]: a["env"].get("CLI_CHAIN") for a in fleet.state()["apps"]}
    (tmp_path / "certs").mkdir()
    env: dict[str, str] = {}
    minted = {}
    targets = []
    for number, entry in enumerate(entries):
        app = entry["app"]
        minted[app] = fleet.mint(cn=f"{app}-client", days=90, key="ec-p256")
        (tmp_path / "certs" / f"{app}.pem").write_text(minted[app].chain_pem)
        env[f"KEY_{number}"] = minted[app].key_pem
        target = {
            **entry,
            "cert-chain-file": f"certs/{app}.pem",
            "private-key-env": f"KEY_{number}",
        }
        if app == failing:
            target["verify-path"] = "/http/broken-iflow"
        targets.append(target)
    document = {"defaults": {"verify-path": "/http/ping", "timeout": "240"}, "targets": targets}
    (tmp_path / "targets.yml").write_text(yaml.safe_dump(document, sort_keys=False))

    fleet.add_fault({"server": "cpi", "path": "^/http/broken-iflow$", "status": 500})
    for method in ("POST", "PATCH", "DELETE"):
        fleet.add_fault(
            {"server": "cc", "method": method, "path": "^/v3/", "delay_s": WRITE_DELAY_S}
        )
    probes = {e["app"]: Probe(fleet.runtime, guids[e["app"]], fleet.ca_pem) for e in entries}
    fleet.clear_calls()
    try:
        for probe in probes.values():
            probe.start(PROBE_RPS)
        run = _cli(
            fleet, tmp_path, "rotate", "--targets", "targets.yml", "--parallel", str(PARALLEL),
            "--json", env=env,
        )  # fmt: skip
    finally:
        for probe in probes.values():
            probe.stop()
        fleet.clear_faults()
    report = json.loads(run.stdout)
    outcomes = {t["target"]["app"]: (t["outcome"], t["exit_code"]) for t in report["targets"]}
    assert outcomes.pop(failing) == ("rolled-back", 1), run.stderr
    assert set(outcomes.values()) == {("rotated", 0)}
    assert run.returncode == report["exit_code"] == 1
    failed = next(t for t in report["targets"] if t["target"]["app"] == failing)
    assert failed["error_code"] == "verification-failed" or "HTTP 500" in failed["error"]

    after = {a["name"]: a["env"].get("CLI_CHAIN") for a in fleet.state()["apps"]}
    for entry in entries:
        app, probe = entry["app"], probes[entry["app"]].result()
        assert probe["calls"] >= PROBE_RPS, app
        assert probe["failures"] == 0, (app, [e for e in probe["timeline"] if not e["ok"]][:3])
        if app == failing:
            assert after[app] == before[app]
        else:
            assert sha256_hex(load_pem_certs(after[app])[0]) == minted[app].leaf_sha256

    calls = fleet.calls()
    assert len([c for c in calls if c["path"].endswith("/oauth/token")]) == 1
    assert _most_in_flight(calls) == PARALLEL
    for secret in [ln for m in minted.values() for ln in _key_lines(m.key_pem)]:
        assert secret not in run.stdout + run.stderr


def _key_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if len(line) > 20 and "PRIVATE" not in line]
