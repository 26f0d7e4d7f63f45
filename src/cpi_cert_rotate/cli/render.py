"""Plain-text rendering of a rotation `Report` for a terminal."""

from __future__ import annotations

from ..models import CertFacts, Outcome, Report


def _cert_line(label: str, facts: CertFacts | None, missing: str = "(none found)") -> str:
    if facts is None:
        return f"  {label:<8} {missing}"
    return (
        f"  {label:<8} {facts.subject}  serial {facts.serial}  expires "
        f"{facts.not_after:%Y-%m-%d %H:%M}Z  sha256 {facts.fingerprint_sha256[:16]}..."
    )


def render_report(report: Report) -> str:
    """A readable report: outcome, certificates, steps with durations, warnings, failures."""
    target = report.target
    outcome = report.outcome.upper()
    if report.unproven:
        outcome += " BUT NOT VERIFIED (no test call: nothing proved the new certificate works)"
    lines = [
        f"{outcome}: app {target.app} in {target.org}/{target.space}, "
        f"service instance {target.service_instance}"
        + (f", strategy {report.strategy}" if report.strategy else ""),
        _cert_line("before", report.before),
        _cert_line("new", report.new, "(not issued: the issuer is asked only for a real run)")
        if report.outcome is Outcome.DRY_RUN
        else _cert_line("new", report.new),
    ]
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
    if report.error:
        lines.append(f"error: {report.error}")
    if report.state_left:
        lines += ["state left behind:", *(f"  - {s}" for s in report.state_left)]
    if report.manual_actions:
        lines.append("what to do by hand:")
        lines += [f"  {i}. {a}" for i, a in enumerate(report.manual_actions, 1)]
    return "\n".join(lines)
