"""The package's log and the engine's progress in the job's log, as plain text.

Log records are printed with `gha.info` (workflow commands stopped around text we do not
control, so a Cloud Foundry message cannot act as one). The engine's steps arrive as
events (`rotate(on_step=)`), not as log text: `StepGroups` opens one `::group::` per step
of a single run, `StepLines` prints a labelled line per step start and end in a targets
run (whose targets' lines interleave, so no groups).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..fleet.batch import current_target
from ..models import StepEvent, StepFinished, StepStarted
from . import gha

LOGGER = "cpi_cert_rotate"


def log_line(record: logging.LogRecord) -> str:
    """A log record as one plain log line (level prefix, traceback appended)."""
    prefix = {logging.DEBUG: "debug: ", logging.WARNING: "warning: "}.get(record.levelno, "")
    if record.levelno >= logging.ERROR:
        prefix = "error: "
    text = prefix + record.getMessage()
    if record.exc_info:
        text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
    return text


def labelled_line(record: logging.LogRecord) -> str:
    """`log_line` with the label of the target whose thread logged it."""
    label = current_target.get()
    return (f"[{label}] " if label else "") + log_line(record)


def step_line(event: StepEvent) -> str:
    """A step's start or end as a log line: `step set: started`, `step set: ok in 0.52s`."""
    if isinstance(event, StepStarted):
        return f"step {event.name}: started"
    result = event.result
    return f"step {result.name}: {result.status} in {result.duration_s:.2f}s"


class StepGroups:
    """An `on_step` listener: one `::group::` per engine step, its lines inside."""

    def __init__(self) -> None:
        self._open = False

    def __call__(self, event: StepEvent) -> None:
        if isinstance(event, StepStarted):
            self.end()
            gha.start_group(f"step {event.name}")
            self._open = True
        gha.info(step_line(event))
        if isinstance(event, StepFinished):
            self.end()

    def end(self) -> None:
        """Close the group that is open, if any."""
        if self._open:
            gha.end_group()
            self._open = False


def step_lines(event: StepEvent) -> None:
    """An `on_step` listener for a targets run: one labelled line, no group."""
    label = current_target.get()
    gha.info((f"[{label}] " if label else "") + step_line(event))


@contextmanager
def relayed(render: Callable[[logging.LogRecord], str] = log_line) -> Iterator[None]:
    """The package's log records printed live as `render` words them; INFO and up, DEBUG
    too when the workflow asked for debug logs."""

    class Relay(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                if record.levelno >= logging.INFO or gha.is_debug():
                    gha.info(render(record))
            except Exception:  # a log line must never break the run
                self.handleError(record)

    logger = logging.getLogger(LOGGER)
    relay, old_level = Relay(logging.DEBUG), logger.level
    logger.addHandler(relay)
    logger.setLevel(logging.DEBUG if gha.is_debug() else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(relay)
        logger.setLevel(old_level)
