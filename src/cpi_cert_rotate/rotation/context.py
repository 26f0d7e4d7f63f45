"""What the forward steps (4)-(6) and their undo share.

Everything here is fixed when the steps start, except two facts the promote step learns
and its undo reads later (`deployment_guid`, `instances_may_hold_new_env`) and the test
call's TLS context, built in a thread while the set step waits (`test_context`). `journal` and
`warnings` are the run's own (`record.RunRecord`), not copies.
"""

from __future__ import annotations

import ssl
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from cryptography import x509

from ..cf import CfClient
from ..errors import Cancelled
from ..models import CertFacts, PrivateKey, RotationRequest
from .journal import Journal
from .observe import Observation

ROLLBACK_BUDGET_S = 300.0
"""Extra time a rollback may take after the run's own deadline: undoing matters more."""


@dataclass
class RunContext:
    """Everything a step needs: client, request, what was observed, what was changed."""

    client: CfClient
    request: RotationRequest
    obs: Observation
    journal: Journal
    deadline: float
    """Absolute `time.monotonic()` by which the forward steps must be done."""
    new_leaf: x509.Certificate
    new_facts: CertFacts
    env_chain: str
    new_key: PrivateKey = field(repr=False)
    key_pem: str = field(repr=False)
    warnings: list[str]
    """The run's warnings (`RunRecord.warnings`): a step or an undo appends to it."""
    cancel: threading.Event = field(default_factory=threading.Event)
    deployment_guid: str | None = None
    """The promote step's deployment, once started (its undo cancels it)."""
    instances_may_hold_new_env: bool = False
    """Set once a deployment may have started instances with the new env values; cleared
    once a deployment is seen to have brought the old values back to every instance."""
    env_may_hold_new: bool = False
    """Set before the env PATCH (it may apply though its answer is lost); cleared once the
    previous values are written back."""
    restore_deployment_guid: str | None = None
    """The rollback's deployment of the old env values, once started."""
    test_context: Future[ssl.SSLContext] | None = field(default=None, repr=False)
    """The test call's TLS context, built while the set step waits (`verify.prepare`)."""

    def check_cancel(self) -> None:
        """Raise `Cancelled` at a safe point if SIGINT/SIGTERM arrived."""
        if self.cancel.is_set():
            raise Cancelled("the run was interrupted; undoing what was changed")

    def remaining(self) -> float:
        """Seconds left before the run's deadline (may be negative)."""
        return self.deadline - time.monotonic()

    def rollback_deadline(self) -> float:
        """The deadline for undo steps: whatever is left, plus a fixed budget."""
        return max(self.deadline, time.monotonic()) + ROLLBACK_BUDGET_S
