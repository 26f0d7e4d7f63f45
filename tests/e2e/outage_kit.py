"""What the UAA and Cloud Controller outage tests share: the failing test call that starts
a rollback, and a real CLI run stopped with SIGTERM while its rollback waits."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cf_sandbox import Landscape
from checkout_kit import checkout_env
from cpi_cert_rotate.errors import ExitCode

TEST_CALL_FAILS = {"server": "cpi", "path": "^/http/ping", "status": 500}
"""CPI refuses the test call, so the run rolls back."""


def cli_args(ls: Landscape, tmp_path: Path) -> list[str]:
    """`python` arguments of a `rotate --json` of the landscape's app, as a user runs it."""
    ca, roots = tmp_path / "cf-ca.pem", tmp_path / "trusted-roots.pem"
    ca.write_text(ls.ca_pem)
    roots.write_text(ls.trusted_root_pem)
    return [
        "-m", "cpi_cert_rotate", "rotate", "--json",
        "--cf-api", ls.api_url, "--cf-username", ls.username,
        "--cf-password-env", "TEST_CF_PASSWORD", "--cf-origin", ls.origin,
        "--cf-ca-cert", str(ca), "--cf-org", ls.org, "--cf-space", ls.space,
        "--app", ls.app, "--service-instance", ls.service_instance,
        "--chain-env", "TEST_CHAIN", "--key-env", "TEST_KEY",
        "--verify-path", "/http/ping", "--trusted-roots", str(roots),
    ]  # fmt: skip


def sigterm_once(
    ls: Landscape, tmp_path: Path, minted: Any, what: str, seen: Callable[[], bool]
) -> tuple[int, dict[str, Any], str, float]:
    """Run the CLI, send SIGTERM 0.3 s after `seen()` (within 40 s); return its exit code,
    JSON report, stderr and the seconds it went on after the signal."""
    env = checkout_env(
        TEST_CF_PASSWORD=ls.password, TEST_CHAIN=minted.chain_pem, TEST_KEY=minted.key_pem
    )
    process = subprocess.Popen(
        [sys.executable, *cli_args(ls, tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 40
        while not seen():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"never saw {what}"
            time.sleep(0.05)
        time.sleep(0.3)
        assert process.poll() is None, f"the run ended before SIGTERM ({what})"
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, json.loads(out), err, time.monotonic() - sent


def assert_stopped_at_once(
    result: tuple[int, dict[str, Any], str, float], when: str, new_leaf_sha256: str
) -> None:
    """SIGTERM ended the wait within 2.5 s, and the report names the new binding left."""
    code, report, err, took = result
    assert took < 2.5, f"{when}: the run went on for {took:.1f}s after SIGTERM"
    assert code == ExitCode.ROLLBACK_INCOMPLETE, err
    assert report["outcome"] == "rollback-incomplete"
    fingerprint = new_leaf_sha256[:16]
    assert any(f"registers the new certificate ({fingerprint}" in s for s in report["state_left"])
    assert "received SIGTERM" in err
