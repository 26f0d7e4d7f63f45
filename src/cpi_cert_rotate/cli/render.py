"""Plain-text rendering of a rotation `Report` for a terminal.

The report goes to standard output; the failure itself is printed once, with its fix,
on standard error by the command (`rotate_cmd`), so it is not repeated here. A
certificate line says "none found" only when the app was actually read: when the run
stopped before, nothing is known about it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..models import CertFacts, Outcome, Report, iso


def _cert_line(label: str, facts: CertFacts | None, missing: str) -> str:
    if facts is None:
        return f"  {label:<8} {missing}"
    return (
        f"  {label:<8} {facts.subject}  serial {facts.serial}  expires "
        f"{facts.not_after:%Y-%m-%d %H:%M}Z  sha256 {facts.fingerprint_sha256[:16]}..."
    )


def _observed(report: Report) -> bool:
    """True when the observe step read the app (so an absent certificate is a fact)."""
    return any(s.name == "observe" and s.status == "ok" for s in report.steps)


def render_report(report: Report) -> str:
    """A readable report: outcome, certificates, steps with durations, warnings, state."""
    target = report.target
    outcome = report.outcome.upper()
    if report.unproven:
        outcome += " BUT NOT VERIFIED (no test call: nothing proved the new certificate works)"
    if report.left_stopped:
        outcome += (
            " (APP STOPPED, left stopped: it will present the new certificate when it is started)"
        )
    elif report.app_stopped and report.outcome is Outcome.DRY_RUN:
        outcome += " (APP STOPPED: a rotation would not start it)"
    lines = [
        f"{outcome}: app {target.app} in {target.org}/{target.space}, "
        f"service instance {target.service_instance}"
        + (f", strategy {report.strategy}" if report.strategy else ""),
    ]
    if report.outcome is not Outcome.INVALID_INPUT:
        unread = "(not read: the run stopped before it read the app)"
        lines.append(
            _cert_line("before", report.before, "(none found)" if _observed(report) else unread)
        )
        not_made = (
            "(not issued: the issuer is asked only for a real run)"
            if report.outcome is Outcome.DRY_RUN
            else "(none)"
        )
        lines.append(_cert_line("new", report.new, not_made))
    if report.binding_guid:
        lines.append(f"  binding  {report.binding_guid}")
    if report.deployment_guid:
        lines.append(f"  deploy   {report.deployment_guid}")
    if report.plan:
        lines += ["plan:", *(f"  {step}" for step in report.plan)]
    if report.steps:
        lines.append("steps:")
        lines += [
            f"  {s.name:<9} {s.status:<8} {s.duration_s:7.2f}s  {s.detail}".rstrip()
            for s in report.steps
        ]
    lines += [f"warning: {w}" for w in report.warnings]
    if report.state_left:
        lines += ["state left behind:", *(f"  - {s}" for s in report.state_left)]
    if report.manual_actions:
        lines.append("what to do by hand:")
        lines += [f"  {i}. {a}" for i, a in enumerate(report.manual_actions, 1)]
    return "\n".join(lines)


def expiry_failure(report: Report, now: datetime, fail_within: int | None) -> str | None:
    """Why `--fail-if-expires-within` fails the run, or None."""
    live = report.in_force
    if fail_within is None or live is None or live.not_after - now > timedelta(days=fail_within):
        return None
    return (
        f"the certificate in force ({live.subject}) expires {iso(live.not_after)}, in "
        f"{live.days_remaining(now)} days, within --fail-if-expires-within ({fail_within} days)"
    )
