"""The README's main command: `cpi-cert-rotate demo` runs the Action against the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cpi_cert_rotate", "demo", "--start-s", "0.1", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_rotates_through_the_action_with_zero_probe_failures() -> None:
    done = _demo("--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True
    assert result["outputs"]["reason"] == "rotated"
    assert result["outputs"]["strategy"] == "overlap"
    assert result["probe"]["failures"] == 0
    assert result["probe"]["calls"] > 0


def test_demo_text_shows_log_summary_and_no_key_material() -> None:
    done = _demo("--bindings-limit", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "strategy swap" in done.stdout
    assert "== job summary ==" in done.stdout
    assert "PRIVATE KEY" not in done.stdout + done.stderr
    assert "add-mask" not in done.stdout
