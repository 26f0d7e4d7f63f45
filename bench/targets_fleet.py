"""One run per app against one targets run, on a sandbox fleet, in one run.

A fresh sandbox fleet (`fleet_apps=N`) with every Cloud Controller and UAA call delayed
by `--latency-ms`; the apps the scan finds due (bound to one instance) are the targets,
each rotated to a freshly minted certificate of its own (chain and key given). Measured
per approach: UAA token grants, Cloud Controller calls, wall time, and the ratio of each
to one run per app, one at a time:

- `per app`: `rotation.rotate` once per app, each run with its own client and login,
  as a matrix job per app does (minus the job's container start), one at a time, and
  `per app, 4 at a time` (a matrix's `max-parallel: 4`);
- `targets, parallel P`: `fleet.batch.rotate_batch` over the same apps, one login shared,
  P rotations at a time (1 and 4 by default).

Every approach must rotate every target (outcome `rotated`, the app's env var holding the
new leaf), or the benchmark fails.

    python bench/targets_fleet.py [--apps 20] [--latency-ms 20] [--parallel 1 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cf_sandbox import Landscape
from cf_sandbox.pki import Minted, load_pem_certs, sha256_hex
from cpi_cert_rotate.fleet import ScanRequest, scan
from cpi_cert_rotate.fleet.batch import rotate_batch
from cpi_cert_rotate.models import CfAuth, CfTarget, Outcome, Report, RotationRequest
from cpi_cert_rotate.request.build import Settings
from cpi_cert_rotate.request.targets import Batch, TargetRun
from cpi_cert_rotate.rotation import rotate

Target = tuple[str, str, str, str]
"""(org, space, app, instance)"""


@dataclass(frozen=True)
class Sample:
    """One approach on the fleet."""

    approach: str
    targets: int
    logins: int
    calls: int
    seconds: float


def _auth(ls: Landscape) -> CfAuth:
    return CfAuth(username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem)


def _due(ls: Landscape) -> list[Target]:
    report = scan(ScanRequest(ls.api_url, _auth(ls), timeout_s=3600))
    return [(e["org"], e["space"], e["app"], e["instance"]) for e in report.matrix]


def _requests(ls: Landscape, targets: list[Target]) -> tuple[list[RotationRequest], list[Minted]]:
    """A request per target with a new certificate of its own (CPI takes one only once)."""
    from cryptography.hazmat.primitives import serialization

    requests, minted = [], []
    for org, space, app, instance in targets:
        new = ls.mint(cn=f"{app}-client", days=90, key="ec-p256")
        minted.append(new)
        requests.append(
            RotationRequest(
                target=CfTarget(ls.api_url, org, space, app, instance),
                auth=_auth(ls),
                chain=tuple(load_pem_certs(new.chain_pem)),
                key=serialization.load_pem_private_key(new.key_pem.encode(), None),
                verify_path="/http/ping",
                trusted_roots=tuple(load_pem_certs(ls.trusted_root_pem)),  # not on SAP's list
            )
        )
    return requests, minted


def _per_app(parallel: int) -> Callable[[list[RotationRequest]], list[Report]]:
    def run(requests: list[RotationRequest]) -> list[Report]:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            return list(pool.map(rotate, requests))

    return run


def _targets(parallel: int) -> Callable[[list[RotationRequest]], list[Report]]:
    def run(requests: list[RotationRequest]) -> list[Report]:
        runs = tuple(
            TargetRun(f"{r.target.org}/{r.target.space}/{r.target.app}", i + 1, Settings(r))
            for i, r in enumerate(requests)
        )
        return [result.report for result in rotate_batch(Batch("bench", runs, parallel))]

    return run


def measure(
    ls: Landscape, targets: list[Target], approach: str, run: Callable[..., list[Report]]
) -> Sample:
    requests, minted = _requests(ls, targets)
    ls.clear_calls()
    started = time.monotonic()
    reports = run(requests)
    seconds = time.monotonic() - started
    calls = ls.calls()
    apps = {a["name"]: a for a in ls.state()["apps"]}
    for (_, _, app, _), report, new in zip(targets, reports, minted, strict=True):
        leaf = load_pem_certs(apps[app]["env"]["CLI_CHAIN"])[0]
        if report.outcome is not Outcome.ROTATED or sha256_hex(leaf) != new.leaf_sha256:
            raise SystemExit(f"{approach}: {app} ended {report.outcome}: {report.error}")
    logins = sum(1 for c in calls if c["path"].endswith("/oauth/token"))
    cc = sum(1 for c in calls if c["server"] == "cc")
    return Sample(approach, len(targets), logins, cc, seconds)


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args(argv)
    approaches: list[tuple[str, Callable[..., list[Report]]]] = [
        ("per app", _per_app(1)),
        ("per app, 4 at a time", _per_app(4)),
        *((f"targets, parallel {p}", _targets(p)) for p in args.parallel),
    ]
    with Landscape(instances=1, fleet_apps=args.apps) as ls:
        targets = _due(ls)
        if args.latency_ms > 0:
            delay = args.latency_ms / 1000
            ls.add_fault({"server": "cc", "path": "^/", "delay_s": delay})
            ls.add_fault({"server": "uaa", "path": "^/", "delay_s": delay})
        samples = [measure(ls, targets, name, run) for name, run in approaches]
    base = samples[0]
    header = (
        f"{'approach':<22} {'targets':>7} {'logins':>7} {'CC calls':>9} {'wall s':>8} "
        f"{'calls':>8} {'time':>8}"
    )
    print(
        f"fleet of {args.apps} apps, {len(targets)} due; CC and UAA latency "
        f"{args.latency_ms:g} ms per call; ratios against `per app`"
    )
    print(header)
    print("-" * len(header))
    for s in samples:
        print(
            f"{s.approach:<22} {s.targets:>7} {s.logins:>7} {s.calls:>9} {s.seconds:>8.2f} "
            f"{_ratio(s.calls, base.calls):>8} {_ratio(s.seconds, base.seconds):>8}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
