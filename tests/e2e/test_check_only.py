"""A dry run with no new certificate: a check of the live one, without any private key.

A scheduled "does it expire soon?" job should not need the key secret. The engine reads
the live certificate, applies renew-before and stops; nothing is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from rotation_kit import request_for, the_app, write_calls

from cf_sandbox import Landscape
from checkout_kit import checkout_env
from cpi_cert_rotate import material
from cpi_cert_rotate.errors import ExitCode, InputError
from cpi_cert_rotate.models import Outcome, RenewBefore, RotationRequest
from cpi_cert_rotate.rotation import rotate

pytestmark = pytest.mark.e2e


def _check(ls: Landscape, **overrides: object) -> RotationRequest:
    minted = ls.mint(cn="placeholder")  # only to build the base request, then dropped
    base = request_for(ls, minted.chain_pem, minted.key_pem)
    options: dict[str, object] = {"chain": (), "key": None, "dry_run": True, **overrides}
    return replace(base, **options)  # type: ignore[arg-type]


def _live_fingerprint(ls: Landscape) -> str:
    leaf = x509.load_pem_x509_certificates(the_app(ls)["env"]["CLI_CHAIN"].encode())[0]
    return material.fingerprint(leaf)


def test_check_reports_the_live_certificate_and_writes_nothing(landscape: Landscape) -> None:
    since = len(landscape.calls())
    report = rotate(_check(landscape, renew_before=RenewBefore.parse("30d")))
    assert report.outcome is Outcome.DRY_RUN, report.error
    assert report.exit_code is ExitCode.OK
    assert report.new is None
    assert report.strategy is None
    assert report.before is not None
    assert report.before.fingerprint_sha256 == _live_fingerprint(landscape)
    assert report.plan == ("1. check only: no new certificate was given, so nothing would change",)
    decide = next(s for s in report.steps if s.name == "decide")
    assert "renew-before says a rotation is due" in decide.detail
    assert write_calls(landscape, since) == []


def test_check_with_a_renew_before_not_reached_is_not_due(landscape: Landscape) -> None:
    report = rotate(_check(landscape, renew_before=RenewBefore.parse("10d")))
    assert report.outcome is Outcome.NOT_DUE, report.error
    assert report.before is not None


def test_without_dry_run_a_request_needs_a_certificate(landscape: Landscape) -> None:
    with pytest.raises(InputError) as error:
        _check(landscape, dry_run=False)
    assert error.value.code == "missing-material"


def test_cli_dry_run_without_chain_and_key_checks(landscape: Landscape, tmp_path: Path) -> None:
    ca = tmp_path / "cf-ca.pem"
    ca.write_text(landscape.ca_pem)
    command = [
        sys.executable, "-m", "cpi_cert_rotate", "rotate",
        "--cf-api", landscape.api_url,
        "--cf-username", landscape.username, "--cf-password-env", "TEST_CF_PASSWORD",
        "--cf-origin", landscape.origin, "--cf-ca-cert", str(ca),
        "--cf-org", landscape.org, "--cf-space", landscape.space,
        "--app", landscape.app, "--service-instance", landscape.service_instance,
        "--dry-run", "--json",
    ]  # fmt: skip
    env = checkout_env(TEST_CF_PASSWORD=landscape.password)
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "dry-run"
    assert report["before"]["fingerprint_sha256"] == _live_fingerprint(landscape)
    without_dry_run = [c for c in command if c != "--dry-run"]
    done = subprocess.run(
        without_dry_run, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2
    (problem,) = json.loads(done.stdout)["problems"]  # --json: the problem as JSON too
    assert problem["code"] == "missing-material"
    assert "ask for a dry run (`--dry-run`) and give none of them" in problem["fix"]
