"""Compare the rotation strategies and the seed's restage flow in one run.

Each strategy rotates the same app (N instances, a probe calling the iFlow through the
app at 20 calls/s) in a fresh sandbox landscape with identical timings. Printed per
strategy (median over --repeat runs): wall time, probe failures, the longest outage,
Cloud Controller calls and writes, and the ratio of each to the seed flow (`restage`).

    python bench/compare_strategies.py [--repeat 3] [--instances 3] [--start-s 0.5]

in-place runs with certificate pinning off (its precondition); the others with it on.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

from cf_sandbox import Landscape
from cpi_cert_rotate import material
from cpi_cert_rotate.models import CfAuth, CfTarget, Outcome, RotationRequest, Strategy
from cpi_cert_rotate.rotation import rotate

STRATEGIES = (Strategy.OVERLAP, Strategy.SWAP, Strategy.IN_PLACE, Strategy.RESTAGE)
BASELINE = Strategy.RESTAGE
PROBE_RPS = 20
SETTLE_S = 1.0  # probe keeps running after the rotation so late failures are counted
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Sample:
    """One rotation under load."""

    seconds: float
    calls: int
    failures: int
    longest_outage_s: float
    cc_calls: int
    cc_writes: int


def run_once(strategy: Strategy, args: argparse.Namespace) -> Sample:
    """Rotate once with `strategy` in a fresh landscape and measure it."""
    with Landscape(
        instances=args.instances,
        start_s=args.start_s,
        staging_s=args.staging_s,
        pinning=strategy is not Strategy.IN_PLACE,
    ) as ls:
        minted = ls.mint(cn="ntifext-client", days=90)
        request = RotationRequest(
            target=CfTarget(ls.api_url, ls.org, ls.space, ls.app, ls.service_instance),
            auth=CfAuth(
                username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem
            ),
            chain=material.load_chain(minted.chain_pem),
            key=material.load_key(minted.key_pem),
            trusted_roots=material.load_chain(ls.trusted_root_pem),  # not on SAP's list
            strategy=strategy,
            verify_path="/http/ping",
        )
        ls.probe_start(rps=PROBE_RPS)
        time.sleep(SETTLE_S)
        ls.clear_calls()
        started = time.monotonic()
        report = rotate(request)
        seconds = time.monotonic() - started
        time.sleep(SETTLE_S)
        ls.probe_stop()
        if report.outcome is not Outcome.ROTATED:
            raise SystemExit(f"{strategy}: {report.outcome}: {report.error}")
        probe = ls.probe()
        calls = [c for c in ls.calls() if c["path"].startswith("/v3")]
        return Sample(
            seconds=seconds,
            calls=probe["calls"],
            failures=probe["failures"],
            longest_outage_s=probe["longest_outage_s"],
            cc_calls=len(calls),
            cc_writes=sum(1 for c in calls if c["method"] in WRITES),
        )


def _median(samples: list[Sample], field: str) -> float:
    return statistics.median(float(getattr(s, field)) for s in samples)


def _ratio(value: float, base: float) -> str:
    if base == 0:
        return "-" if value == 0 else "inf"
    return f"{value / base:.2f}x"


def main(argv: list[str] | None = None) -> int:
    """Run every strategy `--repeat` times and print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--start-s", type=float, default=0.5, help="instance start time")
    parser.add_argument("--staging-s", type=float, default=2.0, help="staging time (restage)")
    args = parser.parse_args(argv)
    results = {s: [run_once(s, args) for _ in range(args.repeat)] for s in STRATEGIES}
    fields = ("seconds", "failures", "longest_outage_s", "cc_calls", "cc_writes")
    base = {f: _median(results[BASELINE], f) for f in fields}
    print(
        f"{args.instances} instances, start {args.start_s}s, staging {args.staging_s}s, "
        f"probe {PROBE_RPS}/s, median of {args.repeat}; ratios against the seed flow ({BASELINE})"
    )
    header = (
        f"{'strategy':<9} {'time s':>8} {'failed calls':>14} {'outage s':>10} "
        f"{'CC calls':>9} {'writes':>7}"
    )
    print(header)
    print("-" * len(header))
    for strategy, samples in results.items():
        m = {f: _median(samples, f) for f in fields}
        calls = _median(samples, "calls")
        print(
            f"{strategy:<9} {m['seconds']:8.2f} {m['failures']:>6.0f}/{calls:<7.0f}"
            f" {m['longest_outage_s']:10.2f} {m['cc_calls']:9.0f} {m['cc_writes']:7.0f}"
        )
        print(
            f"{'  ratio':<9} {_ratio(m['seconds'], base['seconds']):>8} "
            f"{_ratio(m['failures'], base['failures']):>14} "
            f"{_ratio(m['longest_outage_s'], base['longest_outage_s']):>10} "
            f"{_ratio(m['cc_calls'], base['cc_calls']):>9} "
            f"{_ratio(m['cc_writes'], base['cc_writes']):>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
