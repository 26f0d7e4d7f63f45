"""The fleet scan against a per-app scan, on sandbox fleets of 50 and 500 apps, in one run.

For each fleet size, a fresh sandbox (`fleet_apps=N`: apps over orgs and spaces, some
due, some without it-rt, some with two bindings or two instances, and a rotation's lock
on every app whose number ends in 05), with every Cloud Controller call delayed by
`--latency-ms` (a real CC answers in tens of milliseconds;
the sandbox answers in one). Measured per approach: Cloud Controller + UAA calls, calls
per certificate-bound app, wall time, and the ratio of each to the per-app approach:

- `per app`: what a script around `cf` does, done carefully: list orgs, the spaces of
  each org, the apps of each space (default pages of 50), then per app its bindings,
  per new instance its plan and offering (cached), and per it-rt binding its
  credentials, the app's env vars and its lock (the instance named `lock_name(app)`);
  one call at a time;
- `scan`: `cpi_cert_rotate.fleet.scan` (one binding list with `include`, one space list,
  one list of the spaces' user-provided instances, 5000 a page; then the two per-app
  reads that have no list form), with `--parallel` reads in flight (1 and 4 by default).

Both must find the same certificates and the same lock holders, or the benchmark fails.

    python bench/scan_fleet.py [--apps 50 500] [--latency-ms 20] [--parallel 1 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from cf_sandbox import Landscape
from cpi_cert_rotate.cf import CfClient
from cpi_cert_rotate.fleet import ScanRequest, scan
from cpi_cert_rotate.models import CfAuth
from cpi_cert_rotate.rotation import lock
from cpi_cert_rotate.rotation.observe import credentials_of, leaf_of_chain

OFFERING, PLAN = "it-rt", "integration-flow"
Row = tuple[str, str, str, str, str, str]
"""(org, space, app, instance, not after, lock holder or '')"""


@dataclass(frozen=True)
class Sample:
    """One approach on one fleet."""

    approach: str
    apps: int
    rows: int
    calls: int
    seconds: float

    @property
    def per_app(self) -> float:
        return self.calls / self.apps if self.apps else 0.0


def _auth(ls: Landscape) -> CfAuth:
    return CfAuth(username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem)


def _pages(client: CfClient, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    """A list as a script reads it: CC's default page size, every `next` link."""
    body = client._json(client._call("GET", path, params=params), path)
    while True:
        yield from body["resources"]
        nxt = (body["pagination"].get("next") or {}).get("href")
        if not nxt:
            return
        body = client._json(client._http.request("GET", nxt, bearer=client._auth), path)


def per_app_scan(ls: Landscape) -> set[Row]:
    """The careful per-app script (see the module docstring)."""
    rows: set[Row] = set()
    plans: dict[str, tuple[tuple[str, str], str]] = {}  # instance -> ((offering, plan), name)
    now = dt.datetime.now(dt.UTC)
    with CfClient(ls.api_url, _auth(ls)) as client:
        client.authenticate()
        for org in list(_pages(client, "/v3/organizations", {})):
            for space in list(_pages(client, "/v3/spaces", {"organization_guids": org["guid"]})):
                for app in list(_pages(client, "/v3/apps", {"space_guids": space["guid"]})):
                    params = {"app_guids": app["guid"], "type": "app"}
                    live: dict[str, str] = {}  # instance -> newest succeeded binding
                    for b in _pages(client, "/v3/service_credential_bindings", params):
                        if b["last_operation"]["state"] == "succeeded":
                            live[b["relationships"]["service_instance"]["data"]["guid"]] = b["guid"]
                    for si in live:
                        if si not in plans:
                            plans[si] = _plan_of(client, si)
                    iflow = {si: g for si, g in live.items() if plans[si][0] == (OFFERING, PLAN)}
                    if not iflow:
                        continue
                    chain = client.get_env_vars(app["guid"]).get("CLI_CHAIN")
                    env = leaf_of_chain(chain, now)
                    name = lock.lock_name(app["name"])
                    held = client.find_service_instance_named(space["guid"], name)
                    info = lock.LockInfo.from_tags(held.tags) if held else None
                    for si, binding in iflow.items():
                        own = credentials_of(client.binding_credentials(binding)).leaf
                        if own is None:
                            continue
                        if env is not None and (len(iflow) == 1 or _same(env, own)):
                            own = env
                        not_after = own.not_valid_after_utc.isoformat()
                        where = (org["name"], space["name"], app["name"], plans[si][1])
                        rows.add((*where, not_after, info.owner if info else ""))
    return rows


def _same(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a.fingerprint(hashes.SHA256()) == b.fingerprint(hashes.SHA256())


def _plan_of(client: CfClient, si_guid: str) -> tuple[tuple[str, str], str]:
    instance = client._json(client._call("GET", f"/v3/service_instances/{si_guid}"), "instance")
    plan_rel = (instance["relationships"].get("service_plan") or {}).get("data")
    if not plan_rel:
        return ("user-provided", ""), instance["name"]
    plan = client._json(client._call("GET", f"/v3/service_plans/{plan_rel['guid']}"), "plan")
    offering_guid = plan["relationships"]["service_offering"]["data"]["guid"]
    path = f"/v3/service_offerings/{offering_guid}"
    offering = client._json(client._call("GET", path), "offering")
    return (offering["name"], plan["name"]), instance["name"]


def fleet_scan(ls: Landscape, parallel: int) -> set[Row]:
    """`cpi_cert_rotate.fleet.scan`, its rows in the same form."""
    report = scan(ScanRequest(ls.api_url, _auth(ls), parallel=parallel, timeout_s=3600))
    return {
        (
            f.org,
            f.space,
            f.app,
            f.instance,
            f.live.not_after.isoformat(),
            f.lock.holder.owner if f.lock and f.lock.holder else "",
        )
        for f in report.findings
        if f.live is not None
    }


def lock_some(ls: Landscape) -> int:
    """A rotation's lock (`lock.acquire`, as the engine takes it) on every app whose
    number ends in 05; returns how many."""
    chosen = [a for a in ls.store.apps.values() if a.name.endswith("05")]
    with CfClient(ls.api_url, _auth(ls)) as client:
        for app in chosen:
            info = lock.LockInfo.new(f"gha:acme/cpi-ops/{app.name}/1", 3600)
            lock.acquire(client, app.space_guid, app.name, info)
    return len(chosen)


def measure(ls: Landscape, approach: str, run: Any) -> tuple[Sample, set[Row]]:
    ls.clear_calls()
    started = time.monotonic()
    rows = run()
    seconds = time.monotonic() - started
    calls = len(ls.calls())
    apps = len({(r[0], r[1], r[2]) for r in rows})
    return Sample(approach, apps, len(rows), calls, seconds), rows


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args(argv)
    header = (
        f"{'fleet':>6} {'approach':<16} {'apps':>5} {'calls':>7} {'calls/app':>10} "
        f"{'wall s':>8} {'calls':>8} {'time':>8}"
    )
    print(f"CC latency {args.latency_ms:g} ms per call; ratios against `per app`")
    print(header)
    print("-" * len(header))
    for size in args.apps:
        with Landscape(instances=1, fleet_apps=size) as ls:
            lock_some(ls)
            if args.latency_ms > 0:
                ls.add_fault({"path": "^/v3/", "delay_s": args.latency_ms / 1000})
            base, want = measure(ls, "per app", lambda: per_app_scan(ls))
            samples = [base]
            for parallel in args.parallel:
                sample, rows = measure(
                    ls, f"scan, parallel {parallel}", lambda p=parallel: fleet_scan(ls, p)
                )
                if rows != want or not any(r[5] for r in rows):
                    print(f"the approaches disagree on {size} apps: {sorted(rows ^ want)[:3]}")
                    return 1
                samples.append(sample)
        for s in samples:
            print(
                f"{size:>6} {s.approach:<16} {s.apps:>5} {s.calls:>7} {s.per_app:>10.2f} "
                f"{s.seconds:>8.2f} {_ratio(s.calls, base.calls):>8} "
                f"{_ratio(s.seconds, base.seconds):>8}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
