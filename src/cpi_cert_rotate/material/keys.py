"""Private keys in memory: generation, CSRs, PKCS#8 and the key-type policy.

CPI's load balancer accepts RSA and the NIST curves P-256/P-384 for client certificates;
everything here enforces the same set so that a key which would fail at CPI never gets
as far as a binding. Nothing in this module writes a file: keys are generated, encoded
and handed back as Python objects or strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import InputError
from .problems import input_error

if TYPE_CHECKING:
    from ..models import PrivateKey

KEY_KINDS: tuple[str, ...] = ("rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384")
"""The kinds `generate_key` accepts; the first is the default."""

MIN_RSA_BITS = 2048
"""Shorter RSA moduli are refused (NIST SP 800-131A; SAP's load balancer agrees)."""

_CURVES: dict[str, str] = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
"""cryptography's curve names and the NIST names users see in CA portals."""

SUPPORTED_CURVES = frozenset({"secp256r1", "secp384r1"})
"""EC curves accepted for the client key (P-521 is not in SAP's TLS profile)."""

_CURVE_BY_KIND: dict[str, ec.EllipticCurve] = {
    "ec-p256": ec.SECP256R1(),
    "ec-p384": ec.SECP384R1(),
}


def describe_public_key(public_key: PublicKeyTypes) -> tuple[str, int]:
    """(`RSA` | `EC P-256` | `Ed25519` ..., size in bits) for facts and messages."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = public_key.curve
        return f"EC {_CURVES.get(curve.name, curve.name)}", curve.key_size
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(public_key, dsa.DSAPublicKey):
        return "DSA", public_key.key_size
    return type(public_key).__name__, 0


def is_supported_key_type(public_key: PublicKeyTypes) -> bool:
    """True for RSA (any size; size is `weak-key`'s business) and EC P-256/P-384."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return True
    return (
        isinstance(public_key, ec.EllipticCurvePublicKey)
        and public_key.curve.name in SUPPORTED_CURVES
    )


def key_kind_of(public_key: PublicKeyTypes) -> str | None:
    """The `KEY_KINDS` name of `public_key` (`rsa-3072`, `ec-p256`), or None if not one."""
    if isinstance(public_key, rsa.RSAPublicKey):
        kind = f"rsa-{public_key.key_size}"
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        kind = "ec-" + _CURVES.get(public_key.curve.name, "").lower().replace("-", "")
    else:
        return None
    return kind if kind in KEY_KINDS else None


def public_key_der(public_key: PublicKeyTypes) -> bytes:
    """SubjectPublicKeyInfo DER: equal bytes mean the same public key."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches(key: PrivateKey, cert: x509.Certificate) -> bool:
    """True when `key` is the private half of `cert`'s public key."""
    return public_key_der(key.public_key()) == public_key_der(cert.public_key())


def generate_key(kind: str = "rsa-2048") -> PrivateKey:
    """A new private key of `kind` (one of `KEY_KINDS`), held in memory only."""
    if kind.startswith("rsa-") and kind in KEY_KINDS:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:]))
    if kind in _CURVE_BY_KIND:
        return ec.generate_private_key(_CURVE_BY_KIND[kind])
    raise input_error(
        "unsupported-key-type",
        f"Key kind {kind!r} cannot be generated; choose one of {', '.join(KEY_KINDS)}.",
    )


def build_csr(
    key: PrivateKey,
    *,
    subject: x509.Name | None = None,
    copy_from: x509.Certificate | None = None,
) -> x509.CertificateSigningRequest:
    """A CSR for `key`, signed with SHA-256, asking for clientAuth.

    The subject is `subject`, or the subject of `copy_from` (the live leaf), so that a
    renewed certificate keeps the DN that CPI (and an unpinned binding) compares. From
    `copy_from` the subjectAlternativeName is copied too, when it has one.
    """
    if subject is None and copy_from is None:
        raise InputError(
            "A CSR needs a subject or a certificate to copy it from.",
            code="csr-no-subject",
            fix="Pass `subject=` or `copy_from=` (the live leaf).",
        )
    if not is_supported_key_type(key.public_key()):
        kind, size = describe_public_key(key.public_key())
        raise input_error(
            "unsupported-key-type", f"A CSR cannot be built for a {kind} ({size} bits) key."
        )
    name = subject if subject is not None else copy_from.subject  # type: ignore[union-attr]
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    builder = builder.add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
    )
    if copy_from is not None:
        try:
            san = copy_from.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            pass
        else:
            builder = builder.add_extension(san.value, critical=san.critical)
    return builder.sign(key, hashes.SHA256())


def unencrypted_bytes(
    key: PrivateKey,
    private_format: serialization.PrivateFormat,
    encoding: serialization.Encoding = serialization.Encoding.PEM,
) -> bytes:
    """The key serialised without encryption; bytes in memory, never a file."""
    return key.private_bytes(encoding, private_format, serialization.NoEncryption())


def key_pkcs8_pem(key: PrivateKey) -> str:
    """The key as unencrypted PKCS#8 PEM, the form `CLI_KEY` holds; a string in memory."""
    return unencrypted_bytes(key, serialization.PrivateFormat.PKCS8).decode("ascii")


def key_traditional_pem(key: PrivateKey) -> str:
    """The key as unencrypted PKCS#1 (RSA) or SEC1 (EC) PEM, for masking and tools."""
    return unencrypted_bytes(key, serialization.PrivateFormat.TraditionalOpenSSL).decode("ascii")
