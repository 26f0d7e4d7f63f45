"""The two documented ways to have `cpi-cert-rotate` on PATH (docs/cli.md) work as written.

Inside a checkout: the virtualenv `scripts/test` creates, activated. Anywhere else:
`pip install "git+<repository>@<tag>"` (what `pipx install` runs too); here the
repository is a clone of this checkout with a tag, the wheel is built from the
`git+file://` URL without a network, and installed into an empty virtualenv whose
`bin` is the only thing on PATH besides the system's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from cpi_cert_rotate import __version__

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def _run(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the tests do not run in a virtualenv")
def test_the_activated_virtualenv_puts_the_command_on_path() -> None:
    script = (
        'source "$VENV/bin/activate" && command -v cpi-cert-rotate && cpi-cert-rotate --version'
    )
    out = _run("bash", "-c", script, env={"PATH": SYSTEM_PATH, "VENV": sys.prefix, "HOME": "/"})
    where, version = out.splitlines()
    assert where == f"{sys.prefix}/bin/cpi-cert-rotate"
    assert version == f"cpi-cert-rotate {__version__}"


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_a_tagged_git_url_installs_a_command_that_runs_from_path(tmp_path: Path) -> None:
    git = shutil.which("git")
    assert git is not None
    clone = tmp_path / "cpi-cert-rotate"
    _run(git, "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone))
    tag = "v0.0.0-install-test"
    _run(git, "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t", "tag", tag)
    dist = tmp_path / "dist"
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--no-index", "-w", str(dist), f"git+file://{clone}@{tag}",
    )  # fmt: skip
    (wheel,) = dist.glob("cpi_cert_rotate-*.whl")
    fresh = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(fresh))
    _run(
        sys.executable, "-m", "pip", "--python", str(fresh / "bin" / "python"), "install",
        "--quiet", "--no-deps", "--no-index", str(wheel),
    )  # fmt: skip
    # The runtime dependencies come from this test's environment (no network here); the
    # package itself only from the wheel: the checkout's src/ is nowhere on the path.
    site = _run(
        str(fresh / "bin" / "python"), "-c", "import site; print(site.getsitepackages()[0])"
    )
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site.strip(), "test-deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    env = {"PATH": f"{fresh}/bin:{SYSTEM_PATH}", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    out = _run("cpi-cert-rotate", "--version", env=env, cwd=tmp_path)
    assert out.strip() == f"cpi-cert-rotate {__version__}"
    help_text = _run("cpi-cert-rotate", "rotate", "--help", env=env, cwd=tmp_path)
    assert "--cf-password-env" in help_text
    where = _run(
        "python", "-c",
        "import cpi_cert_rotate.action.step, cpi_cert_rotate.request.build as b; print(b.__file__)",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert where.startswith(str(fresh)), where
