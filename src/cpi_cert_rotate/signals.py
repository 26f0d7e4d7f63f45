"""SIGINT and SIGTERM as a request to stop at a safe point, not an abort.

A runner cancels a job with SIGINT, then SIGTERM 7.5 s later, then a kill; a shell user
presses Ctrl-C. Either way a rotation must undo what it changed rather than die between
two Cloud Foundry calls, so both signals only set an event the engine checks. A second
signal changes nothing: the rollback that is running must finish; it only stops waiting
for UAA to come back after an outage (`cf/outage.py`), so the report is out before the kill.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Report

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_requested_on_signals(event: threading.Event) -> Iterator[list[str]]:
    """While the block runs, SIGINT/SIGTERM set `event`; yields the names received.

    The handler only records and sets: printing from a signal handler can re-enter a
    half-written line. Outside the main thread (where handlers cannot be installed)
    the block runs unchanged.
    """
    received: list[str] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        event.set()

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def signal_note(received: list[str], report: Report) -> str:
    """What to tell a person who sent SIGINT/SIGTERM, true to how the run ended.

    Either the engine stopped at a safe point because of the signal (and undid what it
    had changed), or the new certificate is live: a signal that arrives once the
    certificate is going live (the finish step, the seed's restage) does not stop the run,
    since undoing then would leave more to repair than finishing.
    """
    if not received:
        return ""
    names = ", ".join(received)
    outcome, stopped, live = str(report.outcome), report.error_code == "cancelled", report.rotated
    if stopped:
        return f"received {names}: stopped at a safe point and undid what was changed ({outcome})"
    if live:
        return (
            f"received {names} while the new certificate was going live: the run could no "
            f"longer stop safely, so it finished ({outcome}); nothing was undone"
        )
    return f"received {names}; the run ended {outcome} before it reached a safe point to stop at"
