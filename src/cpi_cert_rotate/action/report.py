"""Render a `Report` for GitHub: outputs, the job summary, and the annotations to emit.

Pure functions of the report, so tests can check every outcome without a runner.
Only public facts appear (names, GUIDs, subjects, serials, fingerprints, dates): the
runner drops any output that contains masked text, and a summary is kept for 90 days.

"In force" is the certificate the app uses when the step ends: the new one when it was
rotated (or already live), otherwise the live one from before, which is what a
scheduled check wants to see in `expires-at` and `days-remaining`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import ExitCode
from ..models import CertFacts, Outcome, Report, iso
from .gha import md_cell

OUTPUTS: tuple[str, ...] = (
    "rotated",
    "verified",
    "app-stopped",
    "reason",
    "strategy",
    "expires-at",
    "days-remaining",
    "not-before",
    "serial",
    "fingerprint-sha256",
    "subject",
    "issuer",
    "previous-expires-at",
    "previous-fingerprint-sha256",
    "binding-guid",
    "deployment-guid",
    "leaf-pem",
    "results",
)
"""Every output of action.yml, in its order (a test keeps the two in step)."""

_HEADLINES = {
    Outcome.ROTATED: "✅ Certificate rotated",
    Outcome.NOT_DUE: "✅ Not due: nothing changed",
    Outcome.ALREADY_CURRENT: "✅ Already current: nothing changed",
    Outcome.DRY_RUN: "🔎 Dry run: nothing changed",
    Outcome.FAILED: "❌ Failed before any change",
    Outcome.ROLLED_BACK: "❌ Failed and rolled back",
    Outcome.ROLLBACK_INCOMPLETE: "🚨 Failed and the rollback is incomplete: act now",
    Outcome.CLEANUP_INCOMPLETE: "⚠️ Rotated, but an old binding remains",
    Outcome.INVALID_INPUT: "❌ Invalid input: nothing changed",
}
_UNPROVEN_HEADLINE = "⚠️ Certificate rotated, but NOT verified: nothing proved it works"
_STOPPED_HEADLINE = "⏸️ Certificate rotated; the app is stopped and was left stopped"
_STATUS_ICONS = {"ok": "✅", "skipped": "⏭️", "failed": "❌", "undone": "↩️"}


@dataclass(frozen=True)
class Annotation:
    """One workflow annotation: `kind` is warning or error; `message` may be long."""

    kind: str
    title: str
    message: str


def outputs(report: Report, now: datetime, code: ExitCode | None = None) -> dict[str, str]:
    """Every output, as strings ('' when not known); `code` is the run's exit code (the
    report's unless the expiry check failed it)."""
    live = report.in_force
    before = report.before
    row = result_row(report, report.exit_code if code is None else code, now)
    return {
        "rotated": "true" if report.rotated else "false",
        "verified": "true" if report.verified else "false",
        "app-stopped": "true" if report.app_stopped else "false",
        "reason": str(report.outcome),
        "strategy": str(report.strategy) if report.strategy else "",
        "expires-at": iso(live.not_after) if live else "",
        "days-remaining": str(live.days_remaining(now)) if live else "",
        "not-before": iso(live.not_before) if live else "",
        "serial": live.serial if live else "",
        "fingerprint-sha256": live.fingerprint_sha256 if live else "",
        "subject": live.subject if live else "",
        "issuer": live.issuer if live else "",
        "previous-expires-at": iso(before.not_after) if before else "",
        "previous-fingerprint-sha256": before.fingerprint_sha256 if before else "",
        "binding-guid": report.binding_guid or "",
        "deployment-guid": report.deployment_guid or "",
        "leaf-pem": (report.leaf_pem or "") if live is not None and live is report.new else "",
        "results": json.dumps([row], separators=(",", ":")),
    }


def result_row(
    report: Report, code: ExitCode, now: datetime, line: int | None = None
) -> dict[str, object]:
    """One target's entry of the `results` output: public facts only (`line`: where a
    targets file names it)."""
    target, live = report.target, report.in_force
    row: dict[str, object] = {
        "org": target.org,
        "space": target.space,
        "app": target.app,
        "instance": target.service_instance,
        "outcome": str(report.outcome),
        "exit_code": int(code),
        "rotated": report.rotated,
        "verified": report.verified,
        "app_stopped": report.app_stopped,
        "strategy": str(report.strategy) if report.strategy else None,
        "expires_at": iso(live.not_after) if live else None,
        "days_remaining": live.days_remaining(now) if live else None,
        "fingerprint_sha256": live.fingerprint_sha256 if live else None,
        "error_code": report.error_code,
    }
    if line is not None:
        row["line"] = line
    return row


def annotations_for(
    report: Report, *, now: datetime, warn_days: int, fail_within: int | None
) -> tuple[list[Annotation], bool]:
    """The annotations to emit and whether the expiry check fails the run.

    A warning for each engine warning; one when the new certificate expires within
    `warn_days`; one error with the reason when the run failed; one error when the
    certificate in force expires within `fail_within` days.
    """
    notes = [Annotation("warning", "cpi-cert-rotate", w) for w in report.warnings]
    new = report.new
    if new is not None and new.not_after - now <= _days(warn_days):
        notes.append(
            Annotation(
                "warning",
                "New certificate expires soon",
                f"the new certificate ({new.subject}, serial {new.serial}) expires "
                f"{iso(new.not_after)}, in {new.days_remaining(now)} days (threshold "
                f"{warn_days} days): plan the next rotation now",
            )
        )
    if report.error:
        code = f" [{report.error_code}]" if report.error_code else ""
        notes.append(
            Annotation(
                "error",
                _HEADLINES[report.outcome].split(" ", 1)[1],
                f"{report.outcome}{code}: {report.error} (the job summary says what to do)",
            )
        )
    live = report.in_force
    expiring = (
        fail_within is not None and live is not None and live.not_after - now <= _days(fail_within)
    )
    if expiring:
        assert live is not None
        notes.append(
            Annotation(
                "error",
                "Certificate expires soon",
                f"the certificate in force ({live.subject}) expires {iso(live.not_after)}, "
                f"in {live.days_remaining(now)} days, within fail-if-expires-within "
                f"({fail_within} days)",
            )
        )
    return notes, expiring


def result_lines(report: Report, now: datetime) -> list[str]:
    """The result for the log: outcome, the certificate in force, the plan of a dry run,
    the failure, the state left and what to do by hand."""
    live = report.in_force
    strategy = f" (strategy {report.strategy})" if report.strategy else ""
    lines = [f"result: {report.outcome}{strategy}"]
    if live is not None:
        lines.append(
            f"certificate in force: {live.subject}, serial {live.serial}, expires "
            f"{iso(live.not_after)} ({live.days_remaining(now)} days), sha256 "
            f"{live.fingerprint_sha256}"
        )
    if report.outcome is Outcome.DRY_RUN:
        lines += [f"plan: {line}" for line in report.plan]
    if report.error:
        lines.append(f"error: {report.hint or report.error}")
    lines += [f"state left: {line}" for line in report.state_left]
    lines += [f"to do by hand {i}: {line}" for i, line in enumerate(report.manual_actions, 1)]
    return lines


def _days(days: int) -> timedelta:
    return timedelta(days=days)


def summary(report: Report, *, now: datetime, expiry_failed: bool = False) -> str:
    """The job summary in Markdown: headline, before/after, steps, plan, warnings, failure."""
    target = report.target
    headline = (
        _UNPROVEN_HEADLINE
        if report.unproven
        else _STOPPED_HEADLINE
        if report.left_stopped and report.outcome is Outcome.ROTATED
        else _HEADLINES[report.outcome]
    )
    parts = [
        f"### {headline}: `{md_cell(target.app or '?')}`",
        "",
        f"App `{md_cell(target.app)}` in org `{md_cell(target.org)}`, space "
        f"`{md_cell(target.space)}`; service instance `{md_cell(target.service_instance)}`; "
        f"API {md_cell(target.api_url)}.  ",
        f"Outcome **{report.outcome}**"
        + (f", strategy **{report.strategy}**" if report.strategy else "")
        + f", exit code {int(report.exit_code) if not expiry_failed else 1}.",
        "",
    ]
    if report.unproven:
        parts += [
            "> [!WARNING]",
            "> The new certificate is live, but **no call with it reached the iFlow before "
            "promotion** (no `verify-path` or `verify-url`). The chain was checked offline "
            "(complete, ending in a trusted root), yet only Cloud Integration decides whether "
            "it accepts it. Check the app now, and give `verify-path` so that the next "
            "rotation is tested before it is promoted.",
            "",
        ]
    if report.left_stopped:
        parts += [
            "> [!NOTE]",
            "> **The app is stopped, and the rotation left it stopped**: no deployment, "
            "restage or restart, since each would start it. The new certificate is registered "
            "with Cloud Integration and in the app's env"
            + (", and the tool's own mTLS call with it succeeded" if report.verified else "")
            + ". But no instance presents it yet: **the app will "
            "present the new certificate when it is started**, and only then is its own use "
            "of it proven.",
            "",
        ]
    elif report.app_stopped and report.outcome is Outcome.DRY_RUN:
        parts += [
            "> [!NOTE]",
            "> The app is stopped: a rotation would not start it (no deployment, restage or "
            "restart); it would present the new certificate when it is started.",
            "",
        ]
    parts += _cert_table(report, now)
    if report.steps:
        parts += ["#### Steps", "", "| step | status | duration | detail |", "|---|---|---|---|"]
        for step in report.steps:
            icon = _STATUS_ICONS.get(step.status, "")
            parts.append(
                f"| {md_cell(step.name)} | {icon} {md_cell(step.status)} | "
                f"{step.duration_s:.2f} s | {md_cell(step.detail)} |"
            )
        parts.append("")
    if report.plan:
        plan = [_numbered(i, line) for i, line in enumerate(report.plan, 1)]
        if report.outcome is Outcome.DRY_RUN:
            parts += ["#### Plan (dry run: nothing was changed)", "", *plan, ""]
        else:
            parts += ["<details><summary>Plan</summary>", "", *plan, "", "</details>", ""]
    if report.warnings:
        parts += ["#### Warnings", ""] + [f"- {w}" for w in report.warnings] + [""]
    if report.error:
        parts += _failure(report)
    if expiry_failed:
        parts += [
            "#### ❌ Certificate expires soon",
            "",
            "The certificate in force expires within `fail-if-expires-within`; rotate it "
            "(run the rotation workflow, with `force: true` if `renew-before` says not due).",
            "",
        ]
    return "\n".join(parts) + "\n"


def _numbered(index: int, line: str) -> str:
    """A Markdown list item; the engine may number its plan lines already."""
    return line if re.match(r"^\d+\. ", line) else f"{index}. {line}"


def _cert_table(report: Report, now: datetime) -> list[str]:
    before, new = report.before, report.new
    if before is None and new is None:
        return []
    if report.rotated:
        heads = ("before", "after")
    elif report.outcome is Outcome.ALREADY_CURRENT:
        heads = ("live", "supplied (the same)")
    else:
        heads = ("live (unchanged)", "new (not applied)")
    rows: list[tuple[str, Callable[[CertFacts], str]]] = [
        ("subject", lambda c: c.subject),
        ("issuer", lambda c: c.issuer),
        ("serial", lambda c: c.serial),
        ("not before", lambda c: iso(c.not_before)),
        ("not after", lambda c: f"{iso(c.not_after)} ({c.days_remaining(now)} days)"),
        ("SHA-256", lambda c: c.fingerprint_sha256),
        ("key", lambda c: f"{c.key_type} {c.key_size}"),
    ]
    if new is None:  # none issued (not due, a dry run) or failed before: one column
        assert before is not None
        lines = [f"| | {heads[0]} |", "|---|---|"]
        lines += [f"| {label} | {md_cell(get(before))} |" for label, get in rows]
        return [*lines, ""]
    lines = [f"| | {heads[0]} | {heads[1]} |", "|---|---|---|"]
    for label, get in rows:
        left = md_cell(get(before)) if before else "-"
        lines.append(f"| {label} | {left} | {md_cell(get(new))} |")
    return [*lines, ""]


def _failure(report: Report) -> list[str]:
    code = f" (`{report.error_code}`)" if report.error_code else ""
    lines = ["#### What went wrong", "", f"**{report.error}**{code}", ""]
    hint = (report.hint or "").strip()
    if hint.startswith(report.error or "\0"):
        hint = hint[len(report.error or "") :].strip()
    if hint:
        lines += [hint, ""]
    if report.state_left:
        lines += ["**State left behind**", ""] + [f"- {s}" for s in report.state_left] + [""]
    if report.manual_actions:
        lines += ["**What to do by hand**", ""]
        lines += [f"{i}. {a}" for i, a in enumerate(report.manual_actions, 1)] + [""]
    return lines
