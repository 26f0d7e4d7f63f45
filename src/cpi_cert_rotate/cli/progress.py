"""The engine's progress on standard error: one line per step start and end, with `-v`.

The lines come from the engine's step events (`rotate(on_step=)`), not from its log text,
and go out through the CLI's logger so that `-v` shows them and a targets run labels them
like every other line.
"""

from __future__ import annotations

import logging

from ..models import StepEvent, StepStarted

log = logging.getLogger(__name__)


def progress(event: StepEvent) -> None:
    """`step set: started`, `step set: ok in 0.52s` (INFO: shown with `-v`)."""
    if isinstance(event, StepStarted):
        log.info("step %s: started", event.name)
    else:
        result = event.result
        log.info("step %s: %s in %.2fs", result.name, result.status, result.duration_s)
