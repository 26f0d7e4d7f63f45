"""Client material for the Action's tests, minted at run time (no key is ever committed)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from cpi_cert_rotate.models import PrivateKey


@dataclass(frozen=True)
class ClientMaterial:
    """A client chain and key in the forms a workflow passes them."""

    chain_pem: str
    key: PrivateKey
    key_pem: str
    leaf: x509.Certificate

    def encrypted_key_pem(self, passphrase: bytes) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        ).decode()

    def pkcs12_b64(self, password: bytes | None) -> str:
        algorithm = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        data = pkcs12.serialize_key_and_certificates(
            b"client",
            self.key,
            self.leaf,
            None,
            algorithm,  # type: ignore[arg-type]
        )
        return base64.b64encode(data).decode()


def key_lines(key: PrivateKey) -> list[str]:
    """Every body line (8+ characters) of every common encoding of `key`, for audits."""
    forms = [
        key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        for fmt in (
            serialization.PrivateFormat.PKCS8,
            serialization.PrivateFormat.TraditionalOpenSSL,
        )
    ]
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    lines = [
        line
        for form in forms
        for line in form.decode().splitlines()
        if line and not line.startswith("-----")
    ]
    lines.append(base64.b64encode(der).decode())
    # A line whose bytes lie wholly inside the public key (an RSA modulus is part of the
    # private key's encoding too) is public: the certificate may carry the same line
    # whenever the two encodings align (about one run in 48), and that is no leak.
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return [line for line in lines if len(line) >= 8 and not _only_public(line, public)]


def _only_public(line: str, public_der: bytes) -> bool:
    """True when the base64 `line` decodes to bytes that occur in the public key's DER."""
    try:
        chunk = base64.b64decode(line, validate=True)
    except ValueError:
        return False
    return len(line) % 4 == 0 and chunk in public_der


def mint_client_material() -> ClientMaterial:
    """A leaf (clientAuth) under an intermediate under a root, with its key."""
    ca = trustme.CA()
    issuing = ca.create_child_ca()
    leaf = issuing.issue_cert("cpi-client.example")
    chain_pem = "".join(blob.bytes().decode() for blob in leaf.cert_chain_pems)
    key_pem = leaf.private_key_pem.bytes().decode()
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    return ClientMaterial(chain_pem, key, key_pem, cert)  # type: ignore[arg-type]
