"""`cpi-cert-rotate sandbox`: run the local CF + UAA + CPI landscape until interrupted.

`cf_sandbox` is not shipped in the container image, so it is imported only here, inside
`run`; without it the command says so instead of failing on import.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from pathlib import Path

from ..errors import InputError
from ..signals import stop_requested_on_signals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's options."""
    parser.add_argument(
        "--state-file",
        type=Path,
        help="write the connection details here "
        "(JSON, mode 0600; holds the sandbox password, no private key)",
    )
    parser.add_argument(
        "--api-version",
        default="3.228.0",
        help="CC v3 version to report (default %(default)s; multiple bindings need >= 3.205.0)",
    )
    parser.add_argument(
        "--bindings-limit",
        type=int,
        default=5,
        help="operator limit of bindings per app and service instance (default %(default)s)",
    )
    parser.add_argument(
        "--instances", type=int, default=3, help="instances of the seeded app (default %(default)s)"
    )
    parser.add_argument(
        "--pinning",
        choices=("on", "off"),
        default="on",
        help="CPI certificate pinning (default %(default)s)",
    )
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=600.0,
        metavar="S",
        help="access token lifetime in seconds (default %(default)s)",
    )
    parser.add_argument(
        "--start-s",
        type=float,
        default=0.5,
        metavar="S",
        help="seconds an instance takes to start (default %(default)s)",
    )
    parser.add_argument(
        "--staging-s",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds a build takes to stage (default %(default)s)",
    )
    parser.add_argument(
        "--job-steps-s",
        type=float,
        default=0.5,
        metavar="S",
        help="seconds per async job stage (default %(default)s)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        metavar="N",
        help="CC calls per user and minute before 429 (default: no limit)",
    )
    parser.add_argument(
        "--apps",
        type=int,
        default=0,
        metavar="N",
        help="also seed a fleet of N apps over several orgs and spaces for `scan` "
        "(some due, some not, some without it-rt; default none)",
    )
    parser.add_argument(
        "--oidc",
        action="store_true",
        help="also run GitHub's OIDC issuer and an SAP Cloud Identity Services tenant, and "
        "let UAA trust them (the passwordless login, docs/passwordless.md)",
    )
    parser.add_argument("--cc-port", type=int, default=0, help="CC port (default: random)")
    parser.add_argument("--uaa-port", type=int, default=0, help="UAA port (default: random)")
    parser.add_argument("--cpi-port", type=int, default=0, help="CPI port (default: random)")


def run(args: argparse.Namespace) -> int:
    """Start the landscape, print how to reach it, wait for Ctrl-C or SIGTERM."""
    try:
        from cf_sandbox import Landscape
    except ImportError as error:
        raise InputError(
            "the sandbox is not part of this install (cf_sandbox is missing)",
            code="sandbox-missing",
            fix="Install cpi-cert-rotate from a source checkout (`pip install -e .`); the "
            "container image does not ship the sandbox.",
        ) from error
    if args.instances < 1 or args.bindings_limit < 1:
        raise InputError("--instances and --bindings-limit must be at least 1")
    if args.apps < 0:
        raise InputError("--apps must be 0 or more")
    try:
        landscape = Landscape(
            api_version=args.api_version,
            bindings_limit=args.bindings_limit,
            instances=args.instances,
            pinning=args.pinning == "on",
            token_ttl_s=args.token_ttl,
            start_s=args.start_s,
            staging_s=args.staging_s,
            job_steps_s=args.job_steps_s,
            rate_limit=args.rate_limit,
            cc_port=args.cc_port,
            uaa_port=args.uaa_port,
            cpi_port=args.cpi_port,
            fleet_apps=args.apps,
            oidc=args.oidc,
        )
    except (ValueError, OSError) as error:
        raise InputError(f"cannot start the sandbox: {error}") from error
    done = threading.Event()
    with landscape, stop_requested_on_signals(done):
        if args.state_file:
            landscape.write_state_file(args.state_file)
        print(
            f"sandbox running: api {landscape.api_url}  uaa {landscape.uaa_url}  "
            f"cpi {landscape.cpi_url}",
            flush=True,
        )
        print(
            f"user {landscape.username} (origin {landscape.origin}); org {landscape.org}, "
            f"space {landscape.space}, app {landscape.app}, service instance "
            f"{landscape.service_instance}",
            flush=True,
        )
        if landscape.fleet:
            orgs = sorted({a.org for a in landscape.fleet})
            print(f"fleet: {len(landscape.fleet)} apps in orgs {', '.join(orgs)}", flush=True)
        if args.state_file:
            print(f"state file: {args.state_file}", flush=True)
        else:
            print("password and CA: pass --state-file PATH to get them", file=sys.stderr)
        try:
            while not done.wait(0.5):
                pass
        finally:
            if args.state_file:
                with contextlib.suppress(OSError):
                    args.state_file.unlink()
    print("sandbox stopped", flush=True)
    return 0
