"""The Action end to end without the image: `entrypoint.py` as the runner would start it.

Every scenario runs against a real sandbox landscape (HTTPS, UAA, CC v3, CPI mTLS) with
the runner's folders and environment, and every one ends with the log audit: no line of
any key, no password, anywhere but in `::add-mask::` commands, and all of those first.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from material_kit import key_lines
from runner_kit import (
    ActionRun,
    RunnerDirs,
    audit,
    base_env,
    effective_commands,
    entrypoint_command,
    finish,
    input_env,
    landscape_inputs,
    run_entrypoint,
)

pytestmark = pytest.mark.e2e

PASSPHRASE = "rotation-key-passphrase-1"


def _key(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), None)


def _encrypted(pem: str) -> str:
    return (
        _key(pem)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
        .decode()
    )


def _inputs(ls: Any, minted: Any, **changes: str) -> dict[str, str]:
    """The landscape's inputs with the key encrypted, as the seed's openssl makes it."""
    key = {"private_key": _encrypted(minted.key_pem), "private_key_passphrase": PASSPHRASE}
    return landscape_inputs(ls, minted, **{**key, **changes})


def _live_key_pem(ls: Any) -> str:
    app = next(a for a in ls.state()["apps"] if a["name"] == ls.app)
    return str(app["env"]["CLI_KEY"])


def _secrets(ls: Any, *minted: Any, inputs: dict[str, str]) -> list[str]:
    """Everything that must never be printed: new and old key lines, every secret input."""
    found = [*key_lines(_key(_live_key_pem(ls)))]
    for m in minted:
        found += key_lines(_key(m.key_pem))
    for name in ("cf-password", "private-key-passphrase", "pkcs12-password"):
        found.append(inputs.get(name, ""))
    for name in ("private-key", "pkcs12"):
        found += [ln for ln in inputs.get(name, "").splitlines() if len(ln) >= 8]
        found = [ln for ln in found if not ln.startswith("-----")]
    return found


Run = Callable[..., ActionRun]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    def go(inputs: dict[str, str], secrets: list[str]) -> ActionRun:
        dirs = RunnerDirs(tmp_path / f"run-{len(list(tmp_path.iterdir()))}")
        result = run_entrypoint(inputs, dirs)
        audit(result, secrets, dirs)
        return result

    return go


def _fp(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def test_rotation_sets_outputs_summary_groups_and_exit_zero(landscape: Any, run: Run) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    inputs = _inputs(landscape, minted)
    previous_key = _live_key_pem(landscape)
    result = run(inputs, _secrets(landscape, minted, inputs=inputs))
    masked = set(result.commands("add-mask"))
    previous_body = [ln for ln in previous_key.splitlines() if not ln.startswith("-----")]
    assert set(previous_body) <= masked, "the app's previous key (read from CF) was not masked"

    assert result.code == 0, result.stdout + result.stderr
    out = result.outputs
    assert out["rotated"] == "true"
    assert out["reason"] == "rotated"
    assert out["strategy"] == "overlap"
    assert out["fingerprint-sha256"] == minted.leaf_sha256
    assert out["previous-fingerprint-sha256"] not in ("", minted.leaf_sha256)
    assert out["binding-guid"]
    assert out["deployment-guid"]
    assert int(out["days-remaining"]) in (89, 90)
    assert out["leaf-pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert _fp(x509.load_pem_x509_certificate(out["leaf-pem"].encode())) == minted.leaf_sha256
    assert "### ✅ Certificate rotated" in result.summary
    assert "| | before | after |" in result.summary
    assert "#### Steps" in result.summary
    groups = result.commands("group")
    assert [g.removeprefix("step ") for g in groups] == [
        "material",
        "observe",
        "lock",
        "set",
        "test",
        "promote",
        "deploy",
        "finish",
    ]
    assert len(result.commands("endgroup")) == len(groups)
    assert result.commands("error") == []
    # the masks registered the new key's lines (and came first: checked by the audit)
    masked = set(result.commands("add-mask"))
    assert set(key_lines(_key(minted.key_pem))) & masked


def test_same_certificate_again_is_already_current(landscape: Any, run: Run) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    inputs = _inputs(landscape, minted)
    assert run(inputs, _secrets(landscape, minted, inputs=inputs)).code == 0
    again = run(inputs, _secrets(landscape, minted, inputs=inputs))
    assert again.code == 0
    assert again.outputs["reason"] == "already-current"
    assert again.outputs["rotated"] == "false"
    assert again.outputs["fingerprint-sha256"] == minted.leaf_sha256
    assert "Already current" in again.summary


def test_dry_run_changes_nothing_and_shows_the_plan(landscape: Any, run: Run) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    live = _live_key_pem(landscape)
    inputs = _inputs(landscape, minted, dry_run="true")
    result = run(inputs, _secrets(landscape, minted, inputs=inputs))
    assert result.code == 0
    assert result.outputs["reason"] == "dry-run"
    assert result.outputs["fingerprint-sha256"] != minted.leaf_sha256  # the live one
    assert "#### Plan (dry run: nothing was changed)" in result.summary
    assert _live_key_pem(landscape) == live


def test_not_due_check_fails_when_the_live_certificate_expires_soon(
    landscape: Any, run: Run
) -> None:
    short = landscape.mint(cn="ntifext-client", days=10)
    first = _inputs(landscape, short)
    assert run(first, _secrets(landscape, short, inputs=first)).code == 0
    candidate = landscape.mint(cn="ntifext-client", days=90)
    inputs = _inputs(landscape, candidate, renew_before="5d", fail_if_expires_within="14")
    result = run(inputs, _secrets(landscape, short, candidate, inputs=inputs))
    assert result.outputs["reason"] == "not-due"
    assert result.code == 1  # the live certificate (10 days) is within 14 days
    assert any("within fail-if-expires-within (14 days)" in e for e in result.commands("error"))


def test_check_only_needs_no_key_and_fails_when_the_live_certificate_expires_soon(
    landscape: Any, run: Run
) -> None:
    """The seeded live certificate has 28 days and some hours left: 21 passes, 40 fails."""
    inputs = landscape_inputs(landscape, None, dry_run="true", fail_if_expires_within="21")
    before = landscape.calls()
    calm = run(inputs, _secrets(landscape, inputs=inputs))
    assert calm.code == 0, calm.stdout + calm.stderr
    assert calm.outputs["reason"] == "dry-run"
    assert calm.outputs["rotated"] == "false"
    assert calm.outputs["days-remaining"] == "28"
    assert "check only: no new certificate given" in calm.stdout
    assert not [c for c in landscape.calls()[len(before) :] if c["method"] != "GET"
                and c["path"].startswith("/v3/")]  # fmt: skip
    inputs["fail-if-expires-within"] = "40"
    alarm = run(inputs, _secrets(landscape, inputs=inputs))
    assert alarm.code == 1
    assert alarm.outputs["reason"] == "dry-run"
    assert any("within fail-if-expires-within (40 days)" in e for e in alarm.commands("error"))
    assert "Certificate expires soon" in alarm.summary
    inputs["dry-run"] = "false"
    refused = run(inputs, _secrets(landscape, inputs=inputs))
    assert refused.code == 2
    assert "ask for a dry run (`dry-run`) and give none of them" in refused.summary + refused.stdout


def test_pkcs12_input_rotates(landscape: Any, run: Run) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    chain = x509.load_pem_x509_certificates(minted.chain_pem.encode())
    p12 = pkcs12.serialize_key_and_certificates(
        b"client",
        _key(minted.key_pem),
        chain[0],
        chain[1:],
        serialization.BestAvailableEncryption(b"p12-password-1"),
    )
    inputs = _inputs(
        landscape,
        minted,
        cert_chain="",
        private_key="",
        private_key_passphrase="",
        pkcs12=base64.b64encode(p12).decode(),
        pkcs12_password="p12-password-1",
    )
    result = run(inputs, _secrets(landscape, minted, inputs=inputs))
    assert result.code == 0, result.stdout
    assert result.outputs["fingerprint-sha256"] == minted.leaf_sha256


def test_key_of_another_certificate_is_bad_input(landscape: Any, run: Run) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    other = landscape.mint(cn="ntifext-client", days=90)
    inputs = _inputs(landscape, minted, private_key=_encrypted(other.key_pem))
    calls_before = len(landscape.calls())
    result = run(inputs, _secrets(landscape, minted, other, inputs=inputs))
    assert result.code == 2
    assert result.outputs["reason"] == "invalid-input"
    (error,) = result.commands("error")
    assert "[key-mismatch]" in error
    assert "\n" not in error  # one line
    assert landscape.calls()[calls_before:] == []  # nothing was even asked of CF


def test_wrong_passphrase_is_bad_input(landscape: Any, run: Run) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    inputs = _inputs(landscape, minted, private_key_passphrase="not-the-passphrase")
    result = run(inputs, _secrets(landscape, minted, inputs=inputs))
    assert result.code == 2
    assert "[wrong-passphrase]" in result.commands("error")[0]


def test_key_pasted_into_the_chain_input_is_masked_and_refused(landscape: Any, run: Run) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    inputs = _inputs(landscape, minted, cert_chain=minted.chain_pem + minted.key_pem)
    result = run(inputs, _secrets(landscape, minted, inputs=inputs))
    assert result.code == 2
    assert "[private-key-in-chain]" in result.commands("error")[0]


def test_certificate_cpi_refuses_is_rolled_back(landscape: Any, run: Run) -> None:
    live_before = _live_key_pem(landscape)
    untrusted = landscape.mint(cn="ntifext-client", days=90, trusted=False)
    inputs = _inputs(landscape, untrusted)
    result = run(inputs, _secrets(landscape, untrusted, inputs=inputs))
    assert result.code in (1, 2), result.stdout
    assert result.outputs["rotated"] == "false"
    assert result.commands("error")
    assert "#### What went wrong" in result.summary
    assert _live_key_pem(landscape) == live_before


def test_sigterm_mid_rotation_rolls_back(landscape: Any, tmp_path: Path) -> None:
    """The runner cancels with SIGINT/SIGTERM: the engine stops and undoes its changes."""
    minted = landscape.mint(cn="ntifext-client", days=90)
    live_before = _live_key_pem(landscape)
    landscape.add_fault({"delay_s": 3, "method": "POST", "path": "^/v3/deployments$", "times": 1})
    inputs = _inputs(landscape, minted)
    dirs = RunnerDirs(tmp_path / "cancel")
    proc = subprocess.Popen(
        entrypoint_command([sys.executable, "-B", "-E", "-s", "-u"]),
        cwd=dirs.base / "workspace",
        env={**base_env(), **dirs.env(), **input_env(inputs)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("::group::step promote") or time.monotonic() > deadline:
            break
    os.kill(proc.pid, signal.SIGTERM)
    rest, stderr = proc.communicate(timeout=120)
    result = finish(proc.returncode, "".join(lines) + rest, stderr, dirs)
    audit(result, _secrets(landscape, minted, inputs=inputs), dirs)
    assert result.code in (1, 3), result.stdout
    assert result.outputs["rotated"] == "false"
    assert result.outputs["reason"] in ("rolled-back", "rollback-incomplete")
    assert "Received SIGTERM" in result.stdout
    if result.code == 1:
        assert _live_key_pem(landscape) == live_before


def test_empty_inputs_fail_with_every_problem_and_all_outputs(tmp_path: Path) -> None:
    dirs = RunnerDirs(tmp_path / "empty")
    result = run_entrypoint({}, dirs)
    audit(result, [], dirs)
    assert result.code == 2
    assert set(result.outputs) >= {"rotated", "reason", "expires-at", "leaf-pem"}
    assert result.outputs["reason"] == "invalid-input"
    (error,) = result.commands("error")
    assert "input `cf-api` is empty" in error
    assert "no Cloud Foundry credentials" in error
    assert "### ❌ Invalid input: nothing changed" in result.summary
    assert "secrets are not passed to workflows triggered from forks" in result.summary


def test_secrets_are_masked_before_the_first_other_line(tmp_path: Path) -> None:
    from material_kit import mint_client_material

    material = mint_client_material()
    inputs = {
        "cf-api": "https://127.0.0.1:9",  # never reached: the app name is missing
        "cf-username": "u",
        "cf-password": "pw-123456789",
        "cf-org": "o",
        "cf-space": "s",
        "service-instance": "si",
        "cert-chain": material.chain_pem,
        "private-key": material.key_pem,
    }
    dirs = RunnerDirs(tmp_path / "masks")
    result = run_entrypoint(inputs, dirs)
    audit(result, [*key_lines(material.key), "pw-123456789"], dirs)
    assert result.code == 2
    lines = result.stdout.splitlines()
    assert lines[0] == "::add-mask::pw-123456789"
    masked = set(result.commands("add-mask"))
    assert set(key_lines(material.key)) <= masked


ENV_PATH = r"^/v3/apps/[^/]+/environment_variables$"
FAULTS = {
    "bind-job-fails": [{"job": "service_bindings.create", "fail": True, "times": 1}],
    "env-patch-500": [{"method": "PATCH", "path": ENV_PATH, "status": 500, "times": 1}],
    "deployment-canceled": [{"deployment": "cancel", "times": 1}],
    "deployment-dropped": [
        {"method": "POST", "path": "^/v3/deployments$", "drop_connection": True, "times": 1}
    ],
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_failures_end_rotated_or_rolled_back_and_say_so(
    landscape: Any, run: Run, name: str
) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    live_before = _live_key_pem(landscape)
    for rule in FAULTS[name]:
        landscape.add_fault(rule)
    inputs = _inputs(landscape, minted)
    result = run(inputs, _secrets(landscape, minted, inputs=inputs))
    assert result.outputs["reason"] in ("rotated", "rolled-back", "failed"), result.stdout
    if result.outputs["reason"] == "rotated":
        assert result.code == 0
        return
    assert result.code == 1
    assert _live_key_pem(landscape) == live_before
    (error,) = result.commands("error")
    assert error.startswith(result.outputs["reason"])
    assert "#### What went wrong" in result.summary
    assert "❌" in result.summary


def test_split_state_is_reported_with_manual_steps(landscape: Any, run: Run) -> None:
    """The rollout is canceled and restoring the env fails: exit 3 and what to do."""
    minted = landscape.mint(cn="ntifext-client", days=90)
    landscape.add_fault({"deployment": "cancel", "times": 1})
    landscape.add_fault({"method": "PATCH", "path": ENV_PATH, "status": 403, "after": 1})
    inputs = _inputs(landscape, minted)
    result = run(inputs, _secrets(landscape, minted, inputs=inputs))
    assert result.code == 3, result.stdout
    assert result.outputs["reason"] == "rollback-incomplete"
    assert result.outputs["expires-at"] == ""  # nothing claimed about a split state
    assert "🚨" in result.summary
    assert "**State left behind**" in result.summary
    assert "**What to do by hand**" in result.summary


def test_swap_when_the_landscape_allows_one_binding(
    landscape_factory: Callable[..., Any], run: Run
) -> None:
    ls = landscape_factory(bindings_limit=1)
    minted = ls.mint(cn="ntifext-client", days=90)
    inputs = _inputs(ls, minted)
    result = run(inputs, _secrets(ls, minted, inputs=inputs))
    assert result.code == 0, result.stdout
    assert result.outputs["strategy"] == "swap"
    assert result.commands("warning")  # the auth gap of swap is said


def test_cf_error_text_cannot_inject_workflow_commands(landscape: Any, run: Run) -> None:
    injected = "x\n::add-mask::Certificate\n::error::forged\n::set-output name=rotated::true"
    landscape.add_fault(
        {
            "method": "POST",
            "path": "^/v3/service_credential_bindings$",
            "status": 422,
            "body": {
                "errors": [{"code": 10008, "title": "CF-UnprocessableEntity", "detail": injected}]
            },
            "times": 1,
        }
    )
    minted = landscape.mint(cn="ntifext-client", days=90)
    inputs = _inputs(landscape, minted, strategy="overlap")
    result = run(inputs, _secrets(landscape, minted, inputs=inputs))
    assert result.code in (1, 2)
    commands = effective_commands(result.stdout)
    assert not [c for c in commands if c == ("error", "forged")]
    assert not [c for c in commands if c[0] == "add-mask" and c[1] == "Certificate"]
    assert not [c for c in commands if c[0] == "set-output"]
    assert "::error::forged" in result.stdout  # it was printed, as plain text


def test_a_password_in_cf_api_is_masked_refused_and_never_shown(landscape: Any, run: Run) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    password = "Url-Pass-4711-abc"
    api = landscape.api_url.replace("https://", f"https://rotator:{password}@")
    inputs = _inputs(landscape, minted, cf_api=api, key_env_var="VCAP_SERVICES")
    before = len(landscape.calls())
    result = run(inputs, [*_secrets(landscape, minted, inputs=inputs), password])
    assert result.code == 2
    assert landscape.calls()[before:] == []  # no call at all, not even a login
    assert password in result.commands("add-mask")  # the audit: before any line using it
    (error,) = result.commands("error")
    assert "input `cf-api` must not hold a user name or password" in error
    assert "input `key-env-var` 'VCAP_SERVICES' is reserved" in error
    assert f"API {landscape.api_url}." in result.summary  # shown without the credentials
    assert "rotator" not in result.summary
