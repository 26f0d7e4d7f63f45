"""The tests' OpenBao: `cf_sandbox.openbao` plus the JWT login the Action's tests need.

The server management (start/stop, PKI mount with a signed intermediate, roles, tokens)
lives in `cf_sandbox.openbao`, shared with `cpi-cert-rotate demo --issuer openbao`. One
server runs per pytest worker (the session fixture `openbao` in tests/conftest.py); each
test enables its own mounts and roles, so tests stay independent.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from cf_sandbox import openbao
from cf_sandbox.openbao import bao_binary, free_port_pair, sign_policy

__all__ = ["OpenBao", "bao_binary", "free_port_pair", "jwt_claims", "mint_jwt", "sign_policy"]


class OpenBao(openbao.OpenBao):
    """The shared dev server, with JWT auth and token introspection for the tests."""

    def enable_jwt(
        self,
        mount: str,
        public_key_pem: str,
        role: str,
        bound_audiences: Sequence[str],
        policies: Sequence[str],
        **role_params: Any,
    ) -> None:
        """A JWT auth mount trusting `public_key_pem`, with one role (`sub` is the user)."""
        self.call("POST", f"sys/auth/{mount}", {"type": "jwt"})
        self.call("POST", f"auth/{mount}/config", {"jwt_validation_pubkeys": [public_key_pem]})
        params: dict[str, Any] = {
            "role_type": "jwt",
            "bound_audiences": list(bound_audiences),
            "user_claim": "sub",
            "token_policies": list(policies),
            "token_ttl": "10m",
        }
        params.update(role_params)
        self.call("POST", f"auth/{mount}/role/{role}", params)

    def token_accessors(self) -> set[str]:
        """Accessors of every live token: a login adds one."""
        return set(self.call("LIST", "auth/token/accessors")["data"]["keys"])

    def lookup_token(self, token: str) -> dict[str, Any]:
        """What OpenBao knows of `token` (remaining `num_uses`, policies), asked as root."""
        return dict(self.call("POST", "auth/token/lookup", {"token": token})["data"])


def mint_jwt(key: ec.EllipticCurvePrivateKey, claims: dict[str, Any]) -> str:
    """An ES256 JWT (RFC 7515/7518): base64url header.payload, signature r||s raw."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    header = b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return f"{header}.{payload}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def jwt_claims(
    audience: str, *, subject: str = "repo:example/app:ref:refs/heads/main"
) -> dict[str, Any]:
    """Claims shaped like GitHub's OIDC token, valid for ten minutes from now."""
    now = int(time.time())
    return {
        "iss": "https://token.actions.githubusercontent.com",
        "sub": subject,
        "aud": audience,
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 600,
    }
