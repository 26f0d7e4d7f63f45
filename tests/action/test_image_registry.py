"""The release's publishing path, run here: build, push, pull by digest, run by digest.

scripts/release-image.sh (the release job's build step) builds the image and pushes it
as an OCI index to a registry on loopback (Debian's docker-registry, TLS with a test
CA); the image is then removed locally, pulled back by digest only and run, as a
runner does with `image: docker://...@sha256:...`.

Skips with the reason when podman or the registry cannot run, unless
CPI_REQUIRE_CONTAINER=1 (set by .ci/run), where it fails instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import registry_kit
from podman_kit import CACHE, Podman, unavailable_reason
from registry_kit import NAME, Published, Registry, publish_once
from runner_kit import RunnerDirs

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    reason = unavailable_reason() or registry_kit.unavailable_reason()
    if reason is not None:
        if os.environ.get("CPI_REQUIRE_CONTAINER") == "1":
            pytest.fail(f"CPI_REQUIRE_CONTAINER=1 but the registry test cannot run: {reason}")
        pytest.skip(f"registry test not run: {reason} (CPI_REQUIRE_CONTAINER=1 makes this fail)")
    return Podman(tmp_path_factory.mktemp("podman"))


def test_release_image_is_pushed_pulled_and_run_by_digest(
    podman: Podman, tmp_path: Path, record_property: Any
) -> None:
    published: Published = publish_once(podman, CACHE)
    print(f"\nrelease-image.sh:\n{published.log}")
    with Registry(tmp_path / "registry", published.storage) as registry:
        # (1) what the registry holds: an OCI index, one manifest per platform, the tag
        index = registry.manifest(NAME, published.digest)
        assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
        assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64"]
        assert registry.manifest(NAME, published.tag) == index  # the tag names the same
        (entry,) = index["manifests"]
        manifest = registry.manifest(NAME, entry["digest"])
        config = json.loads(registry.blob(NAME, manifest["config"]["digest"]))
        labels = config["config"]["Labels"]
        assert (
            labels["org.opencontainers.image.source"] == "https://github.com/acme/cpi-cert-rotate"
        )
        assert labels["org.opencontainers.image.version"] == published.tag
        assert config["config"]["Entrypoint"][0] == "/opt/venv/bin/python"
        pull_mb = sum(layer["size"] for layer in manifest["layers"]) / 1e6
        record_property("pull_size_mb", round(pull_mb, 2))
        print(f"compressed layers (what a pull moves): {pull_mb:.2f} MB")

        # (2) pulled back by digest alone, into a store that does not have it
        reference = published.reference(registry)
        podman("rmi", "--force", reference, check=False)
        podman("pull", "--quiet", "--cert-dir", str(registry.cert_dir), reference)
        assert podman("image", "exists", reference, check=False).returncode == 0

        # (3) run by digest, as the runner runs `docker://...@sha256:...`
        dirs = RunnerDirs(tmp_path / "run", prefix="/github")
        run, _ = podman.run_action(reference, {"cf-api": "https://127.0.0.1:9"}, dirs)
        assert run.code == 2, run.stdout + run.stderr
        assert run.outputs["reason"] == "invalid-input"
        assert "Invalid input" in run.summary
        assert "::error" in run.stdout
