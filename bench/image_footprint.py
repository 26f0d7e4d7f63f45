"""Compare the Action's image with an earlier revision's: size, pull size, start time.

Both Dockerfiles are built with podman on the same debootstrapped, slimmed bookworm base
(tests/action/podman_kit.py), pushed to a registry on loopback (tests/action/
registry_kit.py) and started --runs times with an empty input (the run stops at input
checking, exit 2, after every import the Action does). Printed per image:

- unpacked: what the Dockerfile adds on the base, as podman reports it;
- pull: the compressed layers the Dockerfile adds, as the registry stores them (what a
  runner downloads on top of a cached base);
- first line: container start (podman's StartedAt) to the first log line, median;
- exit: container start to exit, median;
and the ratio of each to the earlier revision. The starts alternate between the images.

    sudo python bench/image_footprint.py [--against b828f6f] [--runs 7]

Needs root, podman, runc, debootstrap and docker-registry (as .ci/run installs them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "action"), str(ROOT / "tests")]

from podman_kit import CACHE, Podman  # noqa: E402
from registry_kit import Registry  # noqa: E402

# The commit before the image was slimmed (PyGithub in the image, one stage, full
# standard-library byte code, ca-certificates).
DEFAULT_AGAINST = "b828f6f"


@dataclass(frozen=True)
class Footprint:
    name: str
    unpacked_mb: float
    pull_mb: float
    first_line_s: float
    exit_s: float


def _context(revision: str, into: Path) -> Path:
    """The build context of `revision` (git archive), or the work tree for 'worktree'."""
    if revision == "worktree":
        return ROOT
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _started_to(podman: Podman, name: str) -> tuple[float, float]:
    """(first log line, exit), seconds after the container started."""
    state = podman(
        "inspect", "--format", "{{.State.StartedAt.UnixNano}} {{.State.FinishedAt.UnixNano}}", name
    ).stdout.split()
    started, finished = int(state[0]) / 1e9, int(state[1]) / 1e9
    first = podman("logs", "--timestamps", name).stdout.splitlines()[0].split()[0]
    seconds, _, fraction = first.rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(seconds + "+00:00").timestamp() + float("0." + fraction)
    return stamp - started, finished - started


def build_and_push(
    podman: Podman, registry: Registry, base: str, name: str, context: Path
) -> tuple[str, float, float]:
    """Build `context` on `base`, push it; (tag, unpacked MB added, pull MB added)."""
    tag = f"localhost/cpi-cert-rotate-bench:{name}"
    podman("build", *podman.build_flags(base), "--tag", tag, str(context), timeout=1800)
    unpacked = podman.size_mb(tag) - podman.size_mb(base)
    remote = f"{registry.host}/bench/{name}"
    digest_file = podman.workdir / f"{name}.digest"
    podman("push", "--quiet", "--cert-dir", str(registry.cert_dir), "--digestfile",
           str(digest_file), tag, f"docker://{remote}:bench")  # fmt: skip
    manifest = registry.manifest(f"bench/{name}", digest_file.read_text().strip())
    base_layers = len(json.loads(podman("image", "inspect", base).stdout)[0]["RootFS"]["Layers"])
    pull = sum(layer["size"] for layer in manifest["layers"][base_layers:]) / 1e6
    return tag, unpacked, pull


def start_once(podman: Podman, tag: str, name: str) -> tuple[float, float]:
    """One container start with an empty input: (first log line, exit) after start."""
    container = f"cpi-cert-rotate-bench-{name}"
    podman("rm", "--force", container, check=False)
    podman("run", "--name", container, "-e", "INPUT_CF-API=x", tag, check=False)
    try:
        return _started_to(podman, container)
    finally:
        podman("rm", "--force", container, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", default=DEFAULT_AGAINST, help="git revision to compare")
    parser.add_argument("--runs", type=int, default=7, help="container starts per image")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as scratch:
        work = Path(scratch)
        podman = Podman(work / "podman")
        base = podman.base_image()
        contexts = {"before": _context(args.against, work / "ctx"), "after": ROOT}
        with Registry(work / "registry", work / "storage") as registry:
            built = {n: build_and_push(podman, registry, base, n, c) for n, c in contexts.items()}
        # interleaved, so that a change in the machine's load hits both images alike
        starts: dict[str, list[tuple[float, float]]] = {name: [] for name in built}
        for _ in range(args.runs):
            for name, (tag, _unpacked, _pull) in built.items():
                starts[name].append(start_once(podman, tag, name))
    before, after = (
        Footprint(
            name,
            built[name][1],
            built[name][2],
            statistics.median(first for first, _ in starts[name]),
            statistics.median(end for _, end in starts[name]),
        )
        for name in ("before", "after")
    )
    print(f"base: {base} (cache {CACHE}); before = {args.against}, after = work tree")
    print(f"{'image':8} {'unpacked MB':>12} {'pull MB':>8} {'first line s':>13} {'exit s':>7}")
    for row in (before, after):
        print(
            f"{row.name:8} {row.unpacked_mb:12.1f} {row.pull_mb:8.2f}"
            f" {row.first_line_s:13.3f} {row.exit_s:7.3f}"
        )
    print(
        f"{'ratio':8} {after.unpacked_mb / before.unpacked_mb:12.2f}"
        f" {after.pull_mb / before.pull_mb:8.2f}"
        f" {after.first_line_s / before.first_line_s:13.2f} {after.exit_s / before.exit_s:7.2f}"
    )


if __name__ == "__main__":
    main()
