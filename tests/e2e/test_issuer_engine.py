"""The engine with an issuer instead of given material, against the sandbox.

The issuer here is a real CA in this process whose intermediate the sandbox's trusted
root signed (as a company's Vault intermediate would be): it signs the CSR the engine
asks for. What is checked is the engine's side: ask only when due and not a dry run,
validate what comes back, stop before any change when the issuer fails.
(`test_vault_issuer.py` runs the same flow against a real OpenBao server.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rotation_kit import (
    assert_consistent,
    env_leaf_sha256,
    instance_leaves,
    request_for,
    sha256_hex,
    the_app,
    write_calls,
)

from cf_sandbox import Landscape
from cpi_cert_rotate import material
from cpi_cert_rotate.errors import ExitCode
from cpi_cert_rotate.issuers import IssuedMaterial, IssuerError
from cpi_cert_rotate.models import Outcome, RenewBefore, RotationRequest, Strategy
from cpi_cert_rotate.rotation import rotate

pytestmark = pytest.mark.e2e


class LocalCa:
    """An issuing CA under the sandbox's trusted root that signs CSRs like a PKI role."""

    def __init__(self, ls: Landscape, *, eku: x509.ObjectIdentifier) -> None:
        self.key = material.generate_key("ec-p256")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local Issuing CA")])
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(name)
            .sign(self.key, hashes.SHA256())
        )
        pem = ls.sign_intermediate(csr.public_bytes(serialization.Encoding.PEM).decode())
        self.cert = x509.load_pem_x509_certificate(pem.encode())
        self.eku = eku
        self.requests: list[x509.CertificateSigningRequest] = []
        self.refuse: str | None = None

    def describe(self) -> str:
        return "the local test CA"

    def issue(
        self,
        *,
        copy_subject_from: x509.Certificate | None,
        on_secret: Callable[[str], None],
    ) -> IssuedMaterial:
        if self.refuse:
            raise IssuerError(self.refuse, fix="ask the PKI team")
        key = material.generate_key("ec-p256")
        csr = material.build_csr(key, copy_from=copy_subject_from)
        self.requests.append(csr)
        now = dt.datetime.now(dt.UTC)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([self.eku]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return IssuedMaterial(chain=(leaf, self.cert), key=key)


def _request(ls: Landscape, issuer: LocalCa, **overrides: object) -> RotationRequest:
    minted = ls.mint(cn="placeholder")  # only to build the base request, then replaced
    base = request_for(ls, minted.chain_pem, minted.key_pem)
    return replace(base, chain=(), key=None, issuer=issuer, **overrides)  # type: ignore[arg-type]


def _live_leaf(ls: Landscape) -> x509.Certificate:
    return x509.load_pem_x509_certificates(the_app(ls)["env"]["CLI_CHAIN"].encode())[0]


def test_due_by_default_renew_before_issues_once_and_rotates(landscape: Landscape) -> None:
    issuer = LocalCa(landscape, eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    old = _live_leaf(landscape)
    secrets: list[str] = []
    landscape.probe_start(rps=20)
    report = rotate(_request(landscape, issuer), on_secret=secrets.append)
    landscape.probe_stop()

    assert report.outcome is Outcome.ROTATED, report.error
    assert len(issuer.requests) == 1
    assert issuer.requests[0].subject == old.subject  # the CSR copied the live subject
    new_leaf = assert_consistent(landscape)
    assert report.new is not None
    assert new_leaf == report.new.fingerprint_sha256 != sha256_hex(old)
    assert set(instance_leaves(landscape)) == {new_leaf}
    assert landscape.probe()["failures"] == 0
    assert [s.name for s in report.steps][:4] == ["observe", "issue", "material", "lock"]
    pems = [s for s in secrets if s.startswith("-----BEGIN PRIVATE KEY")]
    assert any(material.key_matches(material.load_key(p), _live_leaf(landscape)) for p in pems), (
        "the issued key was not handed to on_secret (the Action masks what it receives)"
    )


def test_not_due_issues_nothing_and_writes_nothing(landscape: Landscape) -> None:
    issuer = LocalCa(landscape, eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    before = env_leaf_sha256(landscape)
    since = len(landscape.calls())
    report = rotate(_request(landscape, issuer, renew_before=RenewBefore.parse("10d")))
    assert report.outcome is Outcome.NOT_DUE, report.error
    assert issuer.requests == []
    assert write_calls(landscape, since) == []
    assert env_leaf_sha256(landscape) == before


def test_dry_run_issues_nothing_and_plans_the_issue(landscape: Landscape) -> None:
    issuer = LocalCa(landscape, eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    since = len(landscape.calls())
    report = rotate(_request(landscape, issuer, dry_run=True, force=True))
    assert report.outcome is Outcome.DRY_RUN, report.error
    assert report.exit_code is ExitCode.OK
    assert issuer.requests == []
    assert report.new is None
    assert "the local test CA" in report.plan[0]
    assert write_calls(landscape, since) == []


def test_overlap_on_an_old_cloud_controller_is_refused_before_the_issuer_is_asked(
    landscape_factory: Callable[..., Landscape],
) -> None:
    """What the strategy can refuse without the certificate, it refuses before issuing."""
    ls = landscape_factory(api_version="3.204.0")
    issuer = LocalCa(ls, eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    since = len(ls.calls())
    report = rotate(_request(ls, issuer, strategy=Strategy.OVERLAP))
    assert report.outcome is Outcome.INVALID_INPUT
    assert report.error_code == "overlap-unavailable"
    assert issuer.requests == []
    assert write_calls(ls, since) == []


def test_issuer_refusal_fails_before_any_change(landscape: Landscape) -> None:
    issuer = LocalCa(landscape, eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    issuer.refuse = "Vault answered 403 to POST /v1/pki/sign/cpi-client: permission denied"
    before = env_leaf_sha256(landscape)
    since = len(landscape.calls())
    report = rotate(_request(landscape, issuer))
    assert report.outcome is Outcome.FAILED
    assert report.exit_code is ExitCode.FAILED
    assert report.error is not None
    assert "permission denied" in report.error
    assert report.hint is not None
    assert "ask the PKI team" in report.hint
    assert write_calls(landscape, since) == []
    assert env_leaf_sha256(landscape) == before


def test_issued_certificate_without_client_auth_is_refused_before_any_change(
    landscape: Landscape,
) -> None:
    issuer = LocalCa(landscape, eku=ExtendedKeyUsageOID.SERVER_AUTH)
    since = len(landscape.calls())
    report = rotate(_request(landscape, issuer))
    assert report.outcome is Outcome.INVALID_INPUT
    assert report.exit_code is ExitCode.BAD_INPUT
    assert report.error_code == "no-client-auth"
    assert len(issuer.requests) == 1
    assert write_calls(landscape, since) == []
