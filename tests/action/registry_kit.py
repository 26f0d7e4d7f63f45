"""A container registry on loopback, to test publishing the image as the release does.

Debian's `docker-registry` package (the CNCF distribution registry, the same code many
registries run) serves TLS on 127.0.0.1 with a server certificate from a throwaway CA
(trustme); podman trusts that CA through `--cert-dir`, so nothing on the machine is
configured and TLS is verified as it is against GHCR. The registry's storage is a
directory of the caller's; two registries may serve the same one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import trustme

# What a pull asks for (the release pushes an OCI index of OCI manifests).
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def unavailable_reason() -> str | None:
    """Why the registry cannot run here, or None."""
    if shutil.which("docker-registry") is None:
        return "missing docker-registry (apt-get install docker-registry)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Registry:
    """One `docker-registry serve` process; `host` is `127.0.0.1:PORT`."""

    workdir: Path
    storage: Path

    def __enter__(self) -> Registry:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1")
        # The registry reads its certificate and key from files: a throwaway test key,
        # never the Action's, in the test's own directory.
        server.private_key_and_cert_chain_pem.write_to_path(str(self.workdir / "server.pem"))
        self.cert_dir = self.workdir / "certs"
        self.cert_dir.mkdir(exist_ok=True)
        ca.cert_pem.write_to_path(str(self.cert_dir / "ca.crt"))
        self.ca_file = str(self.cert_dir / "ca.crt")
        port = _free_port()
        self.host = f"127.0.0.1:{port}"
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
            },
            "http": {
                "addr": self.host,
                "secret": "loopback-only",
                "tls": {
                    "certificate": str(self.workdir / "server.pem"),
                    "key": str(self.workdir / "server.pem"),
                },
            },
        }
        (self.workdir / "config.yml").write_text(json.dumps(config))  # YAML is a superset
        self.log = open(self.workdir / "registry.log", "wb")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(self.workdir / "config.yml")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.get("/v2/").status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                log = (self.workdir / "registry.log").read_text()
                raise RuntimeError(f"docker-registry did not start:\n{log}")
            time.sleep(0.1)

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def get(self, path: str, **headers: str) -> requests.Response:
        """GET on the registry API, verifying its certificate against the test CA."""
        return requests.get(
            f"https://{self.host}{path}", headers=headers, verify=self.ca_file, timeout=10
        )

    def manifest(self, name: str, reference: str) -> dict[str, Any]:
        """The manifest or index `name@reference` (a digest or a tag), parsed."""
        response = self.get(f"/v2/{name}/manifests/{reference}", Accept=MANIFEST_TYPES)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def blob(self, name: str, digest: str) -> bytes:
        response = self.get(f"/v2/{name}/blobs/{digest}")
        response.raise_for_status()
        return response.content


NAME = "release/cpi-cert-rotate"
"""The repository name in the loopback registry (GHCR's is OWNER/cpi-cert-rotate)."""


@dataclass(frozen=True)
class Published:
    """An image that scripts/release-image.sh pushed into a registry storage directory."""

    storage: Path
    tag: str
    digest: str
    log: str

    def reference(self, registry: Registry) -> str:
        return f"{registry.host}/{NAME}@{self.digest}"


def publish_once(podman: Any, root: Path) -> Published:
    """Run scripts/release-image.sh against a loopback registry, once per build context.

    The release job's build step, run here as it runs there (one platform: arm64 would
    need qemu-user-static and binfmt_misc). Several test modules and pytest-xdist
    workers share the result through a lock and a file naming the digest, keyed by
    everything the build reads and the script itself.
    """
    from podman_kit import ROOT, _locked, context_digest

    base = podman.base_image()
    script = ROOT / "scripts" / "release-image.sh"
    inputs = hashlib.sha256(context_digest().encode() + script.read_bytes()).hexdigest()
    key = f"{inputs[:16]}-{base.rsplit(':', 1)[1]}"
    storage = root / f"registry-{key}"
    done = root / f"published-{key}.json"
    with _locked("publish"):
        if done.exists():
            return Published(**{**json.loads(done.read_text()), "storage": storage})
        tag = "v0.0.0-test"
        with Registry(root / f"registry-run-{key}", storage) as registry:
            started = time.monotonic()
            run = subprocess.run(
                [str(script), f"{registry.host}/{NAME}", tag],
                env={
                    **podman.env,
                    "PLATFORMS": "linux/amd64",
                    "BUILD_FLAGS": " ".join(podman.build_flags(base)),
                    "PUSH_FLAGS": f"--cert-dir {registry.cert_dir}",
                    "SOURCE_URL": "https://github.com/acme/cpi-cert-rotate",
                },
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=1200,
                check=False,
            )
            seconds = time.monotonic() - started
        if run.returncode != 0:
            raise RuntimeError(f"release-image.sh failed ({run.returncode}):\n{run.stderr}")
        (digest,) = [ln[7:] for ln in run.stdout.splitlines() if ln.startswith("digest=")]
        log = f"{run.stderr}\n[{seconds:.1f} s]"
        done.write_text(json.dumps({"tag": tag, "digest": digest, "log": log}))
        return Published(storage, tag, digest, log)
