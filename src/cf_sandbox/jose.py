"""JSON Web Tokens for the sandbox's identity providers, signed and checked with `cryptography`.

The compact JWS form (RFC 7515 section 7.1) with RS256 (RSASSA-PKCS1-v1_5 with SHA-256,
RFC 7518 section 3.3) or ES256 (ECDSA P-256 with SHA-256, the signature as the raw 64-byte
`R || S`, RFC 7518 section 3.4), and public keys as JWKs (RFC 7517, RFC 7518 section 6).
GitHub's OIDC tokens and SAP Cloud Identity Services' tokens are RS256; ES256 is here
because other issuers (and the Vault tests) use it and a verifier must not assume one.
Private keys live only in memory.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

ALGORITHMS = ("RS256", "ES256")
_P256_BYTES = 32


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """The bytes of a base64url text with or without padding; ValueError when it is not."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error


def _int_b64(value: int, length: int | None = None) -> str:
    size = length or max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(size, "big"))


def _b64_int(text: str) -> int:
    return int.from_bytes(unb64url(text), "big")


@dataclass(frozen=True)
class Jwt:
    """A compact JWS split into its parts; nothing about it is verified yet."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @classmethod
    def parse(cls, token: str) -> Jwt:
        """Split and decode `token`; ValueError when it is not a JWS with JSON objects."""
        parts = token.split(".")
        if len(parts) != 3:
            raise ValueError("a JWT has three parts")
        try:
            header = json.loads(unb64url(parts[0]))
            claims = json.loads(unb64url(parts[1]))
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError("a JWT part is not base64url JSON") from error
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise ValueError("a JWT header and payload are JSON objects")
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
        return cls(header, claims, signing_input, unb64url(parts[2]))


def _verify_with(jwk: dict[str, Any], jwt: Jwt) -> bool:
    alg = jwt.header.get("alg")
    try:
        if alg == "RS256" and jwk.get("kty") == "RSA":
            key = rsa.RSAPublicNumbers(_b64_int(jwk["e"]), _b64_int(jwk["n"])).public_key()
            key.verify(jwt.signature, jwt.signing_input, padding.PKCS1v15(), hashes.SHA256())
            return True
        if alg == "ES256" and jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            if len(jwt.signature) != 2 * _P256_BYTES:
                return False
            numbers = ec.EllipticCurvePublicNumbers(
                _b64_int(jwk["x"]), _b64_int(jwk["y"]), ec.SECP256R1()
            )
            r = int.from_bytes(jwt.signature[:_P256_BYTES], "big")
            s = int.from_bytes(jwt.signature[_P256_BYTES:], "big")
            numbers.public_key().verify(
                encode_dss_signature(r, s), jwt.signing_input, ec.ECDSA(hashes.SHA256())
            )
            return True
    except (InvalidSignature, KeyError, ValueError):
        return False
    return False


def signed_by(jwt: Jwt, keys: list[dict[str, Any]]) -> bool:
    """True when one of `keys` (a JWKS's `keys`) verifies `jwt`.

    A `kid` in the header picks the key; without one every key of the token's algorithm
    is tried, as UAA's `ChainedSignatureVerifier` does.
    """
    kid = jwt.header.get("kid")
    candidates = [k for k in keys if kid is None or k.get("kid") == kid]
    return any(_verify_with(k, jwt) for k in candidates)


@dataclass
class SigningKey:
    """A private key with its `kid` and algorithm; signs JWTs, publishes its JWK."""

    alg: str = "RS256"
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    _key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.alg == "RS256":
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif self.alg == "ES256":
            self._key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"alg must be one of {', '.join(ALGORITHMS)}")

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        """The compact JWS of `claims`; `header` adds fields (`typ`, `x5t`)."""
        head = {"alg": self.alg, "kid": self.kid, "typ": "JWT", **header}
        signing_input = (
            f"{b64url(json.dumps(head, separators=(',', ':')).encode())}."
            f"{b64url(json.dumps(claims, separators=(',', ':')).encode())}"
        )
        data = signing_input.encode("ascii")
        if isinstance(self._key, rsa.RSAPrivateKey):
            signature = self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
        return f"{signing_input}.{b64url(signature)}"

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK (RFC 7517 section 4, RFC 7518 section 6.2/6.3)."""
        public = self._key.public_key()
        base = {"kid": self.kid, "alg": self.alg, "use": "sig"}
        if isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            return {**base, "kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
        assert isinstance(public, ec.EllipticCurvePublicKey)
        point = public.public_numbers()
        return {
            **base,
            "kty": "EC",
            "crv": "P-256",
            "x": _int_b64(point.x, _P256_BYTES),
            "y": _int_b64(point.y, _P256_BYTES),
        }

    def public_pem(self) -> str:
        """The public key as PEM (what Vault's `jwt_validation_pubkeys` takes)."""
        from cryptography.hazmat.primitives import serialization

        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )
