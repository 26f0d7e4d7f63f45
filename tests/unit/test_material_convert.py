"""Facts, the CF/manifest/env forms of a chain, key generation, CSRs and masking forms."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import textwrap
from datetime import timedelta

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cpi_cert_rotate import material
from cpi_cert_rotate.errors import InputError
from pki_factory import (
    HAVE_OPENSSL,
    Pki,
    client_pki,
    key_pem,
    name,
    new_key,
    openssl,
    pem,
    pooled_key,
)

needs_openssl = pytest.mark.skipif(not HAVE_OPENSSL, reason="openssl command not installed")


@pytest.fixture(scope="module")
def pki() -> Pki:
    return client_pki()


# --- facts ------------------------------------------------------------------------------


def test_facts_of_the_leaf(pki: Pki) -> None:
    cert = pki.leaf.cert
    facts = material.facts(cert)
    assert facts.subject == "O=Example Corp,CN=cpi-client"
    assert facts.issuer == "O=Example Corp,CN=Test Intermediate CA"
    assert int(facts.serial, 16) == cert.serial_number
    assert len(facts.serial) % 2 == 0
    assert facts.not_before == cert.not_valid_before_utc
    assert facts.not_after == cert.not_valid_after_utc
    assert facts.not_after.utcoffset() == timedelta(0)
    assert (facts.key_type, facts.key_size) == ("RSA", 2048)
    assert facts.fingerprint_sha256 == material.fingerprint(cert)
    assert len(facts.fingerprint_sha256) == 64
    assert facts.fingerprint_sha256 == facts.fingerprint_sha256.lower()
    as_json = facts.to_json(cert.not_valid_after_utc - timedelta(days=10, hours=1))
    assert as_json["days_remaining"] == 10
    assert as_json["not_after"].endswith("Z")


@needs_openssl
def test_facts_agree_with_openssl(pki: Pki) -> None:
    out = openssl(
        "x509", "-noout", "-serial", "-fingerprint", "-sha256", "-enddate", stdin=pki.leaf.pem
    ).decode()
    fields = dict(line.split("=", 1) for line in out.splitlines())
    facts = material.facts(pki.leaf.cert)
    assert fields["serial"].lower() == facts.serial
    assert fields["sha256 Fingerprint"].replace(":", "").lower() == facts.fingerprint_sha256
    assert fields["notAfter"] == facts.not_after.strftime("%b %e %H:%M:%S %Y GMT")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("ec-p256", ("EC P-256", 256)), ("ec-p384", ("EC P-384", 384)), ("rsa-3072", ("RSA", 3072))],
)
def test_facts_key_type(kind: str, expected: tuple[str, int], pki: Pki) -> None:
    leaf = pki.intermediate.issue(key_kind=kind)  # type: ignore[arg-type]
    facts = material.facts(leaf.cert)
    assert (facts.key_type, facts.key_size) == expected


# --- conversions --------------------------------------------------------------------------


def test_leaf_pem_round_trips(pki: Pki) -> None:
    text = material.leaf_pem(pki.leaf.cert)
    assert text.startswith("-----BEGIN CERTIFICATE-----\n")
    assert text.endswith("-----END CERTIFICATE-----\n")
    assert x509.load_pem_x509_certificate(text.encode()) == pki.leaf.cert


def test_binding_parameters_hold_only_the_leaf(pki: Pki) -> None:
    params = material.binding_parameters(pki.leaf.cert)
    assert params == {"key-type": "certificate_external", "X.509": pki.leaf.pem.decode()}
    assert params["X.509"].count("BEGIN CERTIFICATE") == 1


def test_bind_json_is_one_compact_line(pki: Pki) -> None:
    text = material.bind_json(pki.leaf.cert)
    assert "\n" not in text
    assert text.startswith(
        '{"key-type":"certificate_external","X.509":"-----BEGIN CERTIFICATE-----\\n'
    )
    assert json.loads(text) == material.binding_parameters(pki.leaf.cert)


def test_bind_json_equals_the_seed_scripts_output(pki: Pki) -> None:
    """The seed builds bind.json with awk; ours must mean the same JSON."""
    one_line = subprocess.run(
        ["awk", r'NF {sub(/\r/, ""); printf "%s\\n",$0;}'],
        input=pki.leaf.pem,
        capture_output=True,
        check=True,
    ).stdout.decode()
    seed_json = '{"key-type": "certificate_external", "X.509":"' + one_line + '"}'
    assert json.loads(seed_json) == json.loads(material.bind_json(pki.leaf.cert))


def test_manifest_snippet_is_valid_yaml_with_the_binding(pki: Pki) -> None:
    text = material.manifest_snippet(pki.leaf.cert, app="my: app", service_instance="it-rt #1")
    data = yaml.safe_load(text)
    app = data["applications"][0]
    assert app["name"] == "my: app"
    assert app["services"] == [
        {"name": "it-rt #1", "parameters": material.binding_parameters(pki.leaf.cert)}
    ]
    assert "X.509: |" in text  # a literal block: readable, exact


def test_manifest_snippet_placeholders(pki: Pki) -> None:
    data = yaml.safe_load(material.manifest_snippet(pki.leaf.cert))
    assert data["applications"][0]["name"] == "<app>"
    assert data["applications"][0]["services"][0]["name"] == "<service-instance>"


def test_manifest_oneline_is_the_seeds_form_and_reads_back(pki: Pki) -> None:
    text = material.manifest_oneline(pki.leaf.cert)
    assert "\n" not in text
    assert "\\n" not in text
    assert text.startswith("-----BEGIN CERTIFICATE-----MII")
    assert text.endswith("-----END CERTIFICATE-----")
    assert material.load_chain(text) == (pki.leaf.cert,)
    assert yaml.safe_load(f"X.509: {text}")["X.509"] == text


def test_env_chain_drops_root_unless_kept(pki: Pki) -> None:
    scrambled = material.validate((pki.root.cert, pki.leaf.cert, pki.intermediate.cert))
    assert material.env_chain_pem(scrambled) == pem(*pki.env_chain).decode()
    assert material.env_chain_pem(scrambled, keep_root=True) == pem(*pki.chain).decode()
    without_root = material.validate(pki.env_chain)
    assert material.env_chain_pem(without_root, keep_root=True) == pem(*pki.env_chain).decode()


@needs_openssl
def test_env_chain_verifies_with_openssl_against_the_root(pki: Pki) -> None:
    env_chain = material.env_chain_pem(material.validate(pki.chain)).encode()
    # openssl verify takes every certificate as a file argument: all go through pipes.
    out = openssl(
        "verify", "-CAfile", "@root", "-untrusted", "@chain", "-purpose", "sslclient", "@leaf",
        fds={"root": pem(pki.root.cert), "chain": env_chain, "leaf": pki.leaf.pem},
    )  # fmt: skip
    assert out.strip().endswith(b"OK")


def test_key_pkcs8_pem_is_unencrypted_pkcs8() -> None:
    key = pooled_key("ec-p256")
    text = material.key_pkcs8_pem(key)
    assert text.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert text.encode() == key_pem(key)


# --- keys and CSRs -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", material.KEY_KINDS)
def test_generate_key(kind: str) -> None:
    key = material.generate_key(kind)
    family, size = kind.split("-")
    if family == "rsa":
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.key_size == int(size)
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == {"p256": "secp256r1", "p384": "secp384r1"}[size]


def test_generate_key_default_is_rsa_2048() -> None:
    key = material.generate_key()
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048


@pytest.mark.parametrize("kind", ["rsa-1024", "ec-p521", "ed25519", "RSA-2048", ""])
def test_generate_key_refuses_other_kinds(kind: str) -> None:
    with pytest.raises(InputError) as error:
        material.generate_key(kind)
    assert error.value.code == "unsupported-key-type"


def test_csr_with_explicit_subject() -> None:
    key = material.generate_key("ec-p256")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "myorg"),
            x509.NameAttribute(NameOID.COMMON_NAME, "ntif"),
        ]
    )
    csr = material.build_csr(key, subject=subject)
    assert csr.is_signature_valid
    assert csr.subject == subject
    assert csr.public_key() == key.public_key()
    usage = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_csr_copies_subject_and_san_of_the_live_leaf(pki: Pki) -> None:
    live = pki.intermediate.issue("renew-me", san=["client.example"])
    csr = material.build_csr(material.generate_key(), copy_from=live.cert)
    assert csr.subject == live.cert.subject
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["client.example"]


@needs_openssl
def test_csr_verifies_with_openssl(pki: Pki) -> None:
    csr = material.build_csr(material.generate_key("rsa-2048"), copy_from=pki.leaf.cert)
    out = openssl(
        "req", "-noout", "-verify", "-subject", stdin=csr.public_bytes(serialization.Encoding.PEM)
    )
    assert b"cpi-client" in out


def test_csr_needs_a_subject() -> None:
    with pytest.raises(InputError) as error:
        material.build_csr(material.generate_key("ec-p256"))
    assert error.value.code == "csr-no-subject"


def test_csr_refuses_unsupported_key() -> None:
    with pytest.raises(InputError) as error:
        material.build_csr(new_key("ed25519"), subject=name("x"))
    assert error.value.code == "unsupported-key-type"


# --- masking forms ------------------------------------------------------------------------


def _body_lines(pem_text: str) -> list[str]:
    return [line for line in pem_text.splitlines() if not line.startswith("-----")]


def test_secret_forms_cover_every_spelling_of_the_key() -> None:
    key = pooled_key("rsa-2048")
    pkcs8 = material.key_pkcs8_pem(key)
    traditional = key_pem(key, fmt="traditional").decode()
    encrypted = key_pem(key, fmt="traditional", password=b"pw")
    given = base64.b64encode(encrypted)
    forms = material.secret_forms(key, given)
    assert given.decode() in forms  # the input as given
    assert encrypted.decode() in forms  # its base64-decoded text
    assert pkcs8 in forms
    assert traditional in forms
    assert pkcs8.replace("\n", "\\n") in forms  # the `\n` one-line form
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 76)) in forms
    assert len(forms) == len(set(forms))


def test_secret_lines_are_the_body_lines_without_armour() -> None:
    key = pooled_key("ec-p256")
    escaped = "".join(f"{line}\\n" for line in key_pem(key).decode().splitlines())
    lines = material.secret_lines(material.secret_forms(key, escaped))
    pkcs8 = material.key_pkcs8_pem(key)
    for line in _body_lines(pkcs8) + _body_lines(key_pem(key, fmt="traditional").decode()):
        assert line in lines or len(line) < 8
    assert escaped in lines  # the raw one-line input is one line
    assert not any(re.fullmatch(r"-----(BEGIN|END) [A-Z ]+-----", line) for line in lines)
    assert all(len(line) >= 8 for line in lines)


def test_secret_forms_of_binary_input_are_base64() -> None:
    key = pooled_key("ec-p256")
    der = key_pem(key, encoding=serialization.Encoding.DER)
    assert base64.b64encode(der).decode() in material.secret_forms(key, der)
