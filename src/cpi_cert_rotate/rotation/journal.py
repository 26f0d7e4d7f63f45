"""The engine's memory of what it did: timed steps and the compensations that undo them.

Every write to Cloud Foundry pushes its compensation *before* the next write starts, so a
failure at any point can be undone in reverse order (AWS Secrets Manager's
AWSPENDING/AWSPREVIOUS idea, applied to bindings and env vars). A compensation that
itself fails is not retried blindly: it records what state it left and what a person
must do, which becomes the report of a `rollback-incomplete` run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..errors import RotationError
from ..models import StepEvent, StepFinished, StepResult, StepStarted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Compensation:
    """How to undo one change, and what to say if undoing fails."""

    description: str
    """What undoing does, e.g. "delete the new binding 1234"."""
    undo: Callable[[], None] = field(repr=False)
    state_if_failed: str
    """The state left behind if `undo` fails, e.g. "binding 1234 (new leaf) still exists"."""
    manual_action: str
    """What a person must do by hand if `undo` fails (a concrete cf command)."""


@dataclass(frozen=True)
class RollbackOutcome:
    """The result of running every compensation: what failed and what a person must do."""

    undone: tuple[str, ...]
    state_left: tuple[str, ...]
    manual_actions: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """True when every compensation succeeded."""
        return not self.state_left


class Journal:
    """Records timed steps and a stack of compensations for the changes made so far."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        on_step: Callable[[StepEvent], None] | None = None,
    ) -> None:
        self._clock = clock
        self._on_step = on_step or (lambda _event: None)
        self._steps: list[StepResult] = []
        self._compensations: list[Compensation] = []

    @property
    def steps(self) -> tuple[StepResult, ...]:
        """Every step recorded so far, in order."""
        return tuple(self._steps)

    @property
    def changed(self) -> bool:
        """True once any change that needs undoing was made."""
        return bool(self._compensations)

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[list[str]]:
        """Time a step; the yielded list collects detail lines. Failure marks it failed.

        `on_step` hears `StepStarted` before the step's first call and `StepFinished` with
        its result after its last: the adapters' progress (log groups, `-v` lines).
        """
        notes: list[str] = [detail] if detail else []
        started = self._clock()
        self._notify(StepStarted(name, detail))
        try:
            yield notes
        except BaseException:
            self._record(name, "failed", started, notes)
            raise
        self._record(name, "ok", started, notes)

    def skip(self, name: str, why: str) -> None:
        """Record a step that did not need to run, with the reason."""
        self._steps.append(StepResult(name=name, status="skipped", duration_s=0.0, detail=why))

    def push(self, compensation: Compensation) -> None:
        """Remember how to undo a change that just succeeded (or may have)."""
        log.debug("compensation registered: %s", compensation.description)
        self._compensations.append(compensation)

    def rollback(self) -> RollbackOutcome:
        """Run every compensation in reverse order; never raises.

        Each compensation runs even if an earlier one failed, because they touch
        independent resources (a binding, the env vars) and a partial undo leaves less
        for a person to do.
        """
        undone: list[str] = []
        state_left: list[str] = []
        manual: list[str] = []
        started = self._clock()
        while self._compensations:
            comp = self._compensations.pop()
            try:
                comp.undo()
            except (RotationError, OSError, TimeoutError) as error:
                log.error("rollback step failed: %s: %s", comp.description, error)
                state_left.append(f"{comp.state_if_failed} (undo failed: {error})")
                manual.append(comp.manual_action)
            else:
                undone.append(comp.description)
        status = "ok" if not state_left else "failed"
        detail = "; ".join(undone) if undone else "nothing to undo"
        self._steps.append(
            StepResult("rollback", status, round(self._clock() - started, 3), detail)
        )
        return RollbackOutcome(tuple(undone), tuple(state_left), tuple(manual))

    def _record(self, name: str, status: str, started: float, notes: list[str]) -> None:
        duration = round(self._clock() - started, 3)
        result = StepResult(name, status, duration, "; ".join(n for n in notes if n))
        self._steps.append(result)
        self._notify(StepFinished(result))

    def _notify(self, event: StepEvent) -> None:
        try:
            self._on_step(event)
        except Exception:  # a listener's bug must not fail (or skip the undo of) a step
            log.exception("a step listener failed on %s", event)
