"""Every problem code of `material.validate`, each from a real certificate built to have it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from cpi_cert_rotate import material
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.material import Severity, Validation
from cpi_cert_rotate.models import PrivateKey
from pki_factory import (
    CA,
    HAVE_OPENSSL,
    SERVER_AUTH,
    Pki,
    client_pki,
    key_pem,
    name,
    new_key,
    openssl,
    pem,
    pooled_key,
    self_signed,
    utcnow,
)

CERTIFICATES_DOC = Path(__file__).resolve().parents[2] / "docs" / "certificates.md"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return client_pki()


_TEST_ROOTS: list[x509.Certificate] = []


@pytest.fixture(scope="module", autouse=True)
def _trust_the_test_root(pki: Pki) -> None:
    _TEST_ROOTS[:] = [pki.root.cert]


def validate(
    chain: Sequence[x509.Certificate], key: PrivateKey | None = None, **options: Any
) -> Validation:
    """`material.validate` with the test PKI's root trusted: the chain is complete and
    anchored, so each test sees only the problem it builds (trust has its own tests)."""
    options.setdefault("trusted_roots", _TEST_ROOTS)
    return material.validate(chain, key, **options)


def codes(validation: Validation) -> set[str]:
    return set(validation.codes)


def test_clean_chain_without_root_has_no_problem(pki: Pki) -> None:
    result = validate(pki.env_chain, pki.leaf.key)
    assert result.problems == ()
    assert result.ok
    assert result.key_matches is True
    assert result.chain == pki.env_chain
    assert result.leaf == pki.leaf.cert
    assert result.root is None


def test_root_included_is_info_and_root_is_reported(pki: Pki) -> None:
    result = validate(pki.chain, pki.leaf.key)
    assert result.codes == ("root-included",)
    assert result.problems[0].severity is Severity.INFO
    assert result.root == pki.root.cert
    assert result.chain == pki.chain
    assert result.ok


def test_without_key_key_matches_is_none(pki: Pki) -> None:
    assert validate(pki.env_chain).key_matches is None


def test_key_mismatch(pki: Pki) -> None:
    result = validate(pki.env_chain, pooled_key("rsa-2048", 9))
    assert result.codes == ("key-mismatch",)
    assert result.key_matches is False
    assert not result.ok
    assert "RSA 2048" in result.problems[0].message


def test_leaf_expired(pki: Pki) -> None:
    leaf = pki.intermediate.issue(days=-2)
    result = validate((leaf.cert, pki.intermediate.cert), leaf.key)
    assert result.codes == ("leaf-expired",)
    assert leaf.cert.not_valid_after_utc.strftime("%Y-%m-%d") in result.problems[0].message


def test_leaf_not_yet_valid(pki: Pki) -> None:
    leaf = pki.intermediate.issue(not_before=utcnow() + timedelta(days=2), days=30)
    assert validate((leaf.cert, pki.intermediate.cert)).codes == ("leaf-not-yet-valid",)


def test_time_is_taken_from_now_argument(pki: Pki) -> None:
    later = pki.leaf.cert.not_valid_after_utc + timedelta(seconds=1)
    assert validate(pki.env_chain, now=later).codes[0] == "leaf-expired"
    earlier = pki.intermediate.cert.not_valid_before_utc - timedelta(seconds=1)
    naive = earlier.replace(tzinfo=None)
    assert validate(pki.env_chain, now=naive).codes == (
        "leaf-not-yet-valid",
        "intermediate-expired",  # minted in the same second: not valid yet either
    )


def test_leaf_expiring_soon_is_a_warning_with_configurable_window(pki: Pki) -> None:
    leaf = pki.intermediate.issue(days=10)
    chain = (leaf.cert, pki.intermediate.cert)
    result = validate(chain)
    assert result.codes == ("leaf-expiring-soon",)
    assert result.warnings == result.problems
    assert result.ok
    assert "in 9 day(s)" in result.problems[0].message
    assert validate(chain, warn_days=5).problems == ()
    assert validate(pki.env_chain, warn_days=400).codes == ("leaf-expiring-soon",)


def test_intermediate_expired(pki: Pki) -> None:
    old = pki.root.intermediate("Old Intermediate", days=-1)
    leaf = old.issue(days=90)
    assert validate((leaf.cert, old.cert, pki.root.cert)).codes == (
        "intermediate-expired",
        "root-included",
    )


def test_chain_broken_when_intermediate_missing(pki: Pki) -> None:
    result = validate((pki.leaf.cert, pki.root.cert))
    assert result.codes == ("chain-broken",)
    assert "Test Intermediate CA" in result.problems[0].message
    assert result.chain == (pki.leaf.cert,)


def test_bad_signature_when_intermediate_has_same_name_other_key(pki: Pki) -> None:
    impostor = pki.root.intermediate("Test Intermediate CA")  # same DN, new key
    result = validate((pki.leaf.cert, impostor.cert, pki.root.cert))
    assert result.codes == ("bad-signature", "root-included")
    assert result.chain == (pki.leaf.cert, impostor.cert, pki.root.cert)


def test_bad_signature_of_a_self_issued_leaf() -> None:
    real = self_signed("tampered")
    forged = self_signed("tampered", key_kind="ec-p256")  # same name, other key
    builder = (
        x509.CertificateBuilder()
        .subject_name(real.cert.subject)
        .issuer_name(real.cert.subject)
        .public_key(real.key.public_key())
        .serial_number(1)
        .not_valid_before(real.cert.not_valid_before_utc)
        .not_valid_after(real.cert.not_valid_after_utc)
    )
    from cryptography.hazmat.primitives import hashes

    cert = builder.sign(forged.key, hashes.SHA256())
    assert "bad-signature" in codes(validate((cert,)))
    assert "self-signed-leaf" not in codes(validate((cert,)))


def test_unrelated_leaf_and_unrelated_ca(pki: Pki) -> None:
    other = client_pki("someone-else", root_name="Other Root")
    result = validate((*pki.chain, other.leaf.cert, other.root.cert))
    assert result.codes == ("unrelated-certificate", "unrelated-certificate", "root-included")
    assert result.chain == pki.chain
    assert "someone-else" in result.problems[0].message


def test_duplicate_certificate_is_a_warning(pki: Pki) -> None:
    given = (pki.leaf.cert, pki.intermediate.cert, pki.intermediate.cert, pki.leaf.cert)
    result = validate(given)
    assert result.codes == ("duplicate-certificate", "duplicate-certificate")
    assert {p.severity for p in result.problems} == {Severity.WARNING}
    assert result.chain == pki.env_chain
    assert "appears 2 times" in result.problems[0].message


def test_chain_reordered_is_a_warning(pki: Pki) -> None:
    result = validate((pki.root.cert, pki.intermediate.cert, pki.leaf.cert))
    assert result.codes == ("chain-reordered", "root-included")
    assert result.chain == pki.chain
    assert "order 3, 2, 1" in result.problems[0].message


def test_leaf_is_ca(pki: Pki) -> None:
    leaf = pki.intermediate.issue(is_ca=True)
    assert validate((leaf.cert, pki.intermediate.cert)).codes == ("leaf-is-ca",)


def test_self_signed_leaf() -> None:
    leaf = self_signed()
    result = validate((leaf.cert,), leaf.key)
    assert result.codes == ("self-signed-leaf",)
    assert result.root is None


def test_lone_root_ca_is_both_ca_and_self_signed(pki: Pki) -> None:
    assert validate((pki.root.cert,)).codes == ("leaf-is-ca", "self-signed-leaf")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"eku": (SERVER_AUTH,)}, ("no-client-auth",)),
        ({"digital_signature": False}, ("no-client-auth",)),
        ({"eku": None}, ()),
        # OpenSSL's SSL-client purpose check refuses anyExtendedKeyUsage without
        # clientAuth too (crypto/x509/v3_purp.c, xku_reject), so a warning is right.
        ({"eku": (ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,)}, ("path-validation-failed",)),
        ({"eku": (SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)}, ()),
    ],
)
def test_client_auth_usage(options: dict[str, object], expected: tuple[str, ...], pki: Pki) -> None:
    leaf = pki.intermediate.issue(**options)  # type: ignore[arg-type]
    result = validate((leaf.cert, pki.intermediate.cert))
    assert result.codes == expected


def test_weak_rsa_leaf_key(pki: Pki) -> None:
    leaf = pki.intermediate.issue(key_kind="rsa-1024")
    result = validate((leaf.cert, pki.intermediate.cert), leaf.key)
    assert result.codes == ("weak-key",)
    assert "1024-bit RSA" in result.problems[0].message


def test_weak_rsa_intermediate_key(pki: Pki) -> None:
    weak = pki.root.intermediate("Weak CA", key=new_key("rsa-1024"))
    leaf = weak.issue()
    assert validate((leaf.cert, weak.cert)).codes == ("weak-key",)


@pytest.mark.skipif(not HAVE_OPENSSL, reason="openssl command not installed")
def test_sha1_signed_leaf_is_weak_not_bad_signature(pki: Pki) -> None:
    """cryptography cannot sign with SHA-1 any more; openssl still can (real old CAs did)."""
    key = pooled_key("rsa-2048", 3)
    csr = material.build_csr(key, subject=name("sha1-client"))
    signed = openssl(
        "x509", "-req", "-sha1", "-days", "90", "-CA", "@ca", "-CAkey", "@cakey",
        stdin=csr.public_bytes(serialization.Encoding.PEM),
        fds={"ca": pem(pki.intermediate.cert), "cakey": key_pem(pki.intermediate.key)},
    )  # fmt: skip
    leaf = x509.load_pem_x509_certificate(signed)
    result = validate((leaf, pki.intermediate.cert), key)
    assert result.codes == ("weak-key",)
    assert "signed with SHA1" in result.problems[0].message


@pytest.mark.parametrize("kind", ["ec-p521", "ed25519"])
def test_unsupported_leaf_key_type(kind: str, pki: Pki) -> None:
    leaf = pki.intermediate.issue(key_kind=kind)  # type: ignore[arg-type]
    assert validate((leaf.cert, pki.intermediate.cert)).codes == ("unsupported-key-type",)


def test_unsupported_private_key_type_given_directly(pki: Pki) -> None:
    result = validate(pki.env_chain, new_key("ed25519"))
    assert result.codes == ("unsupported-key-type", "key-mismatch")


def test_ec_leaf_keys_are_fine(pki: Pki) -> None:
    for kind in ("ec-p256", "ec-p384"):
        leaf = pki.intermediate.issue(key_kind=kind)
        assert validate((leaf.cert, pki.intermediate.cert), leaf.key).problems == ()


def test_trusted_roots_accept_chain_ending_below_them(pki: Pki) -> None:
    assert validate(pki.env_chain, trusted_roots=[pki.root.cert]).problems == ()
    assert validate(pki.chain, trusted_roots=[pki.root.cert]).codes == ("root-included",)


def test_untrusted_root(pki: Pki) -> None:
    other_root = CA.root("Other Root").cert
    result = material.validate(pki.chain, trusted_roots=[other_root])
    assert result.codes == ("untrusted-root", "root-included")
    assert "not one of the 1 trusted root(s) given" in result.problems[0].message


def test_chain_without_root_under_another_root_is_incomplete(pki: Pki) -> None:
    """Whether an intermediate is missing or the root is not trusted cannot be told apart."""
    other_root = CA.root("Other Root").cert
    result = material.validate(pki.env_chain, trusted_roots=[other_root])
    assert result.codes == ("chain-incomplete",)
    assert pki.intermediate.cert.issuer.rfc4514_string() in result.problems[0].message


def test_missing_intermediate_is_chain_incomplete_naming_its_issuer(pki: Pki) -> None:
    result = material.validate((pki.leaf.cert,), trusted_roots=[pki.root.cert])
    assert result.codes == ("chain-incomplete",)
    assert "CN=Test Intermediate CA" in result.problems[0].message
    assert not result.ok


def test_missing_intermediate_is_an_error_without_trusted_roots_too(pki: Pki) -> None:
    """The case that went live before: a leaf alone, no roots given (SAP's list applies)."""
    result = material.validate((pki.leaf.cert,))
    assert result.codes == ("chain-incomplete",)
    assert "SAP Note 2801396" in result.problems[0].message


def test_a_same_named_root_with_another_key_is_untrusted(pki: Pki) -> None:
    impostor = CA.root("Test Root CA").cert  # same DN, other key
    result = material.validate(pki.env_chain, trusted_roots=[impostor])
    assert result.codes == ("untrusted-root",)
    assert "not the key that signed it" in result.problems[0].message


def test_path_validation_failed_on_path_length_violation(pki: Pki) -> None:
    """RFC 5280 section 4.2.1.9: the intermediate has pathLen 0 but issued another CA."""
    sub = pki.intermediate.intermediate("Sub CA")
    leaf = sub.issue()
    chain = (leaf.cert, sub.cert, pki.intermediate.cert, pki.root.cert)
    result = validate(chain, leaf.key)
    assert result.codes == ("path-validation-failed", "root-included")
    assert "path length" in result.problems[0].message
    assert result.ok  # a warning: CPI's own validator may be more lenient
    assert validate(chain[:-1], trusted_roots=[pki.root.cert]).codes == ("path-validation-failed",)


def test_client_certificate_without_san_passes_path_validation(pki: Pki) -> None:
    with_san = pki.intermediate.issue(san=["client.example"])
    assert validate((with_san.cert, *pki.chain[1:])).codes == ("root-included",)


def test_many_problems_are_reported_together(pki: Pki) -> None:
    leaf = pki.intermediate.issue(days=-1, eku=(SERVER_AUTH,), key_kind="rsa-1024")
    result = validate((pki.root.cert, leaf.cert), pooled_key("ec-p256", 4))
    assert codes(result) >= {
        "chain-broken",
        "leaf-expired",
        "no-client-auth",
        "weak-key",
        "key-mismatch",
    }


def test_empty_chain_raises() -> None:
    with pytest.raises(InputError) as error:
        validate(())
    assert error.value.code == "empty-input"


def test_raise_for_problems_names_every_error(pki: Pki) -> None:
    leaf = pki.intermediate.issue(days=-1)
    result = validate((leaf.cert, pki.intermediate.cert), pooled_key("ec-p384"))
    with pytest.raises(InputError) as error:
        material.raise_for_problems(result)
    assert error.value.code == "leaf-expired"
    assert "has 2 errors:\n" in str(error.value)
    assert "- leaf-expired:" in str(error.value)
    assert "- key-mismatch:" in str(error.value)
    assert "Fix:" in str(error.value)
    assert error.value.exit_code == 2


def test_raise_for_problems_with_one_error_is_one_line(pki: Pki) -> None:
    result = validate(pki.env_chain, pooled_key("ec-p384"))
    with pytest.raises(InputError) as error:
        material.raise_for_problems(result)
    assert "\n" not in str(error.value)
    assert str(error.value).startswith("The certificate material has an error: key-mismatch: ")


def test_raise_for_problems_ignores_warnings(pki: Pki) -> None:
    material.raise_for_problems(validate(pki.chain, warn_days=9999))


def test_every_message_ends_with_the_fix_of_its_code(pki: Pki) -> None:
    result = validate((pki.root.cert, pki.leaf.cert, pki.leaf.cert), warn_days=9999)
    assert result.problems
    for found in result.problems:
        assert found.message.endswith(f"Fix: {material.PROBLEMS[found.code].fix}")
        assert found.severity is material.PROBLEMS[found.code].severity


def test_docs_list_every_problem_code_with_its_fix() -> None:
    section = CERTIFICATES_DOC.read_text(encoding="utf-8")
    rows = {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\| `([a-z0-9-]+)` \|.*$", section, re.MULTILINE)
    }
    for code, spec in material.PROBLEMS.items():
        assert code in rows, f"docs/certificates.md lacks a row for {code}"
        assert spec.severity in rows[code]
        assert spec.fix.replace("|", "\\|") in rows[code]
