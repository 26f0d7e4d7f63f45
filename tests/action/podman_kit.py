"""Build the Action's Dockerfile and run the image with podman, as a GitHub runner would.

The recipe is reference/container-and-mtls-feasibility.md section A, the one that works
on this project's machines (no Docker Hub, no CAP_SYS_RESOURCE, hybrid cgroups, a
TLS-intercepting proxy):

- rootful podman with `runc` (crun cannot run on hybrid cgroups) and ulimits podman may
  set here, all in a private `containers.conf` passed through `CONTAINERS_CONF`;
- the base image made with `debootstrap` (bookworm, the mirror apt already uses), made
  "slim" as Docker Hub's debian:bookworm-slim is (`_slimify`), imported as a local
  image and given to the unchanged Dockerfile as `BASE_IMAGE`;
- the host's CA bundle mounted into the build for pip only (the proxy's CA);
- the run: `/github/*` mounts, `-e INPUT_...` by name only (values in the environment of
  `podman run`, never on its command line), `--network host`, a read-only root.

Outside CI the debootstrap base is cached under /var/tmp (it takes ~30 s); CI starts fresh.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import os
import resource
import shutil
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from runner_kit import ROOT, ActionRun, RunnerDirs, base_env, finish, input_env

CACHE = Path("/var/tmp/cpi-cert-rotate-podman")
BASE_IMAGE = "localhost/cpi-cert-rotate-base"
BASE_RECIPE = "slim1"  # the cache tag: bump it when the recipe of the base changes
IMAGE = "localhost/cpi-cert-rotate"
TOOLS = ("podman", "runc", "debootstrap")


def unavailable_reason() -> str | None:
    """Why the container test cannot run here, or None when it can."""
    if not Path("/proc/self").exists():
        return "not Linux"
    if os.geteuid() != 0:
        return "not root (the recipe uses rootful podman and debootstrap)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install podman runc debootstrap)"
    return None


def _hard(limit: int) -> int:
    hard = resource.getrlimit(limit)[1]
    return hard if hard != resource.RLIM_INFINITY else 1 << 20


def _conf(workdir: Path) -> Path:
    """containers.conf with runc and the ulimits podman may set on this machine."""
    nofile = _hard(resource.RLIMIT_NOFILE)
    # podman caps its own hard nproc at 32768 before it starts the runtime
    nproc = min(_hard(resource.RLIMIT_NPROC), 32768)
    conf = workdir / "containers.conf"
    conf.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        'netns = "host"\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
    )
    return conf


@dataclass
class Podman:
    """podman with this machine's configuration; every call logs its time for the report."""

    workdir: Path

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = {**base_env(), "CONTAINERS_CONF": str(_conf(self.workdir))}
        self.timings: dict[str, float] = {}
        self.base = ""

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run(
            ["podman", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=stdin is None,
            input=stdin,
            timeout=timeout,
            check=False,
        )
        self.timings[args[0]] = self.timings.get(args[0], 0.0) + time.monotonic() - started
        if isinstance(done.stdout, bytes):  # binary stdin: decode what came back
            done = subprocess.CompletedProcess(
                done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
            )
        if check and done.returncode != 0:
            raise RuntimeError(f"podman {args[0]} failed ({done.returncode}):\n{done.stderr}")
        return done

    def base_image(self) -> str:
        """A debootstrapped, slimmed bookworm imported as a local image.

        Outside CI it is cached across runs; in CI it is made once per test run (a tag
        with the run's id, shared by the pytest-xdist workers). Several processes may
        ask at once: the image is made under an exclusive lock, from a private rootfs.
        """
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID", _RUN_ID)[:12]
        fresh = os.environ.get("CI") == "true"
        tag = f"{BASE_IMAGE}:{BASE_RECIPE}-ci-{run}" if fresh else f"{BASE_IMAGE}:{BASE_RECIPE}"
        with _locked("base"):
            if self("image", "exists", tag, check=False).returncode != 0:
                self._bootstrap(tag, CACHE)
        self.base = tag
        return tag

    def shared_image(self) -> str:
        """The Dockerfile built on `base_image()`, once per build context and base.

        The container, registry and act tests all run this image; the tag names a
        digest of everything the build reads, so a changed file means a new build.
        """
        base = self.base_image()
        tag = f"{IMAGE}:ctx-{context_digest()[:16]}-{base.rsplit(':', 1)[1]}"
        with _locked("build"):
            if self("image", "exists", tag, check=False).returncode != 0:
                self.build(base, tag)
        return tag

    def _bootstrap(self, tag: str, parent: Path) -> str:
        rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=parent))
        try:
            started = time.monotonic()
            subprocess.run(
                ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), _apt_mirror()],
                capture_output=True,
                check=True,
                timeout=900,
            )
            subprocess.run(["chroot", str(rootfs), "apt-get", "clean"], check=True, timeout=60)
            for lists in (rootfs / "var/lib/apt/lists").glob("*"):
                if lists.is_file():
                    lists.unlink()
            assert (rootfs / "etc/apt/sources.list").exists(), "debootstrap left no sources"
            _slimify(rootfs)
            self.timings["debootstrap"] = time.monotonic() - started
            tar = subprocess.run(
                ["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True, timeout=300
            ).stdout
            self("import", "-", tag, stdin=tar)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
        return tag

    def build_flags(self, base: str) -> list[str]:
        """What `podman build` needs on this machine: the local base, the proxy's CA."""
        host_ca = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
        pip_conf = self.workdir / "pip.conf"
        pip_conf.write_text("[global]\ncert = /run/host-ca.pem\n")
        return [
            "--pull=never",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "-v",
            f"{host_ca}:/run/host-ca.pem:ro",
            "-v",
            f"{pip_conf}:/etc/pip.conf:ro",
        ]

    def build(self, base: str, tag: str | None = None) -> str:
        """`podman build` of the repository's Dockerfile, unchanged, on `base`."""
        tag = tag or f"{IMAGE}:test-{uuid.uuid4().hex[:8]}"
        self("build", *self.build_flags(base), "--tag", tag, str(ROOT), timeout=900)
        return tag

    def size_mb(self, image: str) -> float:
        out = self("image", "inspect", "--format", "{{.Size}}", image).stdout.strip()
        return int(out) / 1e6

    def run_action(
        self,
        image: str,
        inputs: Mapping[str, str],
        dirs: RunnerDirs,
        action_args: Sequence[str] = (),
    ) -> tuple[ActionRun, list[str]]:
        """Run the image as the runner does (`action_args`: the action's `runs.args`);
        returns the run and `podman diff` lines."""
        name = f"cpi-action-{uuid.uuid4().hex[:8]}"
        values = {**dirs.env(), **input_env(inputs)}
        args = ["run", "--name", name, "--read-only", "--read-only-tmpfs=false"]
        args += ["--network", "host", "--workdir", "/github/workspace"]
        for mount in ("workspace", "home", "workflow", "file_commands"):
            args += ["-v", f"{dirs.base / mount}:/github/{mount}"]
        for variable in values:
            args += ["-e", variable]  # by name: the value comes from podman's environment
        try:
            done = self("run", *args[1:], image, *action_args, env=values, check=False, timeout=300)
            diff = self("diff", name).stdout.split("\n")
        finally:
            self("rm", "--force", name, check=False)
        self.last_command_line = ["podman", *args, image, *action_args]
        return finish(done.returncode, done.stdout, done.stderr, dirs), [d for d in diff if d]


# What debuerreotype removes for Docker Hub's "-slim" Debian images, and keeps out of
# every later package install with dpkg path-exclude rules (debuerreotype
# scripts/.slimify-excludes, .slimify-includes and debuerreotype-slimify). Without it,
# this base would carry docs, man pages and locales that the real base does not, and
# every package the Dockerfile installs would add its own: the measured sizes would be
# this machine's, not the published image's.
_SLIM_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/info/*",
    "/usr/share/linda/*",
    "/usr/share/lintian/overrides/*",
    "/usr/share/locale/*",
    "/usr/share/man/*",
    "/usr/share/doc/kde/HTML/*/*",
    "/usr/share/gnome/help/*/*",
    "/usr/share/omf/*/*-*.emf",
)
_SLIM_INCLUDES = (
    "/usr/share/doc/*/copyright",
    "/usr/share/doc/kde/HTML/C/*",
    "/usr/share/gnome/help/*/C/*",
    "/usr/share/locale/all_languages",
    "/usr/share/locale/currency/*",
    "/usr/share/locale/l10n/*",
    "/usr/share/locale/languages",
    "/usr/share/locale/locale.alias",
    "/usr/share/omf/*/*-C.emf",
)


def _slimify(rootfs: Path) -> None:
    """debuerreotype-slimify on a rootfs: the dpkg rules, and the files they exclude."""
    rules = [f"path-exclude {glob}" for glob in _SLIM_EXCLUDES]
    rules += [f"path-include {glob}" for glob in _SLIM_INCLUDES]
    config = rootfs / "etc/dpkg/dpkg.cfg.d/docker"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("# slim, as debuerreotype-slimify writes it\n" + "\n".join(rules) + "\n")
    for top in ("usr/share/doc", "usr/share/info", "usr/share/locale", "usr/share/man"):
        for path in sorted((rootfs / top).rglob("*"), reverse=True):
            inside = "/" + str(path.relative_to(rootfs))
            if path.is_symlink() or path.is_file():
                if not any(fnmatch.fnmatch(inside, glob) for glob in _SLIM_INCLUDES):
                    path.unlink()
            elif (
                path.is_dir()
                and not any(path.iterdir())
                and not fnmatch.fnmatch(inside, "/usr/share/man/man[0-9]")  # kept, as there
            ):
                path.rmdir()


_RUN_ID = uuid.uuid4().hex
BUILD_INPUTS = (
    "Dockerfile",
    ".dockerignore",
    "requirements/runtime.txt",
    "entrypoint.py",
    "scripts/image_modules.py",
    "src/cpi_cert_rotate",
)


def context_digest() -> str:
    """sha256 over every file the image build reads (names and contents)."""
    digest = hashlib.sha256()
    for name in BUILD_INPUTS:
        path = ROOT / name
        files = sorted(path.rglob("*.py*")) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" not in file.parts and file.is_file():
                digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """An exclusive lock shared by every process on this machine."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _apt_mirror() -> str:
    """The Debian mirror apt already uses (no hostname hard-coded), else deb.debian.org."""
    done = subprocess.run(
        [
            "apt-get",
            "indextargets",
            "--format",
            "$(REPO_URI)",
            "Release: bookworm",
            "Created-By: Packages",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    mirrors = sorted(set(done.stdout.split()))
    return mirrors[0] if mirrors else "http://deb.debian.org/debian/"
