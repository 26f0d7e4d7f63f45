"""Reports tell the truth: "state left" from a fresh read, signals, refusals without writes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rotation_kit import (
    assert_consistent,
    env_leaf_sha256,
    instance_leaves,
    live_binding_leaves,
    request_for,
    write_calls,
)

from cf_sandbox import Landscape
from checkout_kit import checkout_env
from cpi_cert_rotate.models import Outcome, Strategy
from cpi_cert_rotate.rotation import rotate

pytestmark = pytest.mark.e2e


ALWAYS_500 = {
    "env-patch-500-always": {"method": "PATCH", "path": r"/environment_variables$"},
    "deployment-get-500-always": {"method": "GET", "path": r"^/v3/deployments/[^/]+$"},
}


@pytest.mark.parametrize(
    ("name", "fault"),
    [(name, {**rule, "status": 500}) for name, rule in ALWAYS_500.items()],
)
def test_a_failing_undo_of_a_change_that_never_stuck_is_a_clean_rollback(
    landscape: Landscape, name: str, fault: dict[str, object]
) -> None:
    """Both used to end `rollback-incomplete` (exit 3) with a false "state left" and
    manual steps, although the app was exactly as before."""
    old_leaf = assert_consistent(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    landscape.add_fault(fault)
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem, timeout_s=30.0))
    landscape.clear_faults()
    assert report.outcome is Outcome.ROLLED_BACK, (name, report.error, report.state_left)
    assert report.exit_code == 1
    assert report.state_left == ()
    assert report.manual_actions == ()
    assert assert_consistent(landscape) == old_leaf
    assert minted.leaf_sha256 not in live_binding_leaves(landscape)
    assert set(instance_leaves(landscape)) == {old_leaf}


def test_a_real_split_state_is_reported_as_read_fresh(landscape: Landscape) -> None:
    """The env PATCH lands, the deployment is refused, the env cannot be restored: the
    report names exactly that. The new binding is kept (it used to be deleted): an
    instance that restarts takes the env's new certificate, which would then be
    registered nowhere."""
    old_leaf = env_leaf_sha256(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    landscape.add_fault(
        {"method": "PATCH", "path": r"/environment_variables$", "status": 500, "after": 1}
    )
    landscape.add_fault({"method": "POST", "path": r"^/v3/deployments$", "status": 500})
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem, timeout_s=30.0))
    landscape.clear_faults()
    assert report.outcome is Outcome.ROLLBACK_INCOMPLETE, report.error
    assert report.exit_code == 3
    assert env_leaf_sha256(landscape) == minted.leaf_sha256  # what the report must say
    assert len(report.state_left) == 2, report.state_left
    assert "env holds the new certificate" in report.state_left[0]
    assert "registers the new certificate" in report.state_left[1]
    assert report.manual_actions[0] == (
        "set CLI_CHAIN and CLI_KEY of ntifext back to the previous chain and key "
        "(`cf set-env`), then `cf restart ntifext --strategy rolling`"
    )
    assert report.manual_actions[1].startswith("cf curl -X DELETE /v3/service_credential_bindings/")
    assert {old_leaf, minted.leaf_sha256} <= live_binding_leaves(landscape)
    assert set(instance_leaves(landscape)) == {old_leaf}  # no instance restarted
    # the docs' promise: a re-run finishes the rotation from there
    rerun = rotate(request_for(landscape, minted.chain_pem, minted.key_pem, timeout_s=30.0))
    assert rerun.outcome in (Outcome.ROTATED, Outcome.ALREADY_CURRENT), (
        rerun.outcome,
        rerun.error,
        rerun.state_left,
    )
    assert assert_consistent(landscape) == minted.leaf_sha256
    assert live_binding_leaves(landscape) == {minted.leaf_sha256}


def test_overlap_refused_by_an_old_cloud_controller_makes_no_write(
    landscape_factory: Callable[..., Landscape],
) -> None:
    """It used to write the lock, POST a binding to learn the refusal, and unlock."""
    ls = landscape_factory(api_version="3.204.0")
    before = env_leaf_sha256(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    mark = len(ls.calls())
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem, strategy=Strategy.OVERLAP))
    assert report.outcome is Outcome.INVALID_INPUT
    assert report.error_code == "overlap-unavailable"
    assert "3.204.0" in (report.error or "")
    assert write_calls(ls, since=mark) == []
    assert env_leaf_sha256(ls) == before


def _command(ls: Landscape, tmp_path: Path, *extra: str) -> list[str]:
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


@pytest.mark.parametrize(
    ("strategy", "signal_on", "slow"),
    [
        # the old binding's delete in the finish step, slowed so the signal lands in it
        ("overlap", ("DELETE", "/v3/service_credential_bindings/"),
         {"method": "DELETE", "path": r"^/v3/service_credential_bindings/", "delay_s": 1.0,
          "times": 1}),
        # the seed's restage (staging), which the engine does not interrupt
        ("restage", ("POST", "/v3/builds"), None),
    ],
    ids=["finish", "restage"],
)  # fmt: skip
def test_a_signal_that_cannot_stop_the_run_is_not_called_a_safe_stop(
    landscape_factory: Callable[..., Landscape],
    tmp_path: Path,
    strategy: str,
    signal_on: tuple[str, str],
    slow: dict[str, object] | None,
) -> None:
    ls = landscape_factory(staging_s=1.0)
    if slow is not None:
        ls.add_fault(slow)
    minted = ls.mint(cn="ntifext-client", days=90)
    env = checkout_env(TEST_CF_PASSWORD=ls.password)
    env.update({"TEST_CHAIN": minted.chain_pem, "TEST_KEY": minted.key_pem})
    process = subprocess.Popen(
        _command(ls, tmp_path, "--strategy", strategy),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    method, prefix = signal_on
    deadline = time.monotonic() + 60
    while not any(c["method"] == method and c["path"].startswith(prefix) for c in ls.calls()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    report = json.loads(out)
    assert (process.returncode, report["outcome"]) == (0, "rotated"), err
    assert "stopped at a safe point" not in err
    assert "received SIGTERM while the new certificate was going live" in err
    assert "it finished (rotated); nothing was undone" in err
    assert assert_consistent(ls) == minted.leaf_sha256


def test_a_cloud_controller_older_than_every_request_needs_is_refused_at_its_root(
    landscape_factory: Callable[..., Landscape],
) -> None:
    """CC before 3.92.0 lacks calls every rotation sends (app binding filters 3.88.0,
    deleting an app binding 3.92.0; docs/sandbox-conformance.md): the run says so after
    `GET /` alone, instead of failing at the first binding lookup with a bare 404/400."""
    ls = landscape_factory(api_version="3.91.0")
    minted = ls.mint(cn="ntifext-client", days=90)
    mark = len(ls.calls())
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.INVALID_INPUT, report.error
    assert report.error_code == "cf-api-too-old"
    assert "3.91.0" in (report.error or "")
    assert "3.92.0" in (report.error or "")
    assert [(c["method"], c["path"]) for c in ls.calls()[mark:]] == [("GET", "/")]


def test_max_in_flight_on_a_cloud_controller_without_deployment_options_makes_no_write(
    landscape_factory: Callable[..., Landscape],
) -> None:
    """CC < 3.173.0 has no deployment `options` (cloud_controller_ng
    `app/messages/deployment_create_message.rb`): the run used to bind, test, set the env
    and only then learn "Unknown field(s): 'options'" from the deployment create."""
    ls = landscape_factory(api_version="3.172.0")
    before = env_leaf_sha256(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    mark = len(ls.calls())
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem, max_in_flight=2))
    assert report.outcome is Outcome.INVALID_INPUT
    assert report.error_code == "max-in-flight-unavailable"
    assert "3.172.0" in (report.error or "")
    assert "3.173.0" in (report.error or "")
    assert write_calls(ls, since=mark) == []
    assert env_leaf_sha256(ls) == before
    default = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    assert default.outcome is Outcome.ROTATED, default.error
