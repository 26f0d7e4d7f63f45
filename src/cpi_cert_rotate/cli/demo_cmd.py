"""`cpi-cert-rotate demo`: a full rotation against a fresh local sandbox, measured.

Starts the sandbox (CF + UAA + CPI with running app instances), mints a new chain and
key under its trusted root, keeps a probe calling the iFlow through the app, rotates,
and prints the report and what the probe saw. Exit 0 only if the rotation succeeded
and, for overlap, not one probe call failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from .. import material
from ..errors import ExitCode, InputError
from ..models import CfAuth, CfTarget, Outcome, RotationRequest, Strategy
from ..rotation import rotate
from .render import render_report

PROBE_RPS = 20


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
    parser.add_argument("--json", action="store_true", help="print report and probe as JSON")


def run(args: argparse.Namespace) -> int:
    """Start the sandbox, rotate under load, print the report and the probe's counts."""
    try:
        from cf_sandbox import Landscape
    except ImportError as error:
        raise InputError(
            "the demo needs the local sandbox (cf_sandbox), which this install does not include",
            code="sandbox-missing",
            fix="Run it from a source checkout: `scripts/demo`.",
        ) from error
    with Landscape(
        instances=args.instances,
        bindings_limit=args.bindings_limit,
        api_version=args.api_version,
    ) as landscape:
        minted = landscape.mint(cn="ntifext-client", days=90)
        request = RotationRequest(
            target=CfTarget(
                api_url=landscape.api_url,
                org=landscape.org,
                space=landscape.space,
                app=landscape.app,
                service_instance=landscape.service_instance,
            ),
            auth=CfAuth(
                username=landscape.username,
                password=landscape.password,
                origin=landscape.origin,
                ca_pem=landscape.ca_pem,
            ),
            chain=material.load_chain(minted.chain_pem),
            key=material.load_key(minted.key_pem),
            strategy=Strategy(args.strategy),
            verify_path="/http/ping",
            run_id="demo",
        )
        landscape.probe_start(rps=PROBE_RPS)
        cancel = threading.Event()
        try:
            report = rotate(request, cancel=cancel)
        finally:
            landscape.probe_stop()
        probe: dict[str, Any] = landscape.probe()
    ok = report.outcome is Outcome.ROTATED and (
        report.strategy is not Strategy.OVERLAP or probe["failures"] == 0
    )
    if args.json:
        summary = {"report": report.to_json(), "probe": _probe_counts(probe), "ok": ok}
        json.dump(summary, sys.stdout, indent=2)
        print()
    else:
        print(render_report(report))
        counts = _probe_counts(probe)
        print(
            f"probe: {counts['calls']} calls through the app at {PROBE_RPS}/s, "
            f"{counts['failures']} failed, longest outage {counts['longest_outage_s']:.2f}s"
        )
        print("demo: OK" if ok else "demo: FAILED")
    if ok:
        return int(ExitCode.OK)
    return int(report.exit_code) or int(ExitCode.FAILED)


def _probe_counts(probe: dict[str, Any]) -> dict[str, Any]:
    return {k: probe[k] for k in ("calls", "failures", "longest_outage_s")}
