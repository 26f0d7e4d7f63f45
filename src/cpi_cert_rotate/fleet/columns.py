"""The scan's findings as rows of short texts: one home for what each column says.

The command line prints them as a plain table, the Action as a Markdown table in the
job summary; both take the columns and the texts from here.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509

from .models import Finding

COLUMNS = (
    "org",
    "space",
    "app",
    "instance",
    "subject",
    "issuer",
    "not after",
    "days",
    "due",
    "overlap",
    "pinning",
    "last rotation",
    "problems",
)


def _common_name(dn: str) -> str:
    """The CN of an RFC 4514 DN (the whole DN when it has none)."""
    try:
        name = x509.Name.from_rfc4514_string(dn)
    except ValueError:
        return dn
    cns = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else dn


def _yes_no(value: bool | None, *, unknown: str = "?") -> str:
    return unknown if value is None else ("yes" if value else "no")


def cells(finding: Finding, now: datetime) -> dict[str, str]:
    """The row of one finding, keyed by `COLUMNS`."""
    live = finding.live
    last = finding.last_rotation
    return {
        "org": finding.org,
        "space": finding.space,
        "app": finding.app,
        "instance": finding.instance,
        "subject": _common_name(live.subject) if live else "?",
        "issuer": _common_name(live.issuer) if live else "?",
        "not after": f"{live.not_after:%Y-%m-%d}" if live else "?",
        "days": str(live.days_remaining(now)) if live else "?",
        "due": _yes_no(finding.due) + _matrix_note(finding),
        "overlap": str(finding.overlap),
        "pinning": _yes_no(finding.pinning),
        "last rotation": (last.rotated_at or "?")[:10] if last else "-",
        "problems": ", ".join(str(p.code) for p in finding.problems) or "-",
    }


def _matrix_note(finding: Finding) -> str:
    """` (held)`: due but kept out of the matrix; ` (unfinished)`: in it, though not due."""
    if finding.due and not finding.in_matrix:
        return " (held)"
    if finding.in_matrix and not finding.due:
        return " (unfinished)"
    return ""
