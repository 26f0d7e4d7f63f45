"""The release job's shell steps, run here: pin action.yml to a digest, commit, tag, push.

`origin` is a bare git repository in a temporary directory standing in for GitHub; the
scripts are the ones .github/workflows/release.yml calls. The pinned action.yml must
pass the same checks as the Dockerfile one (GitHub's schema, zizmor).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DIGEST = "sha256:" + "ab" * 32
IMAGE = f"ghcr.io/acme/cpi-cert-rotate@{DIGEST}"


def _run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def _git(*args: str, cwd: Path) -> str:
    done = _run("git", "-c", "init.defaultBranch=main", *args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A clone of a bare `origin` holding action.yml and the scripts, on main."""
    seed = tmp_path / "seed"
    (seed / "scripts").mkdir(parents=True)
    (seed / "scan").mkdir()
    shutil.copy(ROOT / "action.yml", seed / "action.yml")
    shutil.copy(ROOT / "scan" / "action.yml", seed / "scan" / "action.yml")
    for script in ("release-pin-action.sh", "release-tag.sh"):
        shutil.copy(ROOT / "scripts" / script, seed / "scripts" / script)
    _git("init", "--quiet", cwd=seed)
    _git("add", ".", cwd=seed)
    _git(
        "-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "-qm", "main", cwd=seed
    )
    _git("clone", "--quiet", "--bare", str(seed), str(tmp_path / "origin.git"), cwd=tmp_path)
    _git("clone", "--quiet", str(tmp_path / "origin.git"), str(tmp_path / "work"), cwd=tmp_path)
    return tmp_path / "work"


def test_pin_rewrites_only_the_image_line_and_passes_the_schema(tmp_path: Path) -> None:
    action = tmp_path / "action.yml"
    shutil.copy(ROOT / "action.yml", action)
    done = _run(str(ROOT / "scripts" / "release-pin-action.sh"), IMAGE, str(action), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    before = (ROOT / "action.yml").read_text().splitlines()
    after = action.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("  image: Dockerfile", f"  image: docker://{IMAGE}")]
    assert yaml.safe_load(action.read_text())["runs"] == {
        "using": "docker",
        "image": f"docker://{IMAGE}",
    }
    schema = _run(
        str(BIN / "check-jsonschema"),
        "--builtin-schema",
        "vendor.github-actions",
        str(action),
        cwd=tmp_path,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    # zizmor's unpinned-images audit (pedantic: the default persona lets a tag pass)
    # accepts the digest and flags the same line with a tag
    (tmp_path / "zizmor.yml").write_text((ROOT / "zizmor.yml").read_text())
    assert _zizmor(action, tmp_path).returncode == 0
    action.write_text(action.read_text().replace(f"@{DIGEST}", ":v1"))
    flagged = _zizmor(action, tmp_path)
    assert flagged.returncode != 0
    assert "unpinned-images" in flagged.stdout


def _zizmor(action: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "zizmor"), "--offline", "--no-progress", "--persona", "pedantic"]
    return _run(*command, str(action), cwd=cwd)


def test_pin_gives_the_scan_action_the_same_image_and_keeps_its_argument(
    tmp_path: Path,
) -> None:
    """Without files the script pins both actions of the repository: the scan action
    (`image: ../Dockerfile`, `args: [scan]`) runs the very image the main action runs."""
    (tmp_path / "scan").mkdir()
    shutil.copy(ROOT / "action.yml", tmp_path / "action.yml")
    shutil.copy(ROOT / "scan" / "action.yml", tmp_path / "scan" / "action.yml")
    done = _run(str(ROOT / "scripts" / "release-pin-action.sh"), IMAGE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    before = (ROOT / "scan" / "action.yml").read_text().splitlines()
    after = (tmp_path / "scan" / "action.yml").read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [
        ("  image: ../Dockerfile # zizmor: ignore[unpinned-images]", f"  image: docker://{IMAGE}")
    ]
    runs = yaml.safe_load("\n".join(after))["runs"]
    assert runs == {"using": "docker", "image": f"docker://{IMAGE}", "args": ["scan"]}
    main = yaml.safe_load((tmp_path / "action.yml").read_text())["runs"]
    assert main["image"] == runs["image"]
    scan = tmp_path / "scan" / "action.yml"
    schema = _run(
        str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(scan),
        cwd=tmp_path,
    )  # fmt: skip
    assert schema.returncode == 0, schema.stdout + schema.stderr
    (tmp_path / "zizmor.yml").write_text((ROOT / "zizmor.yml").read_text())
    assert _zizmor(scan, tmp_path).returncode == 0  # pinned: no ignore comment needed


def test_pin_writes_no_file_when_one_of_them_cannot_be_pinned(tmp_path: Path) -> None:
    (tmp_path / "scan").mkdir()
    shutil.copy(ROOT / "action.yml", tmp_path / "action.yml")
    broken = (
        (ROOT / "scan" / "action.yml").read_text().replace("  using: docker", "  using: node20")
    )
    (tmp_path / "scan" / "action.yml").write_text(broken)
    done = _run(str(ROOT / "scripts" / "release-pin-action.sh"), IMAGE, cwd=tmp_path)
    assert done.returncode == 2
    assert "scan/action.yml must end with a runs: block" in done.stderr
    assert (tmp_path / "action.yml").read_text() == (ROOT / "action.yml").read_text()


@pytest.mark.parametrize(
    "reference",
    [
        "ghcr.io/acme/cpi-cert-rotate:v1",  # a tag can be moved
        "ghcr.io/acme/cpi-cert-rotate@sha256:abc",  # not a whole digest
        f"ghcr.io/acme/cpi-cert-rotate@{DIGEST}\n  image: x",  # an injected line
        f"docker://ghcr.io/acme/cpi-cert-rotate@{DIGEST}",  # the prefix is the script's
    ],
)
def test_pin_refuses_a_reference_without_a_digest(tmp_path: Path, reference: str) -> None:
    action = tmp_path / "action.yml"
    shutil.copy(ROOT / "action.yml", action)
    done = _run(
        str(ROOT / "scripts" / "release-pin-action.sh"), reference, str(action), cwd=tmp_path
    )
    assert done.returncode == 2
    assert "is not REGISTRY/NAME@sha256" in done.stderr
    assert action.read_text() == (ROOT / "action.yml").read_text()  # nothing written


def test_pin_refuses_an_action_yml_already_pinned(tmp_path: Path) -> None:
    action = tmp_path / "action.yml"
    shutil.copy(ROOT / "action.yml", action)
    pin = str(ROOT / "scripts" / "release-pin-action.sh")
    assert _run(pin, IMAGE, str(action), cwd=tmp_path).returncode == 0
    again = _run(pin, IMAGE, str(action), cwd=tmp_path)
    assert again.returncode == 2
    assert "must end with a runs: block of exactly" in again.stderr


def test_publish_tags_a_release_commit_and_leaves_main_on_the_dockerfile(
    checkout: Path, tmp_path: Path
) -> None:
    origin = str(tmp_path / "origin.git")
    main = _git("rev-parse", "HEAD", cwd=checkout)
    check = _run("scripts/release-tag.sh", "check", "1.2.0", origin, cwd=checkout)
    assert check.returncode == 0, check.stderr

    done = _run("scripts/release-tag.sh", "publish", "1.2.0", IMAGE, origin, cwd=checkout)
    assert done.returncode == 0, done.stderr
    remote = tmp_path / "origin.git"
    release = _git("rev-parse", "v1.2.0^{commit}", cwd=remote)
    assert _git("rev-parse", "v1^{commit}", cwd=remote) == release
    assert _git("rev-parse", f"{release}^", cwd=remote) == main  # one commit on top of main
    assert _git("rev-parse", "main", cwd=remote) == main  # main is not moved
    assert _git("cat-file", "-t", "v1.2.0", cwd=remote) == "tag"  # annotated
    tagged = yaml.safe_load(_git("show", "v1.2.0:action.yml", cwd=remote))
    assert tagged["runs"]["image"] == f"docker://{IMAGE}"
    assert yaml.safe_load(_git("show", "main:action.yml", cwd=remote))["runs"]["image"] == (
        "Dockerfile"
    )
    scan = yaml.safe_load(_git("show", "v1.2.0:scan/action.yml", cwd=remote))
    assert scan["runs"] == {"using": "docker", "image": f"docker://{IMAGE}", "args": ["scan"]}
    assert _git("diff", "--name-only", main, release, cwd=remote).split() == [
        "action.yml",
        "scan/action.yml",
    ]
    assert _git("rev-parse", "HEAD", cwd=checkout) == main  # the checkout is back on main's commit
    assert _git("rev-parse", "main", cwd=checkout) == main  # and its branch never moved


def test_a_release_is_immutable_and_the_major_tag_moves(checkout: Path, tmp_path: Path) -> None:
    origin = str(tmp_path / "origin.git")
    first = _run("scripts/release-tag.sh", "publish", "1.2.0", IMAGE, origin, cwd=checkout)
    assert first.returncode == 0, first.stderr

    for mode in (("check", "1.2.0", origin), ("publish", "1.2.0", IMAGE, origin)):
        again = _run("scripts/release-tag.sh", *mode, cwd=checkout)
        assert again.returncode == 1
        assert "tag v1.2.0 already exists" in again.stderr

    newer = IMAGE.replace("ab" * 32, "cd" * 32)
    second = _run("scripts/release-tag.sh", "publish", "1.3.0", newer, origin, cwd=checkout)
    assert second.returncode == 0, second.stderr
    remote = tmp_path / "origin.git"
    assert _git("rev-parse", "v1^{commit}", cwd=remote) == _git(
        "rev-parse", "v1.3.0^{commit}", cwd=remote
    )
    assert yaml.safe_load(_git("show", "v1.2.0:action.yml", cwd=remote))["runs"]["image"] == (
        f"docker://{IMAGE}"
    )


@pytest.mark.parametrize("version", ["1.2", "v1.2.0", "1.2.0-rc1", "1.2.0; rm -rf /"])
def test_a_version_that_is_not_x_y_z_is_refused(checkout: Path, version: str) -> None:
    done = _run("scripts/release-tag.sh", "check", version, "origin", cwd=checkout)
    assert done.returncode == 2
    assert "version must be X.Y.Z" in done.stderr


def test_a_dirty_work_tree_is_not_released(checkout: Path, tmp_path: Path) -> None:
    (checkout / "action.yml").write_text((checkout / "action.yml").read_text() + "# edit\n")
    origin = str(tmp_path / "origin.git")
    done = _run("scripts/release-tag.sh", "publish", "1.2.0", IMAGE, origin, cwd=checkout)
    assert done.returncode == 1
    assert "work tree has changes" in done.stderr
    assert _run("git", "ls-remote", "--tags", origin, cwd=checkout).stdout == ""


def test_a_remote_that_cannot_be_read_is_not_taken_for_a_free_tag(
    checkout: Path, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-origin.git")
    done = _run("scripts/release-tag.sh", "check", "1.2.0", missing, cwd=checkout)
    assert done.returncode == 1
    assert "cannot list the tags" in done.stderr
    assert "is free" not in done.stdout


def test_a_token_reaches_git_through_the_environment_masked(checkout: Path, tmp_path: Path) -> None:
    token = "ghs_" + "t0ken" * 8
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GH_TOKEN": token,
        "GITHUB_SERVER_URL": "https://github.example",
        "GIT_TRACE": "1",  # git prints each command line it runs
    }
    origin = str(tmp_path / "origin.git")
    done = subprocess.run(
        ["scripts/release-tag.sh", "check", "1.2.0", origin],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    auth = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    assert done.stdout.startswith(f"::add-mask::{auth}\n")  # masked before any git call
    assert token not in done.stdout + done.stderr  # not in any command line git ran
