"""Predicates on single certificates, the vocabulary `validate` is written in.

These are *not* verification functions: each answers one question about one
certificate (or one issuer link) and cites the RFC 5280 section it comes from.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

_Ext = TypeVar("_Ext", bound=x509.ExtensionType)

_WEAK_HASHES = (hashes.SHA1, hashes.MD5)
"""Signature hashes CPI's load balancer (and every current TLS stack) refuses."""


def dn(cert: x509.Certificate) -> str:
    """The subject in RFC 4514 form, for messages (never empty)."""
    return cert.subject.rfc4514_string() or "(empty subject)"


def signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """True when `parent`'s key made `child`'s signature (RFC 5280 section 6.1.3 (a)(1)).

    cryptography refuses to verify SHA-1 signatures in certificates; those are checked
    with the raw public key instead, so a SHA-1 chain reports `weak-key`, not
    `bad-signature`.
    """
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return _verify_raw(child, parent)
    return True


def _verify_raw(child: x509.Certificate, parent: x509.Certificate) -> bool:
    key = parent.public_key()
    try:
        algorithm = child.signature_hash_algorithm
        params = child.signature_algorithm_parameters
        if algorithm is None:
            return False
        if isinstance(key, rsa.RSAPublicKey):
            pad = params if isinstance(params, padding.PSS) else padding.PKCS1v15()
            key.verify(child.signature, child.tbs_certificate_bytes, pad, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def is_self_issued(cert: x509.Certificate) -> bool:
    """RFC 5280 section 3.2: subject and issuer are the same name."""
    return cert.issuer == cert.subject


def is_ca(cert: x509.Certificate) -> bool:
    """basicConstraints cA (RFC 5280 section 4.2.1.9); absent means not a CA."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):  # ValueError: malformed, refused at load
        return False


def extension_value(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    """The extension's value, or None when absent (or malformed: `parse` refuses
    certificates with malformed extensions, so only hand-built ones get here)."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def weak_signature_hash(cert: x509.Certificate) -> str | None:
    """`SHA1`/`MD5` when the certificate is signed with a broken hash, else None."""
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:  # an unknown algorithm is not ours to judge here
        return None
    return algorithm.name.upper() if isinstance(algorithm, _WEAK_HASHES) else None


def valid_at(cert: x509.Certificate, now: datetime) -> bool:
    """RFC 5280 section 4.1.2.5: notBefore <= now <= notAfter, both inclusive."""
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
