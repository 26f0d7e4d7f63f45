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

from ..fleet import ScanReport, ScanRequest, scan
from ..fleet.columns import COLUMNS, cells
from ..request.fields import SCAN
from ..request.scan import build_scan
from ..rotation.annotations import DEFAULT_PREFIX
from .cf_args import add_cf_login_arguments, cf_assertion, cf_login_values
from .spelling import SCAN_FLAGS, Flag, add_flags, dialect

_WHAT_FLAGS: tuple[Flag, ...] = (
    ("--offering", "NAME", "service offering of the instances"),
    ("--plan", "NAME", "service plan of the instances"),
    ("--chain-env-var", "NAME", "app env var with the chain ('' reads none)"),
    (
        "--renew-before",
        "WHEN",
        "when a certificate is due: 30d or 33%% (give rotate the same)",
    ),
    ("--warn-days", "DAYS", "`expiring` at or below this many days left"),
    (
        "--annotation-prefix",
        "DNS-NAME",
        f"prefix of the rotation annotations (default: {DEFAULT_PREFIX})",
    ),
)
_OUTPUT_FLAGS: tuple[Flag, ...] = (
    (
        "--environment",
        "TEMPLATE",
        "GitHub environment of each due app in the matrix: {org} {space} {app} {instance}",
    ),
    ("--matrix-limit", "N", "most entries in the matrix (GitHub's maximum is 256)"),
    (
        "--fail-if-expires-within",
        "DAYS",
        "exit 1 when a certificate expires within DAYS (or its expiry is unknown)",
    ),
)
_RUN_FLAGS: tuple[Flag, ...] = (
    ("--parallel", "N", "per-app reads at once (1 to 16)"),
    ("--timeout", "SECONDS", "the whole scan's limit (1 to 3600)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `scan`; each gives an input of the scan action (`cli.spelling.SCAN_FLAGS`)."""
    cf = parser.add_argument_group("Cloud Foundry")
    add_cf_login_arguments(cf)
    cf.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="ORG[/SPACE]",
        help="scan only this org or space (repeat it); default: every space the user sees",
    )
    add_flags(parser.add_argument_group("what to look for"), _WHAT_FLAGS, SCAN)
    out = parser.add_argument_group("output")
    add_flags(out, _OUTPUT_FLAGS, SCAN)
    form = out.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print the whole report as JSON")
    form.add_argument("--matrix", action="store_true", help="print only the due matrix (JSON)")
    add_flags(parser.add_argument_group("run"), _RUN_FLAGS, SCAN)


def build_request(args: argparse.Namespace) -> ScanRequest:
    """The scan the flags ask for, checked by `request.scan.build_scan` before any call.
    A flag not given is left out, so its default applies; `--chain-env-var ''` reads none."""
    values = cf_login_values(args)
    for name in SCAN.by_name:
        flag = SCAN_FLAGS[name]
        if name in values or flag is None or name == "scope":
            continue
        value = getattr(args, flag.removeprefix("--").replace("-", "_"))
        if value is not None:
            values[name] = value
    if args.scope:
        values["scope"] = "\n".join(args.scope)
    return build_scan(values, dialect(flags=SCAN_FLAGS), cf_jwt=cf_assertion(args))


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
            f"{report.fail_within_days} days (or its expiry is unknown)",
            file=sys.stderr,
        )
    return int(report.exit_code)
