"""The fleet scan: every app bound to an it-rt instance with an external certificate.

`scan(ScanRequest(...))` lists the landscape with a fixed number of list calls, reads the
two things per app that have no list form (the live binding's credentials and the app's
chain env var), and returns a `ScanReport`: per app the certificate, its expiry, whether
it is due under `renew-before`, whether overlap can work, the last rotation, a rotation's
lock on it and any problem; plus the `due` matrix a GitHub workflow feeds its rotate jobs
with. It writes nothing to Cloud Foundry and knows nothing of GitHub.
"""

from .matrix import PLACEHOLDERS, check_template
from .models import (
    BLOCKING,
    DEFAULT_ENVIRONMENT,
    DEFAULT_OFFERING,
    DEFAULT_PLAN,
    DEFAULT_RENEW_BEFORE,
    MATRIX_LIMIT,
    Finding,
    LastRotation,
    LockSeen,
    Overlap,
    Place,
    Problem,
    ProblemCode,
    ScanReport,
    ScanRequest,
)
from .scan import scan

__all__ = [
    "BLOCKING",
    "DEFAULT_ENVIRONMENT",
    "DEFAULT_OFFERING",
    "DEFAULT_PLAN",
    "DEFAULT_RENEW_BEFORE",
    "MATRIX_LIMIT",
    "PLACEHOLDERS",
    "Finding",
    "LastRotation",
    "LockSeen",
    "Overlap",
    "Place",
    "Problem",
    "ProblemCode",
    "ScanReport",
    "ScanRequest",
    "check_template",
    "scan",
]
