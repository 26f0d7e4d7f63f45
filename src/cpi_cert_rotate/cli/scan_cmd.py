"""`cpi-cert-rotate scan`: every CPI client certificate in the landscape, and what is due.

Reads only; the login flags are `rotate`'s. Output: a table (default), the whole report
as JSON (`--json`), or only the `due` matrix (`--matrix`, for a shell or a workflow).
Exit 0 when the scan ran (whatever it found), 1 when Cloud Foundry could not be read or
`--fail-if-expires-within` finds a certificate within it, 2 for bad flags.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from ..fleet import (
    DEFAULT_ENVIRONMENT,
    DEFAULT_OFFERING,
    DEFAULT_PLAN,
    DEFAULT_RENEW_BEFORE,
    MATRIX_LIMIT,
    Place,
    ScanReport,
    ScanRequest,
    check_template,
    scan,
)
from ..fleet.columns import COLUMNS, cells
from ..models import RenewBefore
from ..rotation.annotations import DEFAULT_PREFIX, check_prefix
from .cf_args import add_cf_login_arguments, cf_auth_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `scan`; each mirrors an input of the scan action (scan/action.yml)."""
    cf = add_cf_login_arguments(parser)
    cf.add_argument(
        "--scope",
        action="append",
        default=[],
        type=Place.parse,
        metavar="ORG[/SPACE]",
        help="scan only this org or space (repeat it); default: every space the user sees",
    )
    what = parser.add_argument_group("what to look for")
    what.add_argument("--offering", default=DEFAULT_OFFERING, help="default %(default)s")
    what.add_argument("--plan", default=DEFAULT_PLAN, help="default %(default)s")
    what.add_argument(
        "--chain-env-var", default="CLI_CHAIN", help="app env var with the chain ('' skips it)"
    )
    what.add_argument(
        "--renew-before",
        type=RenewBefore.parse,
        default=DEFAULT_RENEW_BEFORE,
        help="when a certificate is due: 30d or 33%% (default 30d; give rotate the same)",
    )
    what.add_argument(
        "--warn-days", type=int, default=30, help="`expiring` at or below (default 30)"
    )
    what.add_argument(
        "--annotation-prefix",
        metavar="DNS-NAME",
        help=f"prefix of the rotation annotations (default {DEFAULT_PREFIX})",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--environment",
        default=DEFAULT_ENVIRONMENT,
        help="GitHub environment of each due app in the matrix: {org} {space} {app} "
        "{instance} (default %(default)s)",
    )
    out.add_argument(
        "--matrix-limit",
        type=int,
        default=MATRIX_LIMIT,
        help="most entries in the matrix (GitHub's maximum and the default: 256)",
    )
    form = out.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print the whole report as JSON")
    form.add_argument("--matrix", action="store_true", help="print only the due matrix (JSON)")
    out.add_argument(
        "--fail-if-expires-within",
        type=int,
        metavar="DAYS",
        help="exit 1 when a certificate expires within DAYS (or its expiry is unknown)",
    )
    run = parser.add_argument_group("run")
    run.add_argument("--parallel", type=int, default=4, help="per-app reads at once (default 4)")
    run.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole scan")


def build_request(args: argparse.Namespace) -> ScanRequest:
    """The scan the flags ask for; every flag is checked before any call."""
    prefix = args.annotation_prefix
    return ScanRequest(
        api_url=args.cf_api,
        auth=cf_auth_from_args(args),
        places=tuple(args.scope),
        offering=args.offering,
        plan=args.plan,
        chain_env_var=args.chain_env_var,
        renew_before=args.renew_before,
        warn_days=args.warn_days,
        annotation_prefix=check_prefix(prefix, source="--annotation-prefix") if prefix else None,
        environment=check_template(args.environment, source="--environment"),
        parallel=args.parallel,
        timeout_s=args.timeout,
        fail_within_days=args.fail_if_expires_within,
        matrix_limit=args.matrix_limit,
    )


def render_table(report: ScanReport, now: datetime | None = None) -> str:
    """The findings as an aligned plain-text table, then what was left out and why."""
    now = now or report.scanned_at
    rows = [cells(f, now) for f in report.findings]
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in COLUMNS}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in COLUMNS).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows]
    due = report.due
    lines.append(
        f"\n{len(report.findings)} certificate(s), {len(due)} due under renew-before "
        f"{report.renew_before}, {len(report.matrix)} in the matrix "
        f"(API {report.api_version}, {report.duration_s:.1f} s)"
    )
    for finding in report.findings:
        for problem in finding.problems:
            lines.append(f"  {finding.org}/{finding.space}/{finding.app}: {problem.message}")
    for finding in report.left_out:
        lines.append(f"  {finding.org}/{finding.space}/{finding.app}: due, beyond the matrix limit")
    if report.skipped:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items()))
        lines.append(f"not reported: {skipped}")
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Scan and print; the exit code says whether the scan ran and the limit held."""
    report = scan(build_request(args))
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    elif args.matrix:
        print(json.dumps(report.matrix_json()))
    else:
        print(render_table(report))
    for finding in report.expiring_within_limit:
        print(
            f"error: {finding.org}/{finding.space}/{finding.app} expires within "
            f"{args.fail_if_expires_within} days (or its expiry is unknown)",
            file=sys.stderr,
        )
    return int(report.exit_code)
