"""The sandbox's certificate authorities and everything they mint.

Three separate hierarchies keep the roles apart, as on BTP:
- the *server* CA issues the HTTPS certificates of CC, UAA and CPI (clients trust it);
- the *trusted* root (with one intermediate) stands for a CA on SAP's load-balancer list:
  CPI accepts client chains that verify to it;
- the *untrusted* root (with one intermediate) stands for any other CA, so tests can show
  that CPI and the broker refuse a well-formed chain from the wrong issuer.

CAs use EC P-256 keys because they are cheap to make (the landscape must start in < 2 s);
client leaves default to RSA-2048 like the seed's openssl recipe. Nothing here writes a file.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Key types `mint` accepts, named as the tool's inputs name them.
KEY_TYPES = ("rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384")

_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
_ONE_DAY = datetime.timedelta(days=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _new_key(key_type: str) -> _PrivateKey:
    if key_type.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise ValueError(f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}")


def _name(cn: str, org: str = "Sandbox") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def key_pem(key: _PrivateKey) -> str:
    """Unencrypted PKCS#8 PEM: the form the app's `CLI_KEY` env var holds."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def cert_pem(cert: x509.Certificate) -> str:
    """PEM text of one certificate."""
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def sha256_hex(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the DER, no colons: the fingerprint form of the state API."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def load_pem_certs(text: str) -> list[x509.Certificate]:
    """Every certificate in a PEM text, in order; raises ValueError when there is none."""
    return x509.load_pem_x509_certificates(text.encode())


@dataclass(frozen=True)
class Minted:
    """A client chain (leaf + intermediate, no root) and its PKCS#8 key, both PEM."""

    chain_pem: str
    key_pem: str
    leaf_sha256: str


@dataclass(frozen=True)
class Authority:
    """A CA: its certificate and key. Only the sandbox holds CA keys."""

    cert: x509.Certificate
    key: _PrivateKey

    @property
    def pem(self) -> str:
        """The CA certificate as PEM."""
        return cert_pem(self.cert)

    @classmethod
    def root(cls, cn: str) -> Authority:
        """A self-signed root, valid 10 years (RFC 5280 4.2.1.9: CA, no path limit)."""
        key = _new_key("ec-p256")
        name = _name(cn)
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _ONE_DAY)
            .not_valid_after(now + 3650 * _ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    def intermediate(self, cn: str) -> Authority:
        """An issuing CA under this one (path length 0: it signs leaves only)."""
        key = _new_key("ec-p256")
        return Authority(self.sign_issuing_ca(_name(cn), key.public_key()), key)

    def sign_issuing_ca(self, subject: x509.Name, public_key: _PublicKey) -> x509.Certificate:
        """The certificate of an issuing CA under this one whose key may live elsewhere."""
        now = _now()
        return (
            self._builder(subject, public_key, now - _ONE_DAY, now + 3000 * _ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue_client(
        self,
        cn: str,
        *,
        days: float = 90,
        key_type: str = "rsa-2048",
        not_before: datetime.datetime | None = None,
    ) -> tuple[x509.Certificate, _PrivateKey]:
        """A clientAuth leaf valid `days` from `not_before` (default: now)."""
        key = _new_key(key_type)
        start = (not_before or _now()).astimezone(datetime.UTC).replace(microsecond=0)
        rsa_key = isinstance(key, rsa.RSAPrivateKey)
        cert = (
            self._builder(
                _name(cn, "Sandbox Clients"), key.public_key(), start, start + days * _ONE_DAY
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(key_encipherment=rsa_key), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert, key

    def issue_server(self, host: str = "127.0.0.1") -> tuple[x509.Certificate, _PrivateKey]:
        """A serverAuth leaf for `host` (an IP SAN for 127.0.0.1, a DNS SAN otherwise)."""
        key = _new_key("ec-p256")
        now = _now()
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        cert = (
            self._builder(
                _name(host, "Sandbox Servers"),
                key.public_key(),
                now - _ONE_DAY,
                now + 30 * _ONE_DAY,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert, key

    def _builder(
        self,
        subject: x509.Name,
        public_key: _PublicKey,
        not_before: datetime.datetime,
        not_after: datetime.datetime,
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )


def _usage(*, ca: bool = False, key_encipherment: bool = False) -> x509.KeyUsage:
    """Key usage: CAs sign certificates and CRLs; leaves sign (RSA leaves also encipher)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


class Pki:
    """All CAs of one landscape, made fresh at start; nothing is persisted."""

    def __init__(self) -> None:
        self.server_ca = Authority.root("Sandbox Server CA")
        self.trusted_root = Authority.root("Sandbox Trusted Root CA")
        self.trusted_issuer = self.trusted_root.intermediate("Sandbox Trusted Issuing CA")
        self.untrusted_root = Authority.root("Sandbox Untrusted Root CA")
        self.untrusted_issuer = self.untrusted_root.intermediate("Sandbox Untrusted Issuing CA")
        self.external_issuers: list[x509.Certificate] = []
        """Issuing CAs run elsewhere (a Vault PKI) whose CSR the trusted root signed."""

    def mint(
        self,
        cn: str = "client",
        *,
        days: float = 90,
        trusted: bool = True,
        key: str = "rsa-2048",
        not_before: datetime.datetime | None = None,
    ) -> Minted:
        """A new client chain (leaf + intermediate) and key under the chosen root."""
        issuer = self.trusted_issuer if trusted else self.untrusted_issuer
        cert, private = issuer.issue_client(cn, days=days, key_type=key, not_before=not_before)
        return Minted(
            chain_pem=cert_pem(cert) + issuer.pem,
            key_pem=key_pem(private),
            leaf_sha256=sha256_hex(cert),
        )

    def sign_intermediate(self, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        """Sign an issuing CA's CSR with the trusted root, as a CA operator would for a
        Vault or OpenBao intermediate; its leaves are then trusted like the sandbox's own."""
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not verify")
        public_key = csr.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise ValueError("an issuing CA's key must be RSA or EC")
        cert = self.trusted_root.sign_issuing_ca(csr.subject, public_key)
        self.external_issuers.append(cert)
        return cert

    def server_credentials(self) -> tuple[str, str]:
        """(chain PEM, key PEM) of a fresh server certificate for 127.0.0.1."""
        cert, key = self.server_ca.issue_server()
        return cert_pem(cert), key_pem(key)

    def issued_by_trusted_root(self, leaf: x509.Certificate) -> bool:
        """True if the leaf was signed by the trusted issuing CA (the broker's CA check).

        Not a full path validation: the broker only needs to know which hierarchy issued
        the certificate; CPI's TLS layer does the real verification at call time.
        """
        for issuer in (self.trusted_issuer.cert, *self.external_issuers):
            if leaf.issuer != issuer.subject:
                continue
            try:
                leaf.verify_directly_issued_by(issuer)
            except (InvalidSignature, ValueError, TypeError):
                continue
            return True
        return False
