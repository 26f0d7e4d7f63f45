"""End-to-end: the engine takes the new certificate from a real OpenBao PKI mount.

OpenBao's issuing CA is an intermediate the sandbox's trusted root signed (as a CA team
would sign a Vault intermediate), so the sandbox's broker and CPI accept its leaves. The
seeded app's live certificate (CN=ntifext-client, O=Sandbox Clients) is two thirds
through its life, so a rotation with the issuer's default renew-before is due.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from rotation_kit import (
    assert_consistent,
    env_leaf_sha256,
    instance_leaves,
    live_binding_leaves,
    request_for,
    the_app,
    write_calls,
)

from cf_sandbox import Landscape
from cf_sandbox.pki import sha256_hex
from checkout_kit import checkout_env
from cpi_cert_rotate.errors import ExitCode
from cpi_cert_rotate.issuers import VaultPkiIssuer, VaultSettings
from cpi_cert_rotate.models import Outcome, RenewBefore, RotationRequest
from cpi_cert_rotate.rotation import rotate
from openbao_kit import OpenBao, sign_policy

pytestmark = pytest.mark.e2e

ROLE = "cpi-client"


@dataclass
class BaoPki:
    """A PKI mount of its own on the worker's OpenBao, its CA under `ls`'s trusted root."""

    bao: OpenBao
    ls: Landscape
    mount: str
    intermediate: x509.Certificate
    token: str

    def issuer(self, **overrides: Any) -> VaultPkiIssuer:
        options: dict[str, Any] = {
            "address": self.bao.address,
            "role": ROLE,
            "pki_mount": self.mount,
            "token": self.token,
            "ca_pem": self.bao.ca_pem,
        }
        options.update(overrides)
        return VaultPkiIssuer(VaultSettings(**options))

    def request(self, **overrides: Any) -> RotationRequest:
        minted = self.ls.mint(cn="placeholder")  # only to build the base request
        base = request_for(self.ls, minted.chain_pem, minted.key_pem)
        options: dict[str, Any] = {"chain": (), "key": None, "issuer": self.issuer()}
        options.update(overrides)
        return replace(base, **options)

    def serials(self) -> set[str]:
        return {s.replace(":", "").lstrip("0") for s in self.bao.issued_serials(self.mount)}


@pytest.fixture
def pki(openbao: OpenBao, landscape: Landscape) -> BaoPki:
    mount = "pki-" + secrets.token_hex(4)
    intermediate_pem = openbao.enable_pki(
        mount, landscape.sign_intermediate, common_name="OpenBao Issuing CA"
    )
    # C and O as in the live leaf: `sign` takes only the CN from the CSR
    openbao.create_role(mount, ROLE, organization=["Sandbox Clients"], country=["DE"], ttl="2160h")
    token = openbao.token_with_policy(sign_policy(mount, ROLE))
    return BaoPki(
        openbao, landscape, mount, x509.load_pem_x509_certificate(intermediate_pem.encode()), token
    )


def _env_chain(ls: Landscape) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(the_app(ls)["env"]["CLI_CHAIN"].encode())


def _probe_leaves(ls: Landscape) -> set[str]:
    return {c["leaf_sha256"] for c in ls.probe()["timeline"] if c.get("ok")}


def test_rotates_to_a_certificate_openbao_issued(pki: BaoPki) -> None:
    ls = pki.ls
    old = _env_chain(ls)[0]
    secrets_seen: list[str] = []
    ls.probe_start(rps=20)
    report = rotate(pki.request(), on_secret=secrets_seen.append)
    new_sha = sha256_hex(_env_chain(ls)[0])
    # the probe calls through the app until an instance answers with the new leaf (a
    # rotation may take less than a second now; a count of calls proved nothing)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and new_sha not in _probe_leaves(ls):
        time.sleep(0.05)
    ls.probe_stop()
    probe = ls.probe()

    assert report.outcome is Outcome.ROTATED, report.error
    assert {sha256_hex(old), new_sha} <= _probe_leaves(ls), "the probe saw both certificates"
    assert probe["failures"] == 0, probe
    new_leaf_sha = assert_consistent(ls)
    assert live_binding_leaves(ls) == {new_leaf_sha}
    assert set(instance_leaves(ls)) == {new_leaf_sha}
    leaf, *issuers = _env_chain(ls)
    assert issuers == [pki.intermediate]
    leaf.verify_directly_issued_by(pki.intermediate)
    assert pki.serials() == {f"{leaf.serial_number:x}"}  # exactly one certificate issued
    assert leaf.subject == old.subject  # CN copied from the live leaf, O from the role
    assert leaf.public_key() != old.public_key()
    assert report.new is not None
    assert report.new.fingerprint_sha256 == new_leaf_sha
    assert not [w for w in report.warnings if "subject" in w], report.warnings
    assert pki.token not in json.dumps(report.to_json())


def test_a_role_without_the_live_country_rotates_and_warns_of_the_new_subject(
    pki: BaoPki,
) -> None:
    pki.bao.create_role(pki.mount, ROLE, organization=["Sandbox Clients"], ttl="2160h")
    report = rotate(pki.request())

    assert report.outcome is Outcome.ROTATED, report.error
    leaf = _env_chain(pki.ls)[0]
    assert leaf.subject.rfc4514_string() == "CN=ntifext-client,O=Sandbox Clients"  # no C=DE
    (warning,) = [w for w in report.warnings if "subject" in w]
    assert "C=DE" in warning
    assert "the issuer's role sets O, OU, C" in warning


def test_a_run_that_is_not_due_issues_nothing_and_writes_nothing(pki: BaoPki) -> None:
    ls = pki.ls
    first = rotate(pki.request())
    assert first.outcome is Outcome.ROTATED, first.error
    serials = pki.serials()
    leaf = env_leaf_sha256(ls)
    since = len(ls.calls())

    second = rotate(pki.request(renew_before=RenewBefore.parse("30d")))

    assert second.outcome is Outcome.NOT_DUE, second.error
    assert second.exit_code is ExitCode.OK
    assert pki.serials() == serials
    assert write_calls(ls, since) == []
    assert env_leaf_sha256(ls) == leaf


def test_a_dry_run_issues_nothing(pki: BaoPki) -> None:
    ls = pki.ls
    before = env_leaf_sha256(ls)
    since = len(ls.calls())

    report = rotate(pki.request(dry_run=True))

    assert report.outcome is Outcome.DRY_RUN, report.error
    assert report.exit_code is ExitCode.OK
    assert pki.serials() == set()
    assert write_calls(ls, since) == []
    assert env_leaf_sha256(ls) == before
    assert any(pki.mount in line for line in report.plan), report.plan


def test_the_issuer_refusing_fails_before_any_change(pki: BaoPki) -> None:
    ls = pki.ls
    unprivileged = pki.bao.token_with_policy(sign_policy(pki.mount, "another-role"))
    before = env_leaf_sha256(ls)
    since = len(ls.calls())

    report = rotate(pki.request(issuer=pki.issuer(token=unprivileged)))

    assert report.outcome is Outcome.FAILED
    assert report.exit_code is ExitCode.FAILED
    assert int(report.exit_code) == 1
    assert report.error is not None
    assert "403" in report.error
    assert "permission denied" in report.error
    assert report.hint is not None
    assert "`update`" in report.hint
    assert write_calls(ls, since) == []
    assert pki.serials() == set()
    assert env_leaf_sha256(ls) == before
    assert unprivileged not in json.dumps(report.to_json())


def test_the_command_line_rotates_with_the_vault_flags(pki: BaoPki, tmp_path: Path) -> None:
    ls = pki.ls
    (tmp_path / "cf-ca.pem").write_text(ls.ca_pem)
    (tmp_path / "bao-ca.pem").write_text(pki.bao.ca_pem)
    (tmp_path / "roots.pem").write_text(ls.trusted_root_pem)
    command = [
        sys.executable, "-m", "cpi_cert_rotate", "rotate",
        "--cf-api", ls.api_url,
        "--cf-username", ls.username,
        "--cf-password-env", "TEST_CF_PASSWORD",
        "--cf-origin", ls.origin,
        "--cf-ca-cert", str(tmp_path / "cf-ca.pem"),
        "--cf-org", ls.org, "--cf-space", ls.space,
        "--app", ls.app, "--service-instance", ls.service_instance,
        "--vault-addr", pki.bao.address,
        "--vault-pki-mount", pki.mount,
        "--vault-role", ROLE,
        "--vault-token-env", "TEST_VAULT_TOKEN",
        "--vault-ca-cert", str(tmp_path / "bao-ca.pem"),
        "--vault-ttl", "1000h",
        "--trusted-roots", str(tmp_path / "roots.pem"),
        "--verify-path", "/http/ping",
        "--json",
    ]  # fmt: skip
    env = checkout_env(TEST_CF_PASSWORD=ls.password, TEST_VAULT_TOKEN=pki.token)
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "rotated"
    leaf = _env_chain(ls)[0]
    leaf.verify_directly_issued_by(pki.intermediate)
    assert pki.serials() == {f"{leaf.serial_number:x}"}
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert 999 * 3600 < lifetime.total_seconds() < 1001 * 3600  # --vault-ttl, not the role's
    assert assert_consistent(ls) == report["new"]["fingerprint_sha256"]
    assert pki.token not in result.stdout + result.stderr
