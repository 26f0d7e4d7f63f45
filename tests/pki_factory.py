"""A small PKI for tests: root CA -> intermediate CA -> client leaf, all minted in memory.

Every test that needs certificates builds them here, at run time, so no key is ever
committed. The shape follows trustme (`CA().issue_cert(...)`) but exposes what our
validation needs to break on purpose: key type, validity window, EKU, key usage,
basicConstraints, signature hash, subject.

    pki = client_pki()                      # root -> intermediate -> leaf (RSA 2048)
    pki.chain                               # (leaf, intermediate, root) certificates
    pki.leaf.key                            # the leaf's private key (memory only)
    other = pki.intermediate.issue("other", days=-1)   # an expired sibling leaf

Keys are cached per (kind, slot) so a test run generates each RSA size only a few
times; pass `key=` or a fresh `slot=` when two certificates must not share a key.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cpi_cert_rotate.models import PrivateKey

KeyKind = Literal[
    "rsa-1024", "rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384", "ec-p521", "ed25519"
]

CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH

# Certificates start an hour in the past so that a few seconds of clock difference
# between minting and validating never makes a fresh certificate "not yet valid".
_BACKDATE = dt.timedelta(hours=1)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


def new_key(kind: KeyKind = "ec-p256") -> PrivateKey:
    """A freshly generated private key of `kind` (never cached)."""
    if kind.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:]))
    curves: dict[str, ec.EllipticCurve] = {
        "ec-p256": ec.SECP256R1(),
        "ec-p384": ec.SECP384R1(),
        "ec-p521": ec.SECP521R1(),
    }
    if kind in curves:
        return ec.generate_private_key(curves[kind])
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind!r}")


@functools.cache
def pooled_key(kind: KeyKind = "rsa-2048", slot: int = 0) -> PrivateKey:
    """A key of `kind` shared by every caller asking for the same `slot` in this run."""
    return new_key(kind)


def name(common_name: str, organization: str | None = "Example Corp") -> x509.Name:
    """A subject such as `CN=cpi-client,O=Example Corp`."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def pem(*certs: x509.Certificate) -> bytes:
    """The certificates as concatenated PEM, in the order given."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def der(cert: x509.Certificate) -> bytes:
    """The certificate's DER encoding."""
    return cert.public_bytes(serialization.Encoding.DER)


def key_pem(
    key: PrivateKey,
    *,
    fmt: Literal["pkcs8", "traditional"] = "pkcs8",
    password: bytes | None = None,
    encoding: serialization.Encoding = serialization.Encoding.PEM,
) -> bytes:
    """The key serialised (PKCS#8 or PKCS#1/SEC1, optionally encrypted), in memory."""
    private_format = (
        serialization.PrivateFormat.PKCS8
        if fmt == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    algorithm: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(encoding, private_format, algorithm)


HAVE_OPENSSL = shutil.which("openssl") is not None
"""`.ci/run` installs openssl; tests that need it skip elsewhere (`skipif(not HAVE_OPENSSL)`)."""


def openssl(*args: str, stdin: bytes = b"", fds: Mapping[str, bytes] | None = None) -> bytes:
    """Run `openssl ARGS` with `stdin` piped in and return its stdout; nothing touches disk.

    Extra inputs (a CA key, a second file) travel through pipes too: an argument
    `@name` becomes `/dev/fd/N` of a pipe pre-filled with `fds[name]` (< 64 KiB).
    """
    pass_fds: list[int] = []
    argv = ["openssl"]
    try:
        for arg in args:
            if arg.startswith("@") and fds and arg[1:] in fds:
                read_end, write_end = os.pipe()
                os.write(write_end, fds[arg[1:]])
                os.close(write_end)
                pass_fds.append(read_end)
                argv.append(f"/dev/fd/{read_end}")
            else:
                argv.append(arg)
        result = subprocess.run(
            argv, input=stdin, capture_output=True, pass_fds=pass_fds, check=False, timeout=60
        )
    finally:
        for fd in pass_fds:
            os.close(fd)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


def _signing_hash(
    key: PrivateKey, requested: hashes.HashAlgorithm | None
) -> hashes.HashAlgorithm | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    return requested or hashes.SHA256()


def _key_usage(*, ca: bool, digital_signature: bool = True) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKey = field(repr=False)

    @property
    def pem(self) -> bytes:
        """The certificate as PEM."""
        return pem(self.cert)


@dataclass(frozen=True)
class CA:
    """A certificate authority: a root (no parent) or an intermediate under `parent`."""

    cert: x509.Certificate
    key: PrivateKey = field(repr=False)
    parent: CA | None = None

    @classmethod
    def root(
        cls,
        common_name: str = "Test Root CA",
        *,
        key_kind: KeyKind = "ec-p256",
        days: float = 3650,
        not_before: dt.datetime | None = None,
        signature_hash: hashes.HashAlgorithm | None = None,
    ) -> CA:
        """A self-signed root CA."""
        key = new_key(key_kind)
        cert = _self_signed_cert(
            common_name, key, days=days, not_before=not_before, ca=True, eku=None,
            signature_hash=signature_hash,
        )  # fmt: skip
        return cls(cert, key)

    def intermediate(
        self,
        common_name: str = "Test Intermediate CA",
        *,
        key_kind: KeyKind = "ec-p256",
        key: PrivateKey | None = None,
        days: float = 1825,
        not_before: dt.datetime | None = None,
        path_length: int | None = 0,
        signature_hash: hashes.HashAlgorithm | None = None,
    ) -> CA:
        """A CA certificate issued by this CA."""
        key = key or new_key(key_kind)
        cert = _build(
            subject=name(common_name),
            issuer=self.cert.subject,
            public_key=key.public_key(),
            signing_key=self.key,
            not_before=not_before,
            days=days,
            ca=True,
            path_length=path_length,
            signature_hash=signature_hash,
        )
        return CA(cert, key, parent=self)

    def issue(
        self,
        common_name: str = "cpi-client",
        *,
        subject: x509.Name | None = None,
        key: PrivateKey | None = None,
        key_kind: KeyKind = "rsa-2048",
        slot: int = 0,
        days: float = 365,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        eku: Sequence[x509.ObjectIdentifier] | None = (CLIENT_AUTH,),
        is_ca: bool = False,
        digital_signature: bool = True,
        san: Iterable[str] = (),
        signature_hash: hashes.HashAlgorithm | None = None,
    ) -> Issued:
        """A client (end-entity) certificate issued by this CA.

        `days` counts from now (negative: already expired); `not_after` overrides it.
        `eku=None` leaves the extendedKeyUsage extension out. The key is the pooled key
        for (`key_kind`, `slot`) unless `key` is given.
        """
        key = key or pooled_key(key_kind, slot)
        cert = _build(
            subject=subject or name(common_name),
            issuer=self.cert.subject,
            public_key=key.public_key(),
            signing_key=self.key,
            not_before=not_before,
            days=days,
            not_after=not_after,
            ca=is_ca,
            path_length=None,
            eku=eku,
            digital_signature=digital_signature,
            san=tuple(san),
            signature_hash=signature_hash,
        )
        return Issued(cert, key)

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """This CA's certificate followed by its parents' up to the root."""
        parents = self.parent.chain if self.parent else ()
        return (self.cert, *parents)


@dataclass(frozen=True)
class Pki:
    """root -> intermediate -> leaf, the shape SAP expects (the root on its trusted list)."""

    root: CA
    intermediate: CA
    leaf: Issued

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Leaf, intermediate, root (what a CA usually hands out)."""
        return (self.leaf.cert, self.intermediate.cert, self.root.cert)

    @property
    def env_chain(self) -> tuple[x509.Certificate, ...]:
        """Leaf and intermediate: what the app sends at runtime (root left out)."""
        return (self.leaf.cert, self.intermediate.cert)


def client_pki(
    common_name: str = "cpi-client",
    *,
    root_name: str = "Test Root CA",
    intermediate_name: str = "Test Intermediate CA",
    **leaf_options: object,
) -> Pki:
    """A fresh root and intermediate and a client leaf; `leaf_options` go to `CA.issue`."""
    root = CA.root(root_name)
    intermediate = root.intermediate(intermediate_name)
    leaf = intermediate.issue(common_name, **leaf_options)  # type: ignore[arg-type]
    return Pki(root, intermediate, leaf)


def self_signed(
    common_name: str = "self-signed-client",
    *,
    key_kind: KeyKind = "rsa-2048",
    days: float = 365,
    is_ca: bool = False,
) -> Issued:
    """A self-signed certificate that is not a CA (what `openssl req -x509` makes)."""
    key = pooled_key(key_kind, 7)
    cert = _self_signed_cert(common_name, key, days=days, ca=is_ca, eku=(CLIENT_AUTH,))
    return Issued(cert, key)


def _self_signed_cert(
    common_name: str,
    key: PrivateKey,
    *,
    days: float,
    ca: bool,
    eku: Sequence[x509.ObjectIdentifier] | None,
    not_before: dt.datetime | None = None,
    signature_hash: hashes.HashAlgorithm | None = None,
) -> x509.Certificate:
    return _build(
        subject=name(common_name),
        issuer=name(common_name),
        public_key=key.public_key(),
        signing_key=key,
        not_before=not_before,
        days=days,
        ca=ca,
        path_length=None,
        eku=eku,
        signature_hash=signature_hash,
    )


def _build(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    signing_key: PrivateKey,
    not_before: dt.datetime | None,
    days: float,
    ca: bool,
    path_length: int | None,
    not_after: dt.datetime | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    digital_signature: bool = True,
    san: tuple[str, ...] = (),
    signature_hash: hashes.HashAlgorithm | None = None,
) -> x509.Certificate:
    now = utcnow()
    start = not_before or now - _BACKDATE
    end = not_after or now + dt.timedelta(days=days)
    if end <= start:  # an already expired certificate still needs a positive lifetime
        start = end - dt.timedelta(days=30)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(_key_usage(ca=ca, digital_signature=digital_signature or ca), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False
        )
    return builder.sign(signing_key, _signing_hash(signing_key, signature_hash))  # type: ignore[arg-type]
