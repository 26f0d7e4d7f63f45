"""`cpi-cert-rotate rotate` as a user runs it: flags, env-held secrets, JSON, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rotation_kit import assert_consistent, instance_leaves, live_binding_leaves

from cf_sandbox import Landscape
from checkout_kit import checkout_env

pytestmark = pytest.mark.e2e


def _command(ls: Landscape, ca_file: Path, *extra: str, verify: bool = True) -> list[str]:
    roots = ca_file.with_name("trusted-roots.pem")  # the sandbox's root is not on SAP's list
    roots.write_text(ls.trusted_root_pem)
    return [
        sys.executable, "-m", "cpi_cert_rotate", "rotate",
        "--cf-api", ls.api_url,
        "--cf-username", ls.username,
        "--cf-password-env", "TEST_CF_PASSWORD",
        "--cf-origin", ls.origin,
        "--cf-ca-cert", str(ca_file),
        "--cf-org", ls.org, "--cf-space", ls.space,
        "--app", ls.app, "--service-instance", ls.service_instance,
        "--chain-env", "TEST_CHAIN", "--key-env", "TEST_KEY",
        *(["--verify-path", "/http/ping"] if verify else []),
        "--trusted-roots", str(roots),
        *extra,
    ]  # fmt: skip


def _env(ls: Landscape, chain_pem: str, key_pem: str) -> dict[str, str]:
    return checkout_env(TEST_CF_PASSWORD=ls.password, TEST_CHAIN=chain_pem, TEST_KEY=key_pem)


def test_rotate_json_report_and_exit_zero(landscape: Landscape, tmp_path: Path) -> None:
    ca = tmp_path / "cf-ca.pem"
    ca.write_text(landscape.ca_pem)
    minted = landscape.mint(cn="ntifext-client", days=90)
    result = subprocess.run(
        _command(landscape, ca, "--json"),
        env=_env(landscape, minted.chain_pem, minted.key_pem),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "rotated"
    assert report["new"]["fingerprint_sha256"] == minted.leaf_sha256
    assert assert_consistent(landscape) == minted.leaf_sha256
    secret_lines = [line for line in minted.key_pem.splitlines() if "PRIVATE KEY" not in line]
    assert not any(line in result.stdout + result.stderr for line in secret_lines)


def test_sigterm_during_deployment_rolls_back(
    landscape_factory: Callable[..., Landscape], tmp_path: Path
) -> None:
    ls = landscape_factory(start_s=1.5)
    old_leaf = assert_consistent(ls)
    ca = tmp_path / "cf-ca.pem"
    ca.write_text(ls.ca_pem)
    minted = ls.mint(cn="ntifext-client", days=90)
    process = subprocess.Popen(
        _command(ls, ca, "--json"),
        env=_env(ls, minted.chain_pem, minted.key_pem),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(c["method"] == "POST" and c["path"] == "/v3/deployments" for c in ls.calls()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no deployment started"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    report = json.loads(out)
    assert report["outcome"] == "rolled-back", (report["error"], report["steps"])
    assert "interrupted" in report["error"]
    assert assert_consistent(ls) == old_leaf
    assert minted.leaf_sha256 not in live_binding_leaves(ls)
    assert set(instance_leaves(ls)) == {old_leaf}


def test_refused_annotation_prefix_exits_2_before_any_call(
    landscape: Landscape, tmp_path: Path
) -> None:
    ca = tmp_path / "cf-ca.pem"
    ca.write_text(landscape.ca_pem)
    minted = landscape.mint(cn="ntifext-client", days=90)
    calls = len(landscape.calls())
    result = subprocess.run(
        _command(landscape, ca, "--dry-run", "--annotation-prefix", "cpi-cert-rotate"),
        env=_env(landscape, minted.chain_pem, minted.key_pem),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "`--annotation-prefix` 'cpi-cert-rotate' would be refused" in result.stderr
    assert landscape.calls()[calls:] == []


def test_rotation_without_verify_path_says_loudly_it_is_not_verified(
    landscape: Landscape, tmp_path: Path
) -> None:
    ca = tmp_path / "cf-ca.pem"
    ca.write_text(landscape.ca_pem)
    minted = landscape.mint(cn="ntifext-client", days=90)
    result = subprocess.run(
        _command(landscape, ca, verify=False),
        env=_env(landscape, minted.chain_pem, minted.key_pem),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("ROTATED BUT NOT VERIFIED (no test call: nothing proved"), first
    assert "warning: NOTHING PROVED THAT THE NEW CERTIFICATE WORKS" in result.stdout
    assert assert_consistent(landscape) == minted.leaf_sha256


def test_verbose_shows_each_step_from_the_engines_events(
    landscape: Landscape, tmp_path: Path
) -> None:
    ca = tmp_path / "cf-ca.pem"
    ca.write_text(landscape.ca_pem)
    minted = landscape.mint(cn="ntifext-client", days=90)
    command = _command(landscape, ca)
    command.insert(command.index("rotate"), "-v")
    result = subprocess.run(
        command,
        env=_env(landscape, minted.chain_pem, minted.key_pem),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    steps = [
        line.split(": ", 1)[1]
        for line in result.stderr.splitlines()
        if line.startswith("INFO cpi_cert_rotate.cli.progress: ")
    ]
    names = ["material", "observe", "lock", "set", "test", "promote", "deploy", "finish"]
    assert [s for s in steps if s.endswith(": started")] == [f"step {n}: started" for n in names]
    assert [s.split(" in ")[0] for s in steps if " in " in s] == [f"step {n}: ok" for n in names]
