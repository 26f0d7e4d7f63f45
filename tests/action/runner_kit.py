"""Emulate the GitHub runner around the Action: folders, environment, files, log audit.

The runner mounts `/github/workspace`, `/github/home`, `/github/workflow` and
`/github/file_commands` into the container, passes every input as `INPUT_<NAME>` (hyphens
kept, the value only in the environment), and reads outputs and the job summary from
files named in `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY`. `RunnerDirs` builds that on
the host; `run_entrypoint` runs `entrypoint.py` in a subprocess with it (the fast test),
`podman_kit` runs the image with the same folders mounted (the real one).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MOUNTS = ("workspace", "home", "workflow", "file_commands")
_COMMAND = re.compile(r"^::([a-z-]+)(?: [^:]*)?::(.*)$")


def _unescape(data: str) -> str:
    return data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


@dataclass
class RunnerDirs:
    """The host side of the runner's mounts, and the environment that points into them."""

    base: Path
    prefix: str = ""
    """Where the folders appear to the action: '' (host paths) or '/github' (container)."""
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def __post_init__(self) -> None:
        for name in MOUNTS:
            (self.base / name).mkdir(parents=True, exist_ok=True)
        (self.base / "workflow" / "event.json").write_text(json.dumps({"schedule": "17 3 * * 1"}))
        for name in self._file_commands():
            (self.base / "file_commands" / name).touch()

    def _file_commands(self) -> list[str]:
        kinds = ("set_output", "step_summary", "set_env", "add_path", "save_state")
        return [f"{kind}_{self.suffix}" for kind in kinds]

    def path(self, mount: str, *parts: str) -> str:
        """A path as the action sees it."""
        root = f"{self.prefix}/{mount}" if self.prefix else str(self.base / mount)
        return "/".join([root, *parts])

    def env(self) -> dict[str, str]:
        """The GITHUB_* variables a runner sets for a container step."""
        return {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "schedule",
            "GITHUB_EVENT_PATH": self.path("workflow", "event.json"),
            "GITHUB_REPOSITORY": "acme/cpi-ops",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_ACTOR": "scheduler",
            "GITHUB_WORKSPACE": self.path("workspace"),
            "HOME": self.path("home"),
            "GITHUB_OUTPUT": self.path("file_commands", f"set_output_{self.suffix}"),
            "GITHUB_STEP_SUMMARY": self.path("file_commands", f"step_summary_{self.suffix}"),
            "GITHUB_ENV": self.path("file_commands", f"set_env_{self.suffix}"),
            "GITHUB_PATH": self.path("file_commands", f"add_path_{self.suffix}"),
            "GITHUB_STATE": self.path("file_commands", f"save_state_{self.suffix}"),
        }

    @property
    def output_text(self) -> str:
        return (self.base / "file_commands" / f"set_output_{self.suffix}").read_text()

    @property
    def summary(self) -> str:
        return (self.base / "file_commands" / f"step_summary_{self.suffix}").read_text()

    def files(self) -> dict[str, bytes]:
        """Every file under every mount after the run (the leak check reads them all)."""
        return {
            str(p.relative_to(self.base)): p.read_bytes()
            for p in sorted(self.base.rglob("*"))
            if p.is_file()
        }


@dataclass(frozen=True)
class ActionRun:
    """What one run left: exit code, log streams, outputs and summary."""

    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    output_text: str

    def commands(self, name: str) -> list[str]:
        """Messages of every `::name::` command the runner would act on, unescaped."""
        return [message for kind, message in effective_commands(self.stdout) if kind == name]


def _walk(stdout: str) -> list[tuple[str, tuple[str, str] | None]]:
    """Each stdout line with the command a runner would act on (None for text).

    `::stop-commands::TOKEN` makes every line up to `::TOKEN::` plain text.
    """
    walked: list[tuple[str, tuple[str, str] | None]] = []
    stopped_by: str | None = None
    for line in stdout.splitlines():
        match = _COMMAND.match(line.strip())
        if stopped_by is not None:
            if line.strip() == f"::{stopped_by}::":
                stopped_by = None
            walked.append((line, None))
            continue
        if match and match.group(1) == "stop-commands":
            stopped_by = match.group(2)
            walked.append((line, None))
            continue
        command = (match.group(1), _unescape(match.group(2))) if match else None
        walked.append((line, command))
    return walked


def effective_commands(stdout: str) -> list[tuple[str, str]]:
    """The workflow commands a runner would act on, in order."""
    return [command for _, command in _walk(stdout) if command is not None]


def parse_outputs(text: str) -> dict[str, str]:
    """Parse a GITHUB_OUTPUT file as the runner does (`name<<DELIM` blocks, `name=value`)."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            outputs[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
            i += 1
        else:
            i += 1
    return outputs


def input_env(inputs: Mapping[str, str]) -> dict[str, str]:
    """Inputs as the runner names them: `cf-api` -> `INPUT_CF-API`."""
    return {"INPUT_" + name.replace(" ", "_").upper(): value for name, value in inputs.items()}


TARGET_INPUTS: dict[str, str] = {
    "cf-api": "https://api.cf.example",
    "cf-username": "tech-user",
    "cf-password": "s3cret-pw",
    "cf-org": "acme",
    "cf-space": "prod",
    "app": "orders",
    "service-instance": "cpi-rt",
}
"""A complete CF target and login that is never reached (for input-checking tests)."""


def landscape_inputs(ls: Any, minted: Any | None, **changes: str) -> dict[str, str]:
    """Every input of a rotation against a sandbox landscape, as a workflow would pass it.

    `minted` gives the chain and key (None: no given material, e.g. for an issuer).
    `changes` use `_` for `-` (`dry_run="true"`); the runner also passes the defaults
    of action.yml, so they are here too.
    """
    inputs = {
        "cf-api": ls.api_url,
        "cf-username": ls.username,
        "cf-password": ls.password,
        "cf-origin": ls.origin or "",
        "cf-ca-cert": ls.ca_pem,
        "cf-org": ls.org,
        "cf-space": ls.space,
        "app": ls.app,
        "service-instance": ls.service_instance,
        "cert-chain": minted.chain_pem if minted else "",
        "private-key": minted.key_pem if minted else "",
        # The sandbox's root is not on SAP's list: trust it as a user with a private CA would.
        "trusted-roots": ls.trusted_root_pem,
        "verify-path": "/http/ping",
        "timeout": "120",
        "strategy": "auto",
        "chain-env-var": "CLI_CHAIN",
        "key-env-var": "CLI_KEY",
        "force": "false",
        "dry-run": "false",
        "keep-root": "false",
    }
    inputs.update({k.replace("_", "-"): v for k, v in changes.items()})
    return inputs


def base_env() -> dict[str, str]:
    """A runner-like process environment: no REQUESTS_CA_BUNDLE, no proxy, no venv hints."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


_THIS_CHECKOUT = (
    "import runpy, sys; sys.argv = sys.argv[1:]; "
    f"sys.path.insert(0, {str(ROOT / 'src')!r}); "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)
"""Run `entrypoint.py` with this checkout's `src` first on the path: `-E` ignores
PYTHONPATH, and the venv's editable install may point at another checkout (a git
worktree's tests would otherwise run the main checkout's code). Without `-E`,
`checkout_kit.checkout_env` does the same through PYTHONPATH."""


def entrypoint_command(python: Sequence[str], *args: str) -> list[str]:
    """`entrypoint.py` with `args`, run by the `python` command line (`-E` and all) with
    this checkout's `src` first on the path."""
    return [*python, "-c", _THIS_CHECKOUT, str(ROOT / "entrypoint.py"), *args]


def run_entrypoint(
    inputs: Mapping[str, str],
    dirs: RunnerDirs,
    *,
    timeout: float = 240,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
) -> ActionRun:
    """Run `entrypoint.py` in a subprocess exactly as the container would, minus the image.

    `env` adds variables the runner sets in some jobs (`ACTIONS_ID_TOKEN_REQUEST_*`);
    `args` are the action's `runs.args` (the scan action's `scan`).
    """
    env = {**base_env(), **dirs.env(), **(env or {}), **input_env(inputs)}
    python = [sys.executable, "-B", "-E", "-s", "-u", "-X", "utf8"]
    done = subprocess.run(
        entrypoint_command(python, *args),
        cwd=dirs.base / "workspace",
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return finish(done.returncode, done.stdout, done.stderr, dirs)


def finish(code: int, stdout: str, stderr: str, dirs: RunnerDirs) -> ActionRun:
    text = dirs.output_text
    return ActionRun(code, stdout, stderr, parse_outputs(text), dirs.summary, text)


def audit(run: ActionRun, secrets: Iterable[str], dirs: RunnerDirs | None = None) -> None:
    """No secret line may appear in any stream or file, except inside `::add-mask::`.

    `secrets` are the lines to look for (PEM body lines, base64 DER, passwords). Every
    `::add-mask::` command must come before any line that uses its value. (A secret the
    engine learns late, the app's previous key read from Cloud Foundry, is masked the
    moment it is read, so masks may follow other lines, never a line that holds them.)
    """
    walked = _walk(run.stdout)
    is_mask = [command is not None and command[0] == "add-mask" for _, command in walked]
    for i, (_, command) in enumerate(walked):
        if command is not None and command[0] == "add-mask":
            used = [
                line
                for (line, _), mask in zip(walked[:i], is_mask[:i], strict=True)
                if not mask and command[1] in line
            ]
            assert not used, f"a secret was printed before its mask: {used[0][:40]!r}..."
    clear_stdout = "\n".join(ln for (ln, _), mask in zip(walked, is_mask, strict=True) if not mask)
    places = {
        "stdout": clear_stdout,
        "stderr": run.stderr,
        "outputs": run.output_text,
        "summary": run.summary,
    }
    if dirs is not None:
        for name, data in dirs.files().items():
            places[name] = data.decode("utf-8", errors="replace")
    for secret in {s for s in secrets if s}:
        for where, text in places.items():
            assert secret not in text, f"secret line ({len(secret)} chars) found in {where}"
