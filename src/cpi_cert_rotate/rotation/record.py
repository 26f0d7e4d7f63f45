"""What a run's report will say, kept in one place while the run learns it.

The engine's steps return what they found; the run writes it here, and only here: the
strategy, the plan, the certificates before and after, the warnings (one list, which the
forward steps and their undo append to as well, so nothing is merged back), and the
journal's steps. `report` and `failure` turn it into the frozen `Report`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..errors import RotationError
from ..models import CertFacts, Outcome, Report, RotationRequest, Strategy
from .journal import Journal

log = logging.getLogger(__name__)


@dataclass
class RunRecord:
    """The one owner of a run's reportable state (see the module's docstring)."""

    request: RotationRequest
    journal: Journal
    warnings: list[str] = field(default_factory=list)
    plan: tuple[str, ...] = ()
    strategy: Strategy | None = None
    before: CertFacts | None = None
    """The live certificate as the last reading found it."""
    new: CertFacts | None = None
    leaf_pem: str | None = None
    verified: bool = False
    """Set when the test step's mTLS call with the new certificate succeeded."""
    app_stopped: bool = False
    """The app is stopped (as last read) and the run did not start it."""

    def earlier_run_left(self, lines: list[str]) -> None:
        """Warn of what an earlier run left (each line once)."""
        self.warnings += [f"left by an earlier run: {line}" for line in lines]

    def failure(
        self,
        outcome: Outcome,
        error: BaseException,
        *,
        state_left: tuple[str, ...] = (),
        manual_actions: tuple[str, ...] = (),
    ) -> Report:
        """The report of a run that ended with `error` (its message, hint and code)."""
        if isinstance(error, RotationError):
            message, hint = str(error), error.hint()
            code = getattr(error, "code", None)
            code = code if isinstance(code, str) else _kebab(type(error).__name__)
        elif isinstance(error, KeyboardInterrupt):
            message, hint, code = "interrupted", "The run was interrupted.", "cancelled"
        else:
            message = f"internal error ({type(error).__name__}): {error}"
            hint, code = message, "internal-error"
            log.exception("internal error", exc_info=error)
        return self.report(
            outcome,
            error=message,
            error_code=code,
            hint=hint,
            state_left=state_left,
            manual_actions=manual_actions,
        )

    def report(
        self,
        outcome: Outcome,
        *,
        binding_guid: str | None = None,
        deployment_guid: str | None = None,
        error: str | None = None,
        error_code: str | None = None,
        hint: str | None = None,
        state_left: tuple[str, ...] = (),
        manual_actions: tuple[str, ...] = (),
    ) -> Report:
        """The frozen report of what is recorded, ending now."""
        return Report(
            outcome=outcome,
            target=self.request.target,
            strategy=self.strategy,
            before=self.before,
            new=self.new,
            binding_guid=binding_guid,
            deployment_guid=deployment_guid,
            steps=self.journal.steps,
            warnings=tuple(dict.fromkeys(self.warnings)),
            plan=self.plan,
            error=error,
            error_code=error_code,
            hint=hint,
            state_left=state_left,
            manual_actions=manual_actions,
            leaf_pem=self.leaf_pem,
            finished_at=datetime.now(UTC),
            verified=self.verified,
            app_stopped=self.app_stopped,
        )


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
