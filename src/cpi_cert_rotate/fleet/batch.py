"""Many targets in one run: at most `parallel` rotations at once, one login, one report each.

  (1) log in once (`CfClient.authenticate`), before any target: wrong credentials stop
      the run here, rather than failing every target and locking the user after a few
      refused logins; every target's client then shares that login (`CfClient(login=)`),
      and a token rejected under several of them is renewed once;
  (2) rotate the targets in file order, `parallel` at a time, each through
      `rotation.rotate` with its own request, deadline and client; one that fails does not
      stop the others, and a bug in one is that target's failure;
  (3) on a signal every running rotation stops at its next safe point and undoes what it
      changed; targets not started yet are reported as not started.

`worst` turns the targets' exit codes into the run's (see there). Nothing here knows of
GitHub or of a terminal: `on_done` lets an adapter print each result as it comes.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from ..cf import CfClient
from ..cf.auth import UaaAuth
from ..errors import ExitCode
from ..models import Outcome, Report, RotationRequest, StepEvent
from ..request.targets import Batch, TargetRun

log = logging.getLogger(__name__)

WORST_FIRST: tuple[ExitCode, ...] = (
    ExitCode.ROLLBACK_INCOMPLETE,
    ExitCode.FAILED,
    ExitCode.BAD_INPUT,
    ExitCode.OK,
)
"""The run's exit code is the first of these that any target has. 3 first: a person must
act now. Then 1 before 2: a failed target may pass on a re-run (a busy landscape, a
deployment that timed out), and a scheduler that retries on 1 re-runs safely (targets
done meanwhile are not due any more); 2 alone says that only a fix of the inputs helps,
so a retry is pointless."""

current_target: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_target", default=None
)
"""The label of the target whose rotation runs in this thread (for log lines)."""

Rotate = Callable[..., Report]
ClientFactory = Callable[[RotationRequest], CfClient]


@dataclass(frozen=True)
class TargetResult:
    """One target's report."""

    target: TargetRun
    report: Report


def outcome_label(report: Report) -> str:
    """A target's outcome for a summary line: `rotated, not verified` when no test call
    proved the new certificate (`Report.unproven`), `rotated, app stopped` when the app
    was left stopped (`Report.left_stopped`: no instance presents it yet); a bare
    `rotated` would hide either."""
    label = str(report.outcome)
    if report.unproven:
        label += ", not verified"
    if report.left_stopped:
        label += ", app stopped"
    return label


def rotated_count(reports: Iterable[Report]) -> str:
    """`N rotated`, with `(M not verified, K app stopped)` for those no test call proved
    and those whose app was left stopped."""
    live = [report for report in reports if report.rotated]
    unproven = sum(1 for report in live if report.unproven)
    stopped = sum(1 for report in live if report.left_stopped)
    notes: list[str] = []
    if unproven:
        notes.append(f"{unproven} not verified")
    if stopped:
        notes.append(f"{stopped} app stopped")
    return f"{len(live)} rotated" + (f" ({', '.join(notes)})" if notes else "")


def worst(codes: Iterable[ExitCode]) -> ExitCode:
    """The run's exit code: the first of `WORST_FIRST` among `codes` (0 for none)."""
    found = set(codes)
    return next((code for code in WORST_FIRST if code in found), ExitCode.OK)


def rotate_batch(
    batch: Batch,
    *,
    cancel: threading.Event | None = None,
    on_secret: Callable[[str], None] | None = None,
    on_step: Callable[[StepEvent], None] | None = None,
    on_done: Callable[[TargetResult], None] = lambda _result: None,
    rotate: Rotate | None = None,
) -> list[TargetResult]:
    """Rotate every target of `batch`; the results in file order.

    Raises the `cf` error of the one login (`CfApiError`, `CfUnreachable`) before any
    target starts. The login is made with the first target's API and credentials, which
    every target shares (the login is the run's, never a target's). `on_step` hears every
    target's steps and `on_done` each result, in the target's thread (`current_target`
    names it); an error in `on_done` is logged, never a target's.
    """
    cancel = cancel or threading.Event()
    if rotate is None:
        from ..rotation import rotate as engine_rotate

        rotate = engine_rotate
    if not batch.targets:
        return []
    with _logged_in(batch) as shared:

        def client_for(request: RotationRequest) -> CfClient:
            return CfClient(request.target.api_url, request.auth, timeout_s=30.0, login=shared)

        def one(target: TargetRun) -> TargetResult:
            token = current_target.set(target.label)
            try:
                report = _rotate_one(
                    target, rotate, client_for, cancel, on_secret=on_secret, on_step=on_step
                )
                result = TargetResult(target, report)
            finally:
                current_target.reset(token)
            try:
                on_done(result)
            except Exception:  # printing a result must not lose the others
                log.exception("%s: reporting the result failed", target.label)
            return result

        with ThreadPoolExecutor(max_workers=batch.parallel, thread_name_prefix="target") as pool:
            return list(pool.map(one, batch.targets))


@contextmanager
def _logged_in(batch: Batch) -> Iterator[UaaAuth]:
    """The login every target shares: a client's of its own, logged in now."""
    first = batch.targets[0].settings.request
    with CfClient(first.target.api_url, first.auth, timeout_s=30.0) as client:
        client.authenticate()
        log.info("logged in once for %d target(s)", len(batch.targets))
        yield client.login


def _rotate_one(
    target: TargetRun,
    rotate: Rotate,
    client_for: ClientFactory,
    cancel: threading.Event,
    *,
    on_secret: Callable[[str], None] | None,
    on_step: Callable[[StepEvent], None] | None,
) -> Report:
    """One target's rotation; never raises (a bug is this target's failure)."""
    request = target.settings.request
    if cancel.is_set():
        return _not_started(request)
    log.info("%s: rotation starts", target.label)
    try:
        return rotate(
            request,
            cancel=cancel,
            client_factory=client_for,
            on_secret=on_secret,
            on_step=on_step,
        )
    except Exception as error:  # the engine reports failures; this is a bug
        log.error("%s: internal error", target.label, exc_info=True)
        return Report(
            outcome=Outcome.FAILED,
            target=request.target,
            error=f"internal error ({type(error).__name__}): {error}",
            error_code="internal-error",
            hint="This is a bug in cpi-cert-rotate; the traceback is in the log. Check the app "
            "(`cf env`, its bindings) before running again, and report the issue with the log.",
            finished_at=datetime.now(UTC),
        )


def _not_started(request: RotationRequest) -> Report:
    return Report(
        outcome=Outcome.FAILED,
        target=request.target,
        error="not started: the run was stopped (SIGINT/SIGTERM) before this target's turn",
        error_code="not-started",
        hint="Nothing was changed for this app; run again to rotate it.",
        finished_at=datetime.now(UTC),
    )
