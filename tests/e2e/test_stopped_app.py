"""A stopped app is rotated without being started: engine, CLI, dry run, restage, leftovers.

Cloud Controller starts a stopped app when a deployment is created for it
(cloud_controller_ng app/actions/deployment_create.rb, `AppStart.start` when
`app.stopped?`), and so does the sandbox. A platform team may have stopped the app on
purpose, so a rotation registers, tests and sets the new certificate and makes no
deployment, restage or restart (rotation/promote.py `promote_stopped`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rotation_kit import (
    env_leaf_sha256,
    instance_leaves,
    live_binding_leaves,
    request_for,
    the_app,
    write_calls,
)

from cf_sandbox import Landscape
from checkout_kit import checkout_env
from cpi_cert_rotate.cf import CfClient
from cpi_cert_rotate.models import CfAuth, Outcome, Strategy
from cpi_cert_rotate.rotation import rotate

pytestmark = pytest.mark.e2e

PRESENTS_WHEN_STARTED = "the app will present the new certificate when it is started"
"""What the report's warning says (rotation/promote.py `STOPPED_NOTE`)."""

"""This checkout's code for the command (the venv may hold another checkout's)."""

STARTS = ("/v3/deployments", "/actions/start", "/actions/restart", "/v3/builds")
"""Paths of the writes that start an app or restage it."""


def _stop(ls: Landscape) -> int:
    """Stop the app as a platform team would; returns where the call log stood after it."""
    auth = CfAuth(username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem)
    with CfClient(ls.api_url, auth) as cf:
        assert cf.stop_app(ls.app_guid).state == "STOPPED"
    return len(ls.calls())


def _starting_calls(ls: Landscape, since: int) -> list[dict[str, Any]]:
    return [
        c
        for c in write_calls(ls, since)
        if c["method"] == "POST" and any(c["path"].endswith(p) for p in STARTS)
    ]


def _assert_rotated_and_still_stopped(ls: Landscape, since: int, old: set[str], new: str) -> None:
    assert the_app(ls)["state"] == "STOPPED", "the rotation started a stopped app"
    assert _starting_calls(ls, since) == []
    assert env_leaf_sha256(ls) == new  # chain and key set, and they pair
    assert live_binding_leaves(ls) == {new}  # new binding present, the old one gone
    assert not old & live_binding_leaves(ls)


@pytest.mark.parametrize("strategy", [Strategy.AUTO, Strategy.SWAP, Strategy.RESTAGE])
def test_a_stopped_app_is_rotated_and_left_stopped(
    landscape: Landscape, strategy: Strategy
) -> None:
    """The engine started the app through the rolling deployment (restage: through its
    stop and start); now it registers, tests and sets the new certificate, removes the old
    binding, and says the app is stopped."""
    ls = landscape
    old = live_binding_leaves(ls)
    since = _stop(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem, strategy=strategy))
    assert report.outcome is Outcome.ROTATED, report.error
    _assert_rotated_and_still_stopped(ls, since, old, minted.leaf_sha256)
    assert report.verified  # the tool's own mTLS call needs no instance
    assert report.app_stopped
    assert report.left_stopped
    assert report.deployment_guid is None
    assert any(PRESENTS_WHEN_STARTED in w for w in report.warnings)
    steps = {s.name: s for s in report.steps}
    assert steps["deploy"].status == "skipped"
    assert "would start the app" in steps["deploy"].detail
    assert report.to_json()["app_stopped"] is True
    assert any("left stopped" in line for line in report.plan)


def test_a_dry_run_of_a_stopped_app_says_it_would_not_start_it(landscape: Landscape) -> None:
    ls = landscape
    since = _stop(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem, dry_run=True))
    assert report.outcome is Outcome.DRY_RUN
    assert not any("rolling deployment" in line for line in report.plan)
    assert any("no deployment, restage or restart" in line for line in report.plan)
    assert report.app_stopped
    assert write_calls(ls, since) == []


def test_an_earlier_runs_leftovers_on_a_stopped_app_are_finished_without_starting_it(
    landscape: Landscape,
) -> None:
    """The certificate asked for is live but no rotation record names it: a run completes
    it, and deployed first (`finish._complete`), which started a stopped app."""
    ls = landscape
    minted = ls.mint(cn="ntifext-client", days=90)
    assert rotate(request_for(ls, minted.chain_pem, minted.key_pem)).rotated
    auth = CfAuth(username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem)
    with CfClient(ls.api_url, auth) as cf:
        annotations = cf.get_app(ls.app_guid).annotations
        cf.patch_app_annotations(ls.app_guid, dict.fromkeys(annotations))  # no record left
    since = _stop(ls)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.ALREADY_CURRENT, report.error
    assert the_app(ls)["state"] == "STOPPED"
    assert _starting_calls(ls, since) == []


def test_the_cli_rotates_a_stopped_app_and_says_it_is_stopped(
    landscape: Landscape, tmp_path: Path
) -> None:
    ls = landscape
    old = live_binding_leaves(ls)
    since = _stop(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    (tmp_path / "ca.pem").write_text(ls.ca_pem)
    (tmp_path / "roots.pem").write_text(ls.trusted_root_pem)
    env = checkout_env(
        {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        TEST_CF_PASSWORD=ls.password,
        TEST_CHAIN=minted.chain_pem,
        TEST_KEY=minted.key_pem,
    )
    command = [
        sys.executable, "-m", "cpi_cert_rotate", "rotate",
        "--cf-api", ls.api_url, "--cf-username", ls.username,
        "--cf-password-env", "TEST_CF_PASSWORD", "--cf-origin", ls.origin,
        "--cf-ca-cert", "ca.pem", "--trusted-roots", "roots.pem",
        "--cf-org", ls.org, "--cf-space", ls.space,
        "--app", ls.app, "--service-instance", ls.service_instance,
        "--chain-env", "TEST_CHAIN", "--key-env", "TEST_KEY", "--verify-path", "/http/ping",
    ]  # fmt: skip
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    first = run.stdout.splitlines()[0]
    assert first.startswith("ROTATED (APP STOPPED, left stopped"), first
    assert "will present the new certificate when it is started" in first
    assert "deploy    skipped" in run.stdout
    _assert_rotated_and_still_stopped(ls, since, old, minted.leaf_sha256)

    again = ls.mint(cn="ntifext-client", days=90)
    env.update(TEST_CHAIN=again.chain_pem, TEST_KEY=again.key_pem)
    run = subprocess.run([*command, "--json"], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert (report["outcome"], report["verified"], report["app_stopped"]) == (
        "rotated",
        True,
        True,
    )
    assert any(PRESENTS_WHEN_STARTED in w for w in report["warnings"])
    assert the_app(ls)["state"] == "STOPPED"


def test_an_app_started_while_its_rotation_runs_gets_the_new_env_by_a_deployment(
    landscape: Landscape,
) -> None:
    """Found stopped under the lock, started by a person while the env PATCH is on its
    way: its instances started with the old env. The promote step reads the app again
    after the PATCH and rolls the new env out, so no instance is left presenting the
    certificate whose binding the finish step removes."""
    ls = landscape
    _stop(ls)
    env_path = f"/v3/apps/{ls.app_guid}/environment_variables"
    ls.add_fault({"method": "PATCH", "path": env_path, "delay_s": 2.0, "times": 1})
    minted = ls.mint(cn="ntifext-client", days=90)

    auth = CfAuth(username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem)
    person = CfClient(ls.api_url, auth)
    person.get_app(ls.app_guid)  # logged in before the race starts

    def start_during_the_env_patch() -> None:
        """Once the test call was answered: the env PATCH comes next and is delayed, and
        the sandbox logs a call only once it is answered."""
        deadline = time.monotonic() + 60
        while not ls.cpi_calls():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        person.start_app(ls.app_guid)

    starter = threading.Thread(target=start_during_the_env_patch)
    starter.start()
    try:
        report = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    finally:
        starter.join()
        person.close()
    assert report.outcome is Outcome.ROTATED, report.error
    assert the_app(ls)["state"] == "STARTED"
    assert report.deployment_guid is not None
    assert not report.app_stopped
    assert any("started while it ran" in w for w in report.warnings)
    assert set(instance_leaves(ls)) == {minted.leaf_sha256}
    assert live_binding_leaves(ls) == {minted.leaf_sha256}
