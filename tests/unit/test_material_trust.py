"""Trusted roots: SAP's shipped list by default, the user's bundle when given (material.trust)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import warnings
from importlib import resources
from pathlib import Path

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from cpi_cert_rotate import material
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.material.trust import (
    SAP_NOTE,
    name_attributes,
    sap_approved_roots,
    trusted_roots_of,
)
from pki_factory import CA, client_pki, pooled_key

SAP_CLOUD_ROOT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Walldorf"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SAP SE"),
        x509.NameAttribute(NameOID.COMMON_NAME, "SAP Cloud Root CA"),
    ]
)


def _listed(common_name: str) -> material.trust.ListedRoot:
    return next(r for r in sap_approved_roots().listed if r.subject.endswith(f"CN={common_name}"))


def _issued_by_name(
    issuer: x509.Name, key_id: bytes | None, *, aia: str | None = None
) -> tuple[x509.Certificate, x509.Certificate]:
    """An intermediate that names `issuer` (and key id) as its issuer, and a leaf under it.

    Nobody here holds the listed root's key, so the intermediate's signature cannot verify
    against it; SAP's list has no certificates, so only the name and key id are compared.
    """
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Issuing CA 7")]))
        .issuer_name(issuer)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=900))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
    )
    if key_id is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(key_id, None, None), critical=False
        )
    if aia is not None:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(aia),
                    )
                ]
            ),
            critical=False,
        )
    intermediate = builder.sign(ca_key, hashes.SHA256())
    leaf_key = pooled_key("ec-p256", 3)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cpi-client")]))
        .issuer_name(intermediate.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return leaf, intermediate


def test_shipped_list_names_its_source_and_release() -> None:
    data = json.loads(
        resources.files("cpi_cert_rotate.material").joinpath("sap_approved_roots.json").read_text()
    )
    assert data["source"].startswith("https://github.com/sap-software/btp-trust-store/")
    assert "v3.0.0" in data["source"]
    assert SAP_NOTE in data["description"]
    roots = sap_approved_roots().listed
    assert len(roots) == len(data["roots"]) == 57
    assert len({r.sha256 for r in roots}) == 57
    assert all(len(r.sha256) == 64 and int(r.sha256, 16) >= 0 for r in roots)
    assert {"SAP Cloud Root CA", "SAP Global Root CA"} <= {
        r.subject.rsplit("CN=", 1)[-1] for r in roots
    }


def test_shipped_list_agrees_with_certifi_where_both_hold_a_root() -> None:
    """An independent source: every listed root that certifi also ships has the same
    subject and key identifier as the published fingerprint's certificate."""
    with warnings.catch_warnings():  # a few old roots have non-positive serial numbers
        warnings.simplefilter("ignore")
        bundle = x509.load_pem_x509_certificates(Path(certifi.where()).read_bytes())
    by_fingerprint = {
        hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest(): c for c in bundle
    }
    checked = 0
    for root in sap_approved_roots().listed:
        cert = by_fingerprint.get(root.sha256)
        if cert is None:
            continue
        checked += 1
        assert name_attributes(cert.subject) == root.attributes, root.subject
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        assert ski.hex() == root.subject_key_id, root.subject
        assert sap_approved_roots().anchor_of([cert]) is not None  # matched by fingerprint
    assert checked >= 20


def test_chain_without_root_under_a_listed_root_is_anchored_by_name_and_key_id() -> None:
    listed = _listed("SAP Cloud Root CA")
    assert listed.subject_key_id is not None
    leaf, intermediate = _issued_by_name(SAP_CLOUD_ROOT, bytes.fromhex(listed.subject_key_id))
    assert material.validate((leaf, intermediate)).problems == ()


def test_issuer_dn_matches_in_any_attribute_order_and_case() -> None:
    listed = _listed("SAP Cloud Root CA")
    reordered = x509.Name(list(reversed(list(SAP_CLOUD_ROOT))))
    shouted = x509.Name([x509.NameAttribute(a.oid, str(a.value).upper()) for a in SAP_CLOUD_ROOT])
    for issuer in (reordered, shouted):
        leaf, intermediate = _issued_by_name(issuer, bytes.fromhex(listed.subject_key_id or ""))
        assert material.validate((leaf, intermediate)).problems == ()


def test_listed_name_with_another_key_id_is_a_warning_not_an_anchor() -> None:
    leaf, intermediate = _issued_by_name(SAP_CLOUD_ROOT, b"\x01" * 20)
    result = material.validate((leaf, intermediate))
    assert result.codes == ("root-not-on-sap-list",)
    assert result.ok
    assert "re-keyed or cross-signed" in result.problems[0].message


def test_private_root_included_is_a_warning_naming_the_note() -> None:
    pki = client_pki()
    result = material.validate(pki.chain)
    assert result.codes == ("root-not-on-sap-list", "root-included")
    assert result.ok
    assert SAP_NOTE in result.problems[0].message
    assert "CN=Test Root CA" in result.problems[0].message


def test_private_root_given_as_trusted_root_is_clean() -> None:
    pki = client_pki()
    assert material.validate(pki.env_chain, trusted_roots=[pki.root.cert]).problems == ()


def test_missing_issuer_names_the_aia_url_to_fetch_it_from() -> None:
    unknown = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Issuing CA G2")])
    leaf, intermediate = _issued_by_name(unknown, None, aia="http://pki.example/issuing-g2.crt")
    result = material.validate((leaf, intermediate))
    assert result.codes == ("chain-incomplete",)
    message = result.problems[0].message
    assert "CN=Some Issuing CA G2" in message
    assert "http://pki.example/issuing-g2.crt" in message
    with pytest.raises(InputError, match="chain-incomplete") as raised:
        material.raise_for_problems(result)
    assert raised.value.code == "chain-incomplete"


def test_given_roots_replace_sap_list() -> None:
    listed = _listed("SAP Cloud Root CA")
    leaf, intermediate = _issued_by_name(SAP_CLOUD_ROOT, bytes.fromhex(listed.subject_key_id or ""))
    own = CA.root("Own Root").cert
    assert material.validate((leaf, intermediate), trusted_roots=[own]).codes == (
        "chain-incomplete",
    )
    assert trusted_roots_of(None) is sap_approved_roots()
    assert trusted_roots_of(()) is sap_approved_roots()
    assert trusted_roots_of([own]).given
