"""What the fleet paths report about what was left or would be changed: a killed run's
leftovers and a stopped app in the scan, unproven rotations in a targets run's summary.

A run killed (SIGKILL: a runner lost, an OOM kill) after it promoted the new certificate
leaves the app with the new chain in its env var (fresh: not due any more), the instances
still presenting the old one, the old binding beside the new one, and its lock until that
expires. The scan's promise (docs/fleet.md, "The lock") is that a scheduled plan-then-rotate
run clears that by itself: the next rotation takes the expired lock over and finishes. It
can only if the plan hands the app to a rotation, whether its certificate is due or not.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from rotation_kit import request_for

from cf_sandbox import Landscape
from cf_sandbox.pki import load_pem_certs, sha256_hex
from checkout_kit import checkout_env
from cpi_cert_rotate import material
from cpi_cert_rotate.cf import CfClient
from cpi_cert_rotate.fleet import ProblemCode, ScanRequest, scan
from cpi_cert_rotate.models import CfAuth, CfTarget, Outcome, RenewBefore
from cpi_cert_rotate.rotation import lock, rotate
from cpi_cert_rotate.rotation.lock import LockInfo, lock_name

pytestmark = pytest.mark.e2e


def _auth(ls: Landscape) -> CfAuth:
    return CfAuth(username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem)


def _app(ls: Landscape, name: str) -> dict:  # type: ignore[type-arg]
    return next(a for a in ls.state()["apps"] if a["name"] == name)


def _leftovers_of_a_killed_run(ls: Landscape, app: str) -> str:
    """Bind the new certificate beside the old, promote it to the env var, take the lock
    with an expiry already past: what a run killed between promote and deploy leaves
    (its instances are never restarted). Returns the new leaf's SHA-256."""
    seeded = next(a for a in ls.fleet if a.name == app)
    space_guid = ls.store.apps[seeded.guid].space_guid
    si_guid = next(
        si.guid
        for si in ls.store.instances.values()
        if si.space_guid == space_guid and si.name == seeded.instances[0]
    )
    new = ls.mint(cn=f"{app}-client", days=90, key="ec-p256")
    chain = material.validate(material.load_chain(new.chain_pem))
    with CfClient(ls.api_url, _auth(ls)) as cf:
        cf.create_app_binding(
            seeded.guid, si_guid, name=None,
            parameters=material.binding_parameters(chain.leaf), strategy="multiple",
            deadline=time.monotonic() + 30,
        )  # fmt: skip
        cf.patch_env_vars(
            seeded.guid, {"CLI_CHAIN": material.env_chain_pem(chain), "CLI_KEY": new.key_pem}
        )
        killed = LockInfo.new("gha:acme/cpi-ops/91/1", -120.0)
        lock.acquire(cf, space_guid, app, killed)
    return new.leaf_sha256


def test_an_app_a_killed_run_left_half_way_is_in_the_matrix_and_its_rotation_finishes_it(
    landscape_factory: Callable[..., Landscape],
) -> None:
    """Before: the app was not due (its env var holds the killed run's fresh certificate),
    so the plan never handed it to a rotation; the old binding stayed (CPI kept accepting
    the old certificate) and the instances kept presenting the old certificate until it
    expired. Now the scan puts it in the matrix and says why; the matrix job (renew-before
    as the plan's) takes the lock over and finishes without a new certificate."""
    ls = landscape_factory(instances=1, fleet_apps=10)
    app = "app-006"  # fresh: not due
    old = next(a for a in ls.fleet if a.name == app).leaf_sha256
    new = _leftovers_of_a_killed_run(ls, app)
    assert {i["leaf_sha256"] for i in _app(ls, app)["instances"]} == {old}

    report = scan(ScanRequest(ls.api_url, _auth(ls)))
    finding = next(f for f in report.findings if f.app == app)
    assert finding.due is False
    assert finding.has(ProblemCode.LOCK_EXPIRED)
    assert finding.in_matrix
    assert app in [e["app"] for e in report.matrix]
    expired = next(p for p in finding.problems if p.code is ProblemCode.LOCK_EXPIRED)
    assert "in the `due` matrix" in expired.message
    assert report.to_json()["apps"][[f.app for f in report.findings].index(app)]["in_matrix"]

    entry = next(e for e in report.matrix if e["app"] == app)
    other = ls.mint(cn=f"{app}-client", days=90, key="ec-p256")
    request = replace(
        request_for(ls, other.chain_pem, other.key_pem, renew_before=RenewBefore.parse("30d")),
        target=CfTarget(ls.api_url, entry["org"], entry["space"], app, entry["instance"]),
    )
    done = rotate(request)
    assert done.outcome is Outcome.NOT_DUE, (done.error, done.state_left)
    state = _app(ls, app)
    assert {i["leaf_sha256"] for i in state["instances"]} == {new}
    leaves = [b["leaf_sha256"] for b in ls.state()["bindings"] if b["app_guid"] == state["guid"]]
    assert leaves == [new]
    with ls.store.lock:
        assert lock_name(app) not in {si.name for si in ls.store.instances.values()}
    again = scan(ScanRequest(ls.api_url, _auth(ls)))
    assert app not in [e["app"] for e in again.matrix]


def test_the_summary_of_a_targets_run_says_which_rotations_no_call_proved(
    landscape_factory: Callable[..., Landscape], tmp_path: Path
) -> None:
    """Two targets, one with a verify-path and one without. Each target's own report said
    "ROTATED BUT NOT VERIFIED" for the second, but the run's last lines said "2 rotated"
    and listed both as `rotated`."""
    ls = landscape_factory(instances=1, fleet_apps=10)
    due = [a for a in ls.fleet if a.kind == "due"][:2]
    (tmp_path / "ca.pem").write_text(ls.ca_pem)
    (tmp_path / "roots.pem").write_text(ls.trusted_root_pem)
    env = checkout_env({"PATH": "/usr/bin:/bin", "SANDBOX_PW": ls.password})
    targets = []
    for number, seeded in enumerate(due):
        minted = ls.mint(cn=f"{seeded.name}-client", days=90, key="ec-p256")
        (tmp_path / f"{seeded.name}.pem").write_text(minted.chain_pem)
        env[f"KEY_{number}"] = minted.key_pem
        where = {"org": seeded.org, "space": seeded.space, "app": seeded.name}
        targets.append(
            {
                **where,
                "instance": seeded.instances[0],
                "cert-chain-file": f"{seeded.name}.pem",
                "private-key-env": f"KEY_{number}",
            }
        )
    targets[0]["verify-path"] = "/http/ping"
    (tmp_path / "targets.yml").write_text(yaml.safe_dump({"targets": targets}))
    command = [
        sys.executable, "-m", "cpi_cert_rotate", "rotate", "--cf-api", ls.api_url,
        "--cf-ca-cert", "ca.pem", "--cf-username", ls.username, "--cf-password-env",
        "SANDBOX_PW", "--cf-origin", ls.origin, "--trusted-roots", "roots.pem",
        "--targets", "targets.yml", "--parallel", "2",
    ]  # fmt: skip
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    tail = run.stdout[run.stdout.index("\n2 target(s)") :]
    assert "2 rotated (1 not verified), 0 failed; exit code 0" in tail
    proven, unproven = (f"{a.org}/{a.space}/{a.name}" for a in due)
    lines = tail.splitlines()
    assert next(ln for ln in lines if ln.endswith(proven)).split()[0] == "rotated"
    assert "rotated, not verified" in next(ln for ln in lines if ln.endswith(unproven))
    for seeded in due:
        env_leaf = load_pem_certs(_app(ls, seeded.name)["env"]["CLI_CHAIN"])[0]
        assert sha256_hex(env_leaf) != seeded.leaf_sha256


def test_a_stopped_due_app_is_in_the_matrix_and_a_targets_run_leaves_it_stopped(
    landscape_factory: Callable[..., Landscape], tmp_path: Path
) -> None:
    """Cloud Controller starts a stopped app it deploys (cloud_controller_ng
    app/actions/deployment_create.rb: `AppStart.start` when `app.stopped?`), and so does
    the sandbox. The scan held a stopped due app out of the matrix for that reason, and a
    targets run naming it started it. A rotation now leaves it stopped (no deployment), so
    the scan says `stopped` without holding it, and the targets run's summary says so."""
    ls = landscape_factory(instances=1, fleet_apps=10)
    stopped = next(a for a in ls.fleet if a.kind == "due")
    with CfClient(ls.api_url, _auth(ls)) as cf:
        cf.stop_app(stopped.guid)
    report = scan(ScanRequest(ls.api_url, _auth(ls)))
    finding = next(f for f in report.findings if f.app == stopped.name)
    assert finding.due
    assert "stopped" in [str(p.code) for p in finding.problems]
    assert finding.blocked_by == ()
    assert stopped.name in [e["app"] for e in report.matrix]

    since = len(ls.calls())
    new = ls.mint(cn=f"{stopped.name}-client", days=90, key="ec-p256")
    (tmp_path / "ca.pem").write_text(ls.ca_pem)
    (tmp_path / "roots.pem").write_text(ls.trusted_root_pem)
    (tmp_path / "new.pem").write_text(new.chain_pem)
    env = checkout_env({"PATH": "/usr/bin:/bin", "SANDBOX_PW": ls.password, "NEW_KEY": new.key_pem})
    target = {"org": stopped.org, "space": stopped.space, "app": stopped.name,
              "instance": stopped.instances[0], "cert-chain-file": "new.pem",
              "private-key-env": "NEW_KEY", "verify-path": "/http/ping"}  # fmt: skip
    (tmp_path / "targets.yml").write_text(yaml.safe_dump({"targets": [target]}))
    command = [
        sys.executable, "-m", "cpi_cert_rotate", "rotate", "--cf-api", ls.api_url,
        "--cf-ca-cert", "ca.pem", "--cf-username", ls.username, "--cf-password-env",
        "SANDBOX_PW", "--cf-origin", ls.origin, "--trusted-roots", "roots.pem",
        "--targets", "targets.yml",
    ]  # fmt: skip
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert _app(ls, stopped.name)["state"] == "STOPPED", "the targets run started the app"
    posts = [c["path"] for c in ls.calls()[since:] if c["method"] == "POST"]
    assert "/v3/deployments" not in posts
    tail = run.stdout[run.stdout.index("\n1 target(s)") :]
    assert "1 rotated (1 app stopped), 0 failed; exit code 0" in tail
    assert "rotated, app stopped" in tail
    env_leaf = load_pem_certs(_app(ls, stopped.name)["env"]["CLI_CHAIN"])[0]
    assert sha256_hex(env_leaf) == new.leaf_sha256
    leaves = {b["leaf_sha256"] for b in ls.state()["bindings"] if b["app_guid"] == stopped.guid}
    assert leaves == {new.leaf_sha256}


def test_an_in_place_rotation_with_pinning_off_is_no_env_mismatch(
    landscape_factory: Callable[..., Landscape],
) -> None:
    """With pinning off, `in-place` keeps the binding (it registers the old certificate)
    and CPI accepts the new one by its subject and issuer (rotation/observe.py `accepts`).
    The scan called every app so rotated `env-mismatch`, "changed by hand, or a rotation
    stopped half-way". A certificate with another subject is still a mismatch."""
    ls = landscape_factory(instances=1, fleet_apps=10, pinning=False)
    rotated, changed = [a for a in ls.fleet if a.kind == "due"][:2]
    new = ls.mint(cn=f"{rotated.name}-client", days=90, key="ec-p256")
    target = CfTarget(ls.api_url, rotated.org, rotated.space, rotated.name, rotated.instances[0])
    done = rotate(replace(request_for(ls, new.chain_pem, new.key_pem), target=target))
    assert (done.outcome, done.strategy) == (Outcome.ROTATED, "in-place"), done.error
    other = ls.mint(cn=f"{changed.name}-renamed", days=90, key="ec-p256")
    with CfClient(ls.api_url, _auth(ls)) as cf:
        cf.patch_env_vars(changed.guid, {"CLI_CHAIN": other.chain_pem, "CLI_KEY": other.key_pem})

    report = scan(ScanRequest(ls.api_url, _auth(ls)))
    by_app = {f.app: f for f in report.findings}
    assert by_app[rotated.name].pinning is False
    assert by_app[rotated.name].env is not None
    assert by_app[rotated.name].env.fingerprint_sha256 == new.leaf_sha256
    assert by_app[rotated.name].problems == ()
    assert by_app[changed.name].has(ProblemCode.ENV_MISMATCH)
