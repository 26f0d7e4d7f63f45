"""`cpi-cert-rotate sandbox`: state file, foreground run, clean exit on SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sandbox_client import STATE_FILE_KEYS

from cf_sandbox.memtls import client_context, session
from checkout_kit import checkout_env
from cpi_cert_rotate.cli import main, sandbox_cmd
from cpi_cert_rotate.errors import InputError


def test_command_writes_state_file_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cpi_cert_rotate",
            "sandbox",
            "--state-file",
            str(state_file),
            "--instances",
            "2",
            "--pinning",
            "off",
            "--api-version",
            "3.204.0",
        ],
        env=checkout_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not state_file.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.1)
        data = json.loads(state_file.read_text())
        assert set(data) >= STATE_FILE_KEYS
        assert "PRIVATE KEY" not in state_file.read_text()
        assert state_file.stat().st_mode & 0o777 == 0o600
        with session(client_context(data["ca_pem"])) as http:
            root = http.get(f"{data['api_url']}/", timeout=10).json()
            assert root["links"]["cloud_controller_v3"]["meta"]["version"] == "3.204.0"
            token = http.post(
                f"{root['links']['login']['href']}/oauth/token",
                auth=("cf", ""),
                data={
                    "grant_type": "password",
                    "username": data["username"],
                    "password": data["password"],
                },
                timeout=10,
            ).json()
            apps = http.get(
                f"{data['api_url']}/v3/apps?names={data['app']}",
                timeout=10,
                headers={"Authorization": f"bearer {token['access_token']}"},
            )
            assert apps.json()["pagination"]["total_results"] == 1
            state = http.get(f"{data['api_url']}/_sandbox/state", timeout=10).json()
            assert len(state["apps"][0]["instances"]) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "sandbox stopped" in out
    assert not state_file.exists()


def test_missing_sandbox_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cf_sandbox", None)
    parser = argparse.ArgumentParser()
    sandbox_cmd.add_arguments(parser)
    with pytest.raises(InputError, match="not part of this install"):
        sandbox_cmd.run(parser.parse_args([]))


def test_bad_numbers_are_input_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--instances", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
