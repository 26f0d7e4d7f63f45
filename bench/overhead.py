"""The tool's own overhead on top of the platform's work, at 0 and 100 ms round-trip time.

A fresh sandbox landscape per run (bind and unbind jobs `--job-s`, an instance healthy
after `--start-s`), with a latency proxy (`latency_proxy.py`: loopback only, bounded)
between the client and Cloud Controller and UAA; Cloud Integration's mTLS test call goes
direct. For 1/3/10/20 instances and each RTT it prints, median of `--repeat` overlap
rotations:

- `wall s`: `rotation.rotate` from call to report;
- `floor s`: the platform's minimum, from the sandbox's own timings: the bind job, the
  unbind job and the rolling deployment (`ceil(instances / max_in_flight)` batches of
  `--start-s`), one after the other, as an overlap rotation must wait for them;
- `overhead s`: wall minus floor, what the tool itself costs (round trips, polling slack,
  CPU);
- `CC calls`: Cloud Controller calls (UAA's token grant not counted), and `polls` of them
  the GETs of a job or a deployment while waiting (not the instance counts sent with the
  latter);
- `vs cf`: wall time over the seed's cf CLI flow (unbind, bind -c, set-env twice,
  restage), replayed request by request through the same proxy
  (tests/conformance/cf_cli_replay.py) with the CLI's own pauses: 3 s between polls
  (`DefaultPollingInterval`, cloudfoundry/cli `util/configv3/defaults.go`), also once
  after a job's last event (`PollJobToEventStream`, `api/cloudcontroller/ccv3/job.go`).

    python bench/overhead.py [--instances 1 3 10 20] [--rtt-ms 0 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from latency_proxy import LatencyProxy

from cf_sandbox import Landscape
from cpi_cert_rotate import material
from cpi_cert_rotate.models import CfAuth, CfTarget, Outcome, RotationRequest, Strategy
from cpi_cert_rotate.rotation import rotate

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "conformance"))
from cf_cli_replay import CfCli

_POLLED = re.compile(r"^/v3/(jobs|deployments)/[^/]+$")
"""A wait's polls: a job's or a deployment's state."""
CLI_POLL_S = 3.0
"""cloudfoundry/cli `util/configv3/defaults.go` DefaultPollingInterval."""


@dataclass(frozen=True)
class Sample:
    """One overlap rotation."""

    wall_s: float
    floor_s: float
    cc_calls: int
    polls: int

    @property
    def overhead_s(self) -> float:
        """Wall time beyond the platform's minimum."""
        return self.wall_s - self.floor_s


def _landscape(args: argparse.Namespace, instances: int) -> Landscape:
    return Landscape(instances=instances, start_s=args.start_s, job_steps_s=args.job_s)


def _proxied(ls: Landscape, rtt_s: float) -> tuple[LatencyProxy, LatencyProxy]:
    """Proxies in front of CC and UAA; `GET /` then names the UAA proxy."""
    cc, uaa = (
        LatencyProxy(("127.0.0.1", int(url.rsplit(":", 1)[1])), rtt_s)
        for url in (ls.api_url, ls.uaa_url)
    )
    cc.__enter__()
    uaa.__enter__()
    ls.advertise_uaa(uaa.url)
    return cc, uaa


def rotate_once(args: argparse.Namespace, instances: int, rtt_s: float) -> Sample:
    """One overlap rotation of an app with `instances` instances through the proxy."""
    with _landscape(args, instances) as ls:
        cc, uaa = _proxied(ls, rtt_s)
        try:
            minted = ls.mint(cn="ntifext-client", days=90)
            request = RotationRequest(
                target=CfTarget(cc.url, ls.org, ls.space, ls.app, ls.service_instance),
                auth=CfAuth(
                    username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem
                ),
                chain=material.load_chain(minted.chain_pem),
                key=material.load_key(minted.key_pem),
                trusted_roots=material.load_chain(ls.trusted_root_pem),  # not on SAP's list
                strategy=Strategy.OVERLAP,
                verify_path="/http/ping",
            )
            ls.clear_calls()
            started = time.monotonic()
            report = rotate(request)
            wall = time.monotonic() - started
            if report.outcome is not Outcome.ROTATED:
                raise SystemExit(f"{instances} instances: {report.outcome}: {report.error}")
            calls = [c for c in ls.calls() if c["server"] == "cc"]
            polls = [c for c in calls if c["method"] == "GET" and _POLLED.match(c["path"])]
        finally:
            cc.__exit__(None, None, None)
            uaa.__exit__(None, None, None)
    floor = 2 * args.job_s + math.ceil(instances / request.max_in_flight) * args.start_s
    return Sample(wall, floor, len(calls), len(polls))


def cli_once(args: argparse.Namespace, instances: int, rtt_s: float) -> float:
    """The seed's cf CLI flow through the proxy at the CLI's own pace; its wall time."""
    with _landscape(args, instances) as ls:
        cc, uaa = _proxied(ls, rtt_s)
        try:
            minted = ls.mint(cn="ntifext-client", days=90)
            leaf = material.load_chain(minted.chain_pem)[0]
            cli = CfCli(ls, poll_s=args.cli_poll_s, api_url=cc.url)
            started = time.monotonic()
            cli.login(ls.username, ls.password, ls.origin, ls.org, ls.space)
            cli.unbind_service(ls.app, ls.service_instance)
            cli.bind_service(ls.app, ls.service_instance, material.binding_parameters(leaf))
            cli.set_env(ls.app, "CPI_CHAIN", minted.chain_pem)
            cli.set_env(ls.app, "CPI_KEY", minted.key_pem)
            cli.restage(ls.app)
            return time.monotonic() - started
        finally:
            cc.__exit__(None, None, None)
            uaa.__exit__(None, None, None)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 3, 10, 20])
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=[0.0, 100.0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--job-s", type=float, default=1.0, help="bind/unbind job time")
    parser.add_argument("--start-s", type=float, default=0.5, help="instance start time")
    parser.add_argument("--cli-poll-s", type=float, default=CLI_POLL_S)
    parser.add_argument("--no-cli", action="store_true", help="skip the cf CLI flow")
    args = parser.parse_args(argv)
    print(
        f"overlap rotation, jobs {args.job_s:g} s, instance start {args.start_s:g} s, "
        f"median of {args.repeat}; cf CLI flow at {args.cli_poll_s:g} s polls"
    )
    header = (
        f"{'RTT ms':>6} {'inst':>4} {'wall s':>7} {'floor s':>7} {'overhead s':>10} "
        f"{'CC calls':>8} {'polls':>5} {'cf s':>6} {'vs cf':>6}"
    )
    print(header)
    print("-" * len(header))
    for rtt_ms in args.rtt_ms:
        for n in args.instances:
            samples = [rotate_once(args, n, rtt_ms / 1000) for _ in range(args.repeat)]
            wall = statistics.median(s.wall_s for s in samples)
            overhead = statistics.median(s.overhead_s for s in samples)
            calls = statistics.median(s.cc_calls for s in samples)
            polls = statistics.median(s.polls for s in samples)
            cli = None if args.no_cli else cli_once(args, n, rtt_ms / 1000)
            ratio = f"{wall / cli:.2f}x" if cli else "-"
            print(
                f"{rtt_ms:6.0f} {n:4d} {wall:7.2f} {samples[0].floor_s:7.2f} {overhead:10.2f} "
                f"{calls:8.0f} {polls:5.0f} {cli if cli else 0:6.2f} {ratio:>6}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
