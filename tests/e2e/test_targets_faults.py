"""A targets run of three apps where Cloud Controller (or CPI) fails one target at one step.

For each step of a rotation (the binding's broker job, the test call, the env PATCH, the
deployment, the old binding's delete) the middle target fails there; the run is the
command in a subprocess, a probe calls through every app's instance meanwhile. The other
two must rotate and be proven (a test call, their instances on the new certificate, one
binding); the failed one must be rolled back to exactly what it had, or, when the failure
comes after its certificate went live, say which binding is left; the run's exit code and
each target's report must say which is which; no lock may be left.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cf_sandbox import Landscape
from cf_sandbox.probe import Probe
from checkout_kit import checkout_env

pytestmark = pytest.mark.e2e

STEPS = {
    # step: (the fault for the failing app, parallel, its outcome and exit code)
    "bind-job": ({"job": "service_bindings.create", "fail": True, "after": 1, "times": 1}, 1,
                 ("rolled-back", 1)),
    "test-call": ({"server": "cpi", "path": "^/http/refused$", "status": 401}, 3,
                  ("rolled-back", 1)),
    "env-patch": ({"method": "PATCH", "path": "^/v3/apps/{app}/environment_variables$",
                   "status": 500}, 3, ("rolled-back", 1)),
    "deployment": ({"deployment": "cancel", "after": 1, "times": 1}, 1, ("rolled-back", 1)),
    "old-binding-delete": ({"method": "DELETE",
                            "path": "^/v3/service_credential_bindings/{old}$", "status": 500},
                           3, ("cleanup-incomplete", 3)),
}  # fmt: skip


def _fleet_state(ls: Landscape, guid: str) -> dict[str, Any]:
    state = ls.state()
    app = next(a for a in state["apps"] if a["guid"] == guid)
    return {
        "env": app["env"].get("CLI_CHAIN"),
        "instances": sorted(i["leaf_sha256"] for i in app["instances"]),
        "bindings": sorted(b["guid"] for b in state["bindings"] if b["app_guid"] == guid),
    }


@pytest.mark.parametrize("step", list(STEPS))
def test_one_target_failing_at_a_step_leaves_the_others_rotated_and_says_which(
    landscape_factory: Callable[..., Landscape], tmp_path: Path, step: str
) -> None:
    fault, parallel, (outcome, code) = STEPS[step]
    ls = landscape_factory(instances=1, fleet_apps=10)
    apps = [a for a in ls.fleet if a.kind == "due"][:3]
    failing = apps[1]
    (old,) = _fleet_state(ls, failing.guid)["bindings"]
    before = {a.name: _fleet_state(ls, a.guid) for a in apps}
    env = checkout_env({"PATH": "/usr/bin:/bin", "SANDBOX_PW": ls.password})
    targets, minted = [], {}
    for number, seeded in enumerate(apps):
        minted[seeded.name] = ls.mint(cn=f"{seeded.name}-client", days=90, key="ec-p256")
        (tmp_path / f"{seeded.name}.pem").write_text(minted[seeded.name].chain_pem)
        env[f"KEY_{number}"] = minted[seeded.name].key_pem
        verify = "/http/refused" if seeded is failing and step == "test-call" else "/http/ping"
        where = {"org": seeded.org, "space": seeded.space, "app": seeded.name}
        targets.append({**where, "instance": seeded.instances[0], "verify-path": verify,
                        "cert-chain-file": f"{seeded.name}.pem",
                        "private-key-env": f"KEY_{number}"})  # fmt: skip
    document = {"defaults": {"timeout": "60"}, "targets": targets}  # the test call's retries: 6 s
    (tmp_path / "targets.yml").write_text(yaml.safe_dump(document))
    (tmp_path / "ca.pem").write_text(ls.ca_pem)
    (tmp_path / "roots.pem").write_text(ls.trusted_root_pem)
    rule = json.loads(json.dumps(fault).replace("{app}", failing.guid).replace("{old}", old))
    ls.add_fault(rule)
    probes = {a.name: Probe(ls.runtime, a.guid, ls.ca_pem) for a in apps}
    for probe in probes.values():
        probe.start(10)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "cpi_cert_rotate", "rotate", "--cf-api", ls.api_url,
             "--cf-ca-cert", "ca.pem", "--cf-username", ls.username, "--cf-password-env",
             "SANDBOX_PW", "--cf-origin", ls.origin, "--trusted-roots", "roots.pem",
             "--targets", "targets.yml", "--parallel", str(parallel), "--json"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        for probe in probes.values():
            probe.stop()
    assert all(r["fired"] >= 1 for r in ls.faults()), ls.faults()
    ls.clear_faults()
    report = json.loads(run.stdout)
    assert run.returncode == report["exit_code"] == code, run.stderr[-2000:]
    by_app = {t["target"]["app"]: t for t in report["targets"]}
    assert (by_app[failing.name]["outcome"], by_app[failing.name]["exit_code"]) == (outcome, code)
    for seeded in apps:
        after, done = _fleet_state(ls, seeded.guid), by_app[seeded.name]
        result = probes[seeded.name].result()
        if step == "deployment" and seeded is failing:
            # The fault is the platform cancelling the rollout after its first batch. CC's
            # cancel (cloud_controller_ng lib/cloud_controller/deployment_updater/actions/
            # cancel.rb) destroys the deploying process and scales the prior one back up:
            # a one-instance app whose instance was already replaced has none running
            # until it starts again. That gap is the platform's; the rollback adds none.
            gaps = [e for e in result["timeline"] if not e["ok"]]
            assert {e.get("error") for e in gaps} <= {"no running instance"}, gaps[:3]
        else:
            assert result["failures"] == 0, (seeded.name, result["timeline"][-3:])
        if seeded is failing and outcome == "rolled-back":
            assert after == before[seeded.name]
            assert done["state_left"] == []
            continue
        assert done["verified"] is True
        new = minted[seeded.name].leaf_sha256
        assert after["instances"] == [new]
        if seeded is failing:
            assert old in after["bindings"]
            assert len(after["bindings"]) == 2
            assert any(old in line for line in done["state_left"])
        else:
            assert (done["outcome"], done["exit_code"]) == ("rotated", 0)
            assert len(after["bindings"]) == 1
    with ls.store.lock:
        assert not [si for si in ls.store.instances.values() if "lock" in si.name]


def test_two_targets_runs_on_overlapping_apps_rotate_each_app_once(
    landscape_factory: Callable[..., Landscape], tmp_path: Path
) -> None:
    """Runs A (apps 1-3) and B (apps 2-4, in reverse) start together with renew-before 30d,
    every Cloud Controller write slowed so that they overlap. Each app is rotated by
    exactly one run: the other says `locked` (exit 1) or, having read the app after the
    winner finished, `not-due`; the app holds the winner's certificate and one binding."""
    ls = landscape_factory(instances=1, fleet_apps=20)
    apps = [a for a in ls.fleet if a.kind == "due"][:4]
    bindings = {a.name: len(_fleet_state(ls, a.guid)["bindings"]) for a in apps}
    for method in ("POST", "PATCH", "DELETE"):
        ls.add_fault({"method": method, "path": "^/v3/", "delay_s": 0.1})
    runs, minted = {}, {}
    for name, chosen in (("A", apps[:3]), ("B", list(reversed(apps[1:])))):
        folder = tmp_path / name
        folder.mkdir()
        env = checkout_env({"PATH": "/usr/bin:/bin", "SANDBOX_PW": ls.password})
        targets = []
        for number, seeded in enumerate(chosen):
            minted[name, seeded.name] = ls.mint(cn=f"{seeded.name}-client", key="ec-p256")
            (folder / f"{seeded.name}.pem").write_text(minted[name, seeded.name].chain_pem)
            env[f"KEY_{number}"] = minted[name, seeded.name].key_pem
            targets.append({"org": seeded.org, "space": seeded.space, "app": seeded.name,
                            "instance": seeded.instances[0], "verify-path": "/http/ping",
                            "cert-chain-file": f"{seeded.name}.pem",
                            "private-key-env": f"KEY_{number}"})  # fmt: skip
        document = {"defaults": {"renew-before": "30d", "timeout": "60"}, "targets": targets}
        (folder / "targets.yml").write_text(yaml.safe_dump(document))
        (folder / "ca.pem").write_text(ls.ca_pem)
        (folder / "roots.pem").write_text(ls.trusted_root_pem)
        runs[name] = subprocess.Popen(
            [sys.executable, "-m", "cpi_cert_rotate", "rotate", "--cf-api", ls.api_url,
             "--cf-ca-cert", "ca.pem", "--cf-username", ls.username, "--cf-password-env",
             "SANDBOX_PW", "--cf-origin", ls.origin, "--trusted-roots", "roots.pem",
             "--targets", "targets.yml", "--parallel", "2", "--json"],
            env=env, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    reports = {}
    for name, process in runs.items():
        out, err = process.communicate(timeout=120)
        reports[name] = json.loads(out)
        assert process.returncode == reports[name]["exit_code"], err[-2000:]
    ls.clear_faults()
    for seeded in apps:
        ends = {
            name: next(t for t in report["targets"] if t["target"]["app"] == seeded.name)
            for name, report in reports.items()
            if any(t["target"]["app"] == seeded.name for t in report["targets"])
        }
        winners = [name for name, t in ends.items() if t["outcome"] == "rotated"]
        assert len(winners) == 1, {n: (t["outcome"], t["error_code"]) for n, t in ends.items()}
        for name, end in ends.items():
            if name != winners[0]:
                assert (end["outcome"], end["error_code"]) in (
                    ("failed", "locked"),
                    ("not-due", None),
                )
        after = _fleet_state(ls, seeded.guid)
        assert after["instances"] == [minted[winners[0], seeded.name].leaf_sha256]
        assert len(after["bindings"]) == bindings[seeded.name]  # one per instance
    with ls.store.lock:
        assert not [si for si in ls.store.instances.values() if "lock" in si.name]
