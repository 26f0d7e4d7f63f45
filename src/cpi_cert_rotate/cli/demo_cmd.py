"""`cpi-cert-rotate demo`: a full rotation against a fresh local sandbox, measured.

Starts the sandbox (CF + UAA + CPI with running app instances), mints a new chain and
key under its trusted root, keeps a probe calling the iFlow through the app, and runs
the *GitHub Action* on it exactly as a runner would (`python -m cpi_cert_rotate.action`
with `INPUT_*` variables and `GITHUB_OUTPUT`/`GITHUB_STEP_SUMMARY` files). It prints the
workflow log as the runner would show it (masks applied), the job summary, the outputs
and what the probe saw. Exit 0 only if the rotation succeeded and, for overlap, not one
probe call failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ExitCode, InputError
from ..models import Strategy
from .runner_log import parse_outputs, render_runner_log

PROBE_RPS = 20
ACTION_TIMEOUT_S = 600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `demo`."""
    parser.add_argument(
        "--strategy", choices=[s.value for s in Strategy], default="auto", help="default: auto"
    )
    parser.add_argument("--instances", type=int, default=3, help="app instances (default 3)")
    parser.add_argument(
        "--bindings-limit",
        type=int,
        default=5,
        help="operator limit of bindings per app and instance (1 forces swap; default 5)",
    )
    parser.add_argument(
        "--api-version", default="3.228.0", help="CC API version to simulate (default 3.228.0)"
    )
    parser.add_argument(
        "--start-s", type=float, default=0.5, help="seconds an app instance takes to start"
    )
    parser.add_argument("--json", action="store_true", help="print outputs and probe as JSON")


def run(args: argparse.Namespace) -> int:
    """Start the sandbox, run the Action under load, print what a workflow would show."""
    try:
        from cf_sandbox import Landscape
    except ImportError as error:
        raise InputError(
            "the demo needs the local sandbox (cf_sandbox), which this install does not include",
            code="sandbox-missing",
            fix="Run it from a source checkout: `scripts/demo`.",
        ) from error
    with (
        Landscape(
            instances=args.instances,
            bindings_limit=args.bindings_limit,
            api_version=args.api_version,
            start_s=args.start_s,
            pinning=Strategy(args.strategy) is not Strategy.IN_PLACE,
        ) as landscape,
        tempfile.TemporaryDirectory(prefix="cpi-demo-runner-") as runner_dir,
    ):
        minted = landscape.mint(cn="ntifext-client", days=90)
        inputs = {
            "cf-api": landscape.api_url,
            "cf-username": landscape.username,
            "cf-password": landscape.password,
            "cf-origin": landscape.origin,
            "cf-ca-cert": landscape.ca_pem,
            "cf-org": landscape.org,
            "cf-space": landscape.space,
            "app": landscape.app,
            "service-instance": landscape.service_instance,
            "cert-chain": minted.chain_pem,
            "private-key": minted.key_pem,
            "strategy": args.strategy,
            "verify-path": "/http/ping",
        }
        landscape.probe_start(rps=PROBE_RPS)
        try:
            code, log, outputs, summary = _run_action(inputs, Path(runner_dir))
        finally:
            landscape.probe_stop()
        probe = {k: landscape.probe()[k] for k in ("calls", "failures", "longest_outage_s")}
    ok = (
        code == 0
        and outputs.get("rotated") == "true"
        and (outputs.get("strategy") != Strategy.OVERLAP or probe["failures"] == 0)
    )
    if args.json:
        document = {"exit_code": code, "outputs": outputs, "probe": probe, "ok": ok}
        json.dump(document, sys.stdout, indent=2)
        print()
    else:
        print("== workflow log (as the runner shows it) ==")
        print(log)
        print("\n== job summary ==")
        print(summary.strip())
        print("\n== outputs ==")
        for name, value in outputs.items():
            if name != "leaf-pem":
                print(f"{name}: {value}")
        print(
            f"\nprobe: {probe['calls']} calls through the app at {PROBE_RPS}/s, "
            f"{probe['failures']} failed, longest outage {probe['longest_outage_s']:.2f}s"
        )
        print("demo: OK" if ok else "demo: FAILED")
    return int(ExitCode.OK) if ok else (code or int(ExitCode.FAILED))


def _run_action(inputs: dict[str, str], runner_dir: Path) -> tuple[int, str, dict[str, str], str]:
    """Run the Action in a child process as the runner does; return code, log, outputs, summary.

    Inputs travel as environment variables (`INPUT_CF-API`, hyphens kept), never on the
    command line; the output and summary files hold no secret (the Action writes none).
    """
    output_file = runner_dir / "set_output"
    summary_file = runner_dir / "step_summary"
    output_file.touch()
    summary_file.touch()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INPUT_")},
        **{f"INPUT_{name.upper()}": value for name, value in inputs.items()},
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(output_file),
        "GITHUB_STEP_SUMMARY": str(summary_file),
        "PYTHONUNBUFFERED": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "cpi_cert_rotate.action"],
        env=env,
        capture_output=True,
        text=True,
        timeout=ACTION_TIMEOUT_S,
        check=False,
    )
    log = render_runner_log(done.stdout)
    if done.stderr.strip():
        log += "\n" + render_runner_log(done.stderr)
    outputs: dict[str, Any] = parse_outputs(output_file.read_text())
    return done.returncode, log, outputs, summary_file.read_text()
