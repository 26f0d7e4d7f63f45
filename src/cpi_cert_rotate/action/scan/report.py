"""The scan action's outputs, job summary and annotations, from a `ScanReport`.

Only public facts: names, certificate subjects, expiry dates, problem texts. The `due`
output is one line of JSON (GitHub drops a job output that contains a masked value, so
nothing secret may ever be in it, and nothing is).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ...fleet import ProblemCode, ScanReport
from ...fleet.columns import COLUMNS, cells
from ..gha import md_cell

OUTPUTS: tuple[str, ...] = ("due", "due-count", "found", "held")
"""Every output of scan/action.yml, in its order (a test keeps the two in step)."""


@dataclass(frozen=True)
class Note:
    """One annotation: `error`, `warning` or `notice`."""

    kind: str
    title: str
    message: str


def outputs(report: ScanReport) -> dict[str, str]:
    """`due` (the matrix, compact JSON), `due-count`, `found`, `held`."""
    held = len(report.held)
    return {
        "due": json.dumps(report.matrix_json(), separators=(",", ":")),
        "due-count": str(len(report.matrix)),
        "found": str(len(report.findings)),
        "held": str(held),
    }


def _where(finding: object) -> str:
    org, space, app = (getattr(finding, n) for n in ("org", "space", "app"))
    return f"{org}/{space}/{app}"


def notes(report: ScanReport) -> list[Note]:
    """An error for expired certificates and for `fail-if-expires-within`, a warning for
    due apps held out of the matrix, a notice with the totals."""
    found: list[Note] = []
    expired = [f for f in report.findings if f.has(ProblemCode.EXPIRED)]
    if expired:
        names = ", ".join(_where(f) for f in expired)
        found.append(
            Note("error", "Expired client certificates", f"{len(expired)} expired: {names}")
        )
    held = [f for f in report.due if not f.in_matrix]
    if held:
        names = "; ".join(
            f"{_where(f)} ({', '.join(str(p.code) for p in f.blocked_by) or 'beyond the limit'})"
            for f in held
        )
        found.append(
            Note("warning", "Due but not in the matrix", f"{len(held)} due app(s) held: {names}")
        )
    failing = report.expiring_within_limit
    if failing:
        names = ", ".join(_where(f) for f in failing)
        found.append(
            Note(
                "error",
                "Certificates expire soon",
                f"{len(failing)} certificate(s) expire within fail-if-expires-within "
                f"({report.fail_within_days} days) or cannot be read: {names}",
            )
        )
    found += [Note("warning", "Cloud Controller", w) for w in report.warnings]
    found.append(
        Note(
            "notice",
            "cpi-cert-rotate scan",
            f"{len(report.findings)} certificate(s), {len(report.due)} due, "
            f"{len(report.matrix)} in the matrix",
        )
    )
    return found


def summary(report: ScanReport) -> str:
    """The job summary: totals, the due matrix, then every certificate found."""
    now = report.scanned_at
    icon = "❌" if report.exit_code else ("🔄" if report.matrix else "✅")
    parts = [
        f"### {icon} CPI client certificates: {len(report.findings)} found, {len(report.due)} due",
        "",
        f"API {md_cell(report.api_url)} (v3 {report.api_version}), scanned "
        f"{now:%Y-%m-%d %H:%M} UTC in {report.duration_s:.1f} s; due means within "
        f"renew-before **{report.renew_before}**.",
        "",
    ]
    if report.matrix:
        parts += [f"#### To rotate ({len(report.matrix)}, most urgent first)", ""]
        parts += [
            f"- `{md_cell(e['org'])}/{md_cell(e['space'])}/{md_cell(e['app'])}` "
            f"(`{md_cell(e['instance'])}`) in environment `{md_cell(e['environment'])}`"
            for e in report.matrix
        ]
        parts.append("")
    held = [f for f in report.due if not f.in_matrix]
    if held:
        parts += ["#### Due but held out of the matrix", ""]
        for finding in held:
            why = "; ".join(p.message for p in finding.blocked_by) or (
                "beyond the matrix limit: the next run takes it"
            )
            parts.append(f"- `{md_cell(_where(finding))}`: {md_cell(why)}")
        parts.append("")
    if report.findings:
        parts += [
            "#### Every certificate",
            "",
            "| " + " | ".join(COLUMNS) + " |",
            "|" + "---|" * len(COLUMNS),
        ]
        for finding in report.findings:
            row = cells(finding, now)
            parts.append("| " + " | ".join(md_cell(row[c]) for c in COLUMNS) + " |")
        parts.append("")
    problems = [(f, p) for f in report.findings for p in f.problems]
    if problems:
        parts += ["<details><summary>Problems</summary>", ""]
        parts += [
            f"- `{md_cell(_where(f))}` **{p.code}**: {md_cell(p.message)}" for f, p in problems
        ]
        parts += ["", "</details>", ""]
    if report.skipped:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items()))
        parts += [f"Not reported: {md_cell(skipped)}.", ""]
    return "\n".join(parts) + "\n"
