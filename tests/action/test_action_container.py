"""The real container: build the Dockerfile with podman and run the image as a runner does.

One test on purpose: the build is the expensive part (a debootstrapped base, pip with
hashes) and pytest-xdist would build once per worker if the checks were split.

When podman cannot run, the test skips with the reason, unless CPI_REQUIRE_CONTAINER=1
(set by .ci/run), where it fails: CI must never pass without having run the image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from material_kit import key_lines
from podman_kit import Podman, unavailable_reason
from runner_kit import ROOT, RunnerDirs, audit, landscape_inputs

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(1800)]

# What `podman diff` may list after a run: mount points and the files podman itself
# bind-mounts into every container. Anything else means the action wrote to the image.
ALLOWED_DIFF = {
    "C /etc",
    "A /etc/hostname",
    "A /etc/hosts",
    "A /etc/resolv.conf",
    "C /etc/hostname",
    "C /etc/hosts",
    "C /etc/resolv.conf",
    "A /github",
    "A /github/workspace",
    "A /github/home",
    "A /github/workflow",
    "A /github/file_commands",
    "C /run",
    "A /run/.containerenv",
    "C /run/.containerenv",
}


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CPI_REQUIRE_CONTAINER") == "1":
            pytest.fail(f"CPI_REQUIRE_CONTAINER=1 but the container test cannot run: {reason}")
        pytest.skip(f"container test not run: {reason} (CPI_REQUIRE_CONTAINER=1 makes this fail)")
    return Podman(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    return podman.shared_image()  # built once per build context; the release tests reuse it


def _shell(podman: Podman, image: str, script: str) -> str:
    done = podman("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", script, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_image_builds_and_rotates_like_on_a_runner(
    podman: Podman, image: str, tmp_path: Path, record_property: Any
) -> None:
    # (1) what the image holds: the package and the entrypoint, no sandbox, no pip
    listing = _shell(
        podman,
        image,
        "ls /action; /opt/venv/bin/python -c 'import sys; print(sys.version_info[:2])';"
        " /opt/venv/bin/python -c 'import cf_sandbox' 2>/dev/null && echo SANDBOX;"
        " test -e /opt/venv/bin/pip && echo PIP;"
        " ls /opt/venv/lib/python3.11/site-packages; true",
    )
    assert listing.split("\n")[:2] == ["cpi_cert_rotate", "entrypoint.py"]
    assert "(3, 11)" in listing
    assert "SANDBOX" not in listing
    assert "PIP" not in listing
    # what actions-toolkit and cffi declare but the Action never imports is not there
    # (runtime.txt leaves it out, pip runs with --no-deps); the runs below prove the
    # Action works without it
    for unused in ("github", "nacl", "jwt", "pycparser", "typing_extensions.py"):
        assert unused not in listing.split("\n"), unused
    # byte code for what the Action imports (scripts/image_modules.py), none for the rest
    cached = _shell(
        podman,
        image,
        "cd /usr/lib/python3.11/__pycache__ && ls ssl.* pydoc.* 2>/dev/null;"
        " ls /action/cpi_cert_rotate/action/__pycache__/step.* /action/cpi_cert_rotate/rotation/"
        "__pycache__/engine.* /opt/venv/lib/python3.11/site-packages/requests/__pycache__/"
        "sessions.* 2>/dev/null; true",
    ).split()
    assert "ssl.cpython-311.pyc" in cached
    assert "pydoc.cpython-311.pyc" not in cached
    assert len([name for name in cached if name.startswith("/")]) == 3, cached
    size, base_size = podman.size_mb(image), podman.size_mb(podman.base)
    record_property("image_size_mb", round(size, 1))
    print(f"\nimage size: {size:.1f} MB ({size - base_size:.1f} MB on the base)")
    print(f"timings: {podman.timings}")
    assert size - base_size < 60  # 55.6 MB measured (docs/image.md); PyGithub & co. add 10

    # (2) bad input: exit 2 before any network, outputs and summary written
    dirs = RunnerDirs(tmp_path / "bad", prefix="/github")
    bad, diff = podman.run_action(image, {"cf-api": "https://127.0.0.1:9"}, dirs)
    assert bad.code == 2, bad.stdout + bad.stderr
    assert bad.outputs["reason"] == "invalid-input"
    assert "Invalid input" in bad.summary
    assert set(diff) <= ALLOWED_DIFF, diff

    # (3) a real rotation against the sandbox on the host (--network host)
    from cf_sandbox import Landscape

    with Landscape(instances=2) as ls:
        minted = ls.mint(cn="ntifext-client", days=90)
        inputs = landscape_inputs(ls, minted)
        dirs = RunnerDirs(tmp_path / "rotate", prefix="/github")
        result, diff = podman.run_action(image, inputs, dirs)
        key = serialization.load_pem_private_key(minted.key_pem.encode(), None)
        secrets = [*key_lines(key), ls.password]
        audit(result, secrets, dirs)  # stdout, stderr, outputs, summary, every mounted file
        assert result.code == 0, result.stdout + result.stderr
        assert result.outputs["rotated"] == "true"
        assert result.outputs["fingerprint-sha256"] == minted.leaf_sha256
        assert "### ✅ Certificate rotated" in result.summary
        assert set(diff) <= ALLOWED_DIFF, diff
        command_line = " ".join(podman.last_command_line)
        assert not any(secret in command_line for secret in secrets)
        assert "INPUT_PRIVATE-KEY" in command_line  # passed by name only
        for text in dirs.files().values():
            assert b"PRIVATE KEY" not in text

    # (4) the same image issuing from a real OpenBao: key made in the container, CSR signed
    from cf_sandbox.openbao import OpenBao, sign_policy

    with Landscape(instances=2) as ls, OpenBao.start(tmp_path / "bao") as bao:
        bao.enable_pki("pki-cpi", ls.sign_intermediate, common_name="Container Issuing CA")
        bao.create_role("pki-cpi", "cpi-client", organization=["Sandbox Clients"], country=["DE"])
        token = bao.token_with_policy(sign_policy("pki-cpi", "cpi-client"))
        inputs = {
            **landscape_inputs(ls, None),
            "vault-addr": bao.address,
            "vault-pki-mount": "pki-cpi",
            "vault-role": "cpi-client",
            "vault-token": token,
            "vault-ca-cert": bao.ca_pem,
        }
        dirs = RunnerDirs(tmp_path / "issue", prefix="/github")
        result, diff = podman.run_action(image, inputs, dirs)
        app = next(a for a in ls.state()["apps"] if a["name"] == ls.app)
        key = serialization.load_pem_private_key(app["env"]["CLI_KEY"].encode(), None)
        audit(result, [*key_lines(key), token, ls.password], dirs)
        assert result.code == 0, result.stdout + result.stderr
        assert result.outputs["rotated"] == "true"
        assert result.outputs["issuer"] == "CN=Container Issuing CA"
        assert len(bao.issued_serials("pki-cpi")) == 1
        assert set(diff) <= ALLOWED_DIFF, diff
        assert token not in " ".join(podman.last_command_line)
        for text in dirs.files().values():
            assert b"PRIVATE KEY" not in text

    # (5) the scan action: the same image with `runs.args` of scan/action.yml, on a fleet
    import yaml

    from cpi_cert_rotate.action.scan.inputs import DEFAULTS

    scan_args = yaml.safe_load((ROOT / "scan" / "action.yml").read_text())["runs"]["args"]
    with Landscape(instances=1, fleet_apps=10) as ls:
        inputs = {
            **DEFAULTS,
            "cf-api": ls.api_url,
            "cf-username": ls.username,
            "cf-password": ls.password,
            "cf-origin": ls.origin,
            "cf-ca-cert": ls.ca_pem,
        }
        dirs = RunnerDirs(tmp_path / "scan", prefix="/github")
        result, diff = podman.run_action(image, inputs, dirs, scan_args)
        audit(result, [ls.password], dirs)
        assert result.code == 0, result.stdout + result.stderr
        assert int(result.outputs["due-count"]) >= 3
        assert result.outputs["due"].startswith('{"include":[{"org":')
        assert "CPI client certificates" in result.summary
        assert set(diff) <= ALLOWED_DIFF, diff
