"""Re-runs converge: a run finds what an earlier one left and finishes it, or says so.

`already-current` and `not-due` used to end with exit 0 and zero writes whatever was left:
an old binding after SIGKILL mid-deployment or after `cleanup-incomplete` (CPI still
accepted the old certificate), a binding a lost create left, an env that never reached the
instances. Each case is built the way it really arises, then the re-run is checked.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rotation_kit import (
    accepted_leaves,
    assert_consistent,
    instance_leaves,
    live_binding_leaves,
    request_for,
    the_app,
    write_calls,
)

from cf_sandbox import Landscape
from checkout_kit import checkout_env
from cpi_cert_rotate import material
from cpi_cert_rotate.cf import CfClient
from cpi_cert_rotate.models import CfAuth, Outcome, RenewBefore, RotationRequest, Strategy
from cpi_cert_rotate.rotation import rotate
from cpi_cert_rotate.rotation.annotations import AnnotationKeys

pytestmark = pytest.mark.e2e


def _client(ls: Landscape) -> CfClient:
    auth = CfAuth(username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem)
    return CfClient(ls.api_url, auth)


def _cli(ls: Landscape, tmp_path: Path, *extra: str) -> list[str]:
    (tmp_path / "ca.pem").write_text(ls.ca_pem)
    (tmp_path / "roots.pem").write_text(ls.trusted_root_pem)
    return [
        sys.executable, "-m", "cpi_cert_rotate", "rotate",
        "--cf-api", ls.api_url, "--cf-username", ls.username,
        "--cf-password-env", "TEST_CF_PASSWORD", "--cf-origin", ls.origin,
        "--cf-ca-cert", str(tmp_path / "ca.pem"), "--trusted-roots", str(tmp_path / "roots.pem"),
        "--cf-org", ls.org, "--cf-space", ls.space,
        "--app", ls.app, "--service-instance", ls.service_instance,
        "--chain-env", "TEST_CHAIN", "--key-env", "TEST_KEY", "--verify-path", "/http/ping",
        "--json", *extra,
    ]  # fmt: skip


def _spawn(
    ls: Landscape, tmp_path: Path, chain: str, key: str, *extra: str
) -> subprocess.Popen[str]:
    env = checkout_env(TEST_CF_PASSWORD=ls.password, TEST_CHAIN=chain, TEST_KEY=key)
    return subprocess.Popen(
        _cli(ls, tmp_path, *extra), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _wait_for_call(ls: Landscape, method: str, path: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not any(c["method"] == method and c["path"] == path for c in ls.calls()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no {method} {path}"
        time.sleep(0.02)


def _settle(ls: Landscape) -> None:
    """Cloud Controller finishes a deployment whose client died; wait for that."""
    deadline = time.monotonic() + 30
    while any(d["value"] == "ACTIVE" for d in ls.state()["deployments"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_rerun_after_sigkill_mid_deployment_removes_the_old_binding(
    landscape_factory: Callable[..., Landscape], tmp_path: Path
) -> None:
    ls = landscape_factory(start_s=0.5)
    old_leaf = assert_consistent(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    process = _spawn(ls, tmp_path, minted.chain_pem, minted.key_pem)
    _wait_for_call(ls, "POST", "/v3/deployments", process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    _settle(ls)
    assert live_binding_leaves(ls) == {old_leaf, minted.leaf_sha256}, "not the state to test"

    ls.probe_start(rps=20)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    ls.probe_stop()
    assert report.outcome is Outcome.ALREADY_CURRENT, report.error
    assert report.exit_code == 0
    assert any(w.startswith("left by an earlier run: binding") for w in report.warnings)
    assert live_binding_leaves(ls) == {minted.leaf_sha256}, "CPI still accepts the old certificate"
    assert assert_consistent(ls) == minted.leaf_sha256
    assert set(instance_leaves(ls)) == {minted.leaf_sha256}
    assert ls.probe()["failures"] == 0
    assert not [si for si in ls.store.instances.values() if "lock" in si.name], "stale lock"
    # converged: the next run has nothing left to do and writes nothing
    mark = len(ls.calls())
    again = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    assert again.outcome is Outcome.ALREADY_CURRENT
    assert write_calls(ls, since=mark) == []


def test_rerun_after_cleanup_incomplete_finishes_the_cleanup(landscape: Landscape) -> None:
    old_leaf = assert_consistent(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    landscape.add_fault({"job": "service_bindings.delete", "fail": True})
    first = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    landscape.clear_faults()
    assert first.outcome is Outcome.CLEANUP_INCOMPLETE, first.error
    assert first.exit_code == 3
    assert accepted_leaves(landscape) == {old_leaf, minted.leaf_sha256}

    again = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    assert again.outcome is Outcome.ALREADY_CURRENT, again.error
    assert accepted_leaves(landscape) == {minted.leaf_sha256}
    assert assert_consistent(landscape) == minted.leaf_sha256


def test_a_stray_binding_is_removed_by_a_not_due_run_and_only_reported_by_a_check(
    landscape: Landscape,
) -> None:
    """What a create applied after its run rolled back leaves: a binding with a leaf the
    app does not use (CPI accepts it until it is gone)."""
    live = assert_consistent(landscape)
    stray = landscape.mint(cn="ntifext-client", days=90)
    with _client(landscape) as client:
        client.create_app_binding(
            landscape.app_guid,
            landscape.service_instance_guid,
            name=None,
            parameters=material.binding_parameters(material.load_chain(stray.chain_pem)[0]),
            strategy="multiple",
            deadline=time.monotonic() + 30,
        )
    assert live_binding_leaves(landscape) == {live, stray.leaf_sha256}
    base = request_for(landscape, stray.chain_pem, stray.key_pem)
    check = RotationRequest(
        target=base.target, auth=base.auth, dry_run=True, renew_before=RenewBefore.parse("1d")
    )
    mark = len(landscape.calls())
    report = rotate(check)
    assert report.outcome is Outcome.NOT_DUE
    assert any("does not serve the certificate" in w for w in report.warnings)
    assert write_calls(landscape, since=mark) == []

    other = landscape.mint(cn="ntifext-client", days=90)
    report = rotate(
        request_for(landscape, other.chain_pem, other.key_pem, renew_before=RenewBefore.parse("1d"))
    )
    assert report.outcome is Outcome.NOT_DUE, report.error
    assert live_binding_leaves(landscape) == {live}
    assert assert_consistent(landscape) == live


def test_rerun_brings_an_env_that_never_reached_the_instances_to_them(
    landscape: Landscape,
) -> None:
    """A swap run killed between its env PATCH and its deployment: bindings and env name
    the new certificate, the instances still present the old one, which CPI refuses."""
    keys = AnnotationKeys()
    first = landscape.mint(cn="ntifext-client", days=90)
    assert rotate(request_for(landscape, first.chain_pem, first.key_pem)).rotated
    new = landscape.mint(cn="ntifext-client", days=90)
    leaf = material.load_chain(new.chain_pem)[0]
    with _client(landscape) as client:
        for binding in client.list_app_bindings(
            landscape.app_guid, landscape.service_instance_guid
        ):
            client.delete_binding(binding.guid, deadline=time.monotonic() + 30)
        client.create_app_binding(
            landscape.app_guid, landscape.service_instance_guid, name=None,
            parameters=material.binding_parameters(leaf), strategy=None,
            deadline=time.monotonic() + 30,
        )  # fmt: skip
        chain = material.env_chain_pem(material.validate(material.load_chain(new.chain_pem)))
        client.patch_env_vars(landscape.app_guid, {"CLI_CHAIN": chain, "CLI_KEY": new.key_pem})
    assert the_app(landscape)["annotations"][keys.fingerprint] == first.leaf_sha256
    assert set(instance_leaves(landscape)) == {first.leaf_sha256}

    report = rotate(request_for(landscape, new.chain_pem, new.key_pem))
    assert report.outcome is Outcome.ALREADY_CURRENT, report.error
    assert any("stopped before its finish step" in w for w in report.warnings)
    assert set(instance_leaves(landscape)) == {new.leaf_sha256}
    assert the_app(landscape)["annotations"][keys.fingerprint] == new.leaf_sha256
    assert assert_consistent(landscape) == new.leaf_sha256


def test_a_create_applied_after_the_client_gave_up_is_waited_for_before_rollback_ends(
    landscape: Landscape,
) -> None:
    """Cloud Controller applies the bind POST 3 s after it arrived; the client gave up after
    2 s and the run rolls back. The report must not say "rolled back" before that binding
    is gone, and none may show up afterwards."""
    old_leaf = assert_consistent(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    landscape.add_fault(
        {"method": "POST", "path": r"^/v3/service_credential_bindings$", "delay_s": 3, "times": 1}
    )

    def short_timeouts(request: RotationRequest) -> CfClient:
        return CfClient(request.target.api_url, request.auth, timeout_s=2.0)

    report = rotate(
        request_for(landscape, minted.chain_pem, minted.key_pem, strategy=Strategy.OVERLAP),
        client_factory=short_timeouts,
    )
    assert report.outcome is Outcome.ROLLED_BACK, (report.error, report.state_left)
    assert minted.leaf_sha256 not in {b["leaf_sha256"] for b in landscape.state()["bindings"]}
    time.sleep(3)  # anything still in flight would have landed by now
    assert live_binding_leaves(landscape) == {old_leaf}
    assert assert_consistent(landscape) == old_leaf


def test_a_stray_newer_binding_does_not_hide_that_the_certificate_is_live(
    landscape: Landscape,
) -> None:
    """The newest binding registers a certificate a rolled-back run left; the live one is
    registered by the older binding. Asked for the live certificate, the run must say it is
    current (not register it a second time, which CPI refuses) and remove the stray."""
    live = assert_consistent(landscape)
    first = landscape.mint(cn="ntifext-client", days=90)
    assert rotate(request_for(landscape, first.chain_pem, first.key_pem)).rotated
    stray = landscape.mint(cn="ntifext-client", days=90)
    with _client(landscape) as client:
        client.create_app_binding(
            landscape.app_guid,
            landscape.service_instance_guid,
            name=None,
            parameters=material.binding_parameters(material.load_chain(stray.chain_pem)[0]),
            strategy="multiple",
            deadline=time.monotonic() + 30,
        )
    assert live != first.leaf_sha256
    report = rotate(request_for(landscape, first.chain_pem, first.key_pem))
    assert report.outcome is Outcome.ALREADY_CURRENT, report.error
    assert accepted_leaves(landscape) == {first.leaf_sha256}
    assert assert_consistent(landscape) == first.leaf_sha256


def test_a_create_of_an_earlier_run_landing_during_this_one_is_adopted(
    landscape: Landscape, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An earlier run's bind POST for the same certificate is applied by Cloud Controller
    just as this run binds: the broker refuses this run's (a certificate is taken once),
    and the run uses the binding that already registers its certificate."""
    from cf_sandbox.state import Binding, LastOperation

    minted = landscape.mint(cn="ntifext-client", days=90)
    leaf = material.load_chain(minted.chain_pem)[0]
    original = landscape.broker.bind
    landed: list[str] = []

    def bind_after_the_late_create(binding: Binding) -> None:
        if not landed and binding.parameters.get("X.509"):
            late = Binding(
                type="app", name=None, service_instance_guid=binding.service_instance_guid,
                app_guid=binding.app_guid, parameters=dict(binding.parameters),
                last_operation=LastOperation(type="create", state="succeeded"),
            )  # fmt: skip
            original(late)
            late.registered_at = time.monotonic()
            landscape.store.add(late)
            landed.append(late.guid)
        original(binding)

    monkeypatch.setattr(landscape.broker, "bind", bind_after_the_late_create)
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    assert landed, "the late create never landed"
    assert report.outcome is Outcome.ROTATED, (report.error, report.state_left)
    assert report.binding_guid == landed[0]
    assert any("it is used instead" in w for w in report.warnings)
    assert accepted_leaves(landscape) == {minted.leaf_sha256}
    assert assert_consistent(landscape) == minted.leaf_sha256
    assert material.fingerprint(leaf) == minted.leaf_sha256
