"""Waiting out an auth outage: a token that UAA cannot give now is asked for again later.

A rollback has a budget of its own (`rotation.context.ROLLBACK_BUDGET_S`) because undoing
matters more than finishing on time. When UAA (the token endpoint) is down for longer than
one call's retries (about 7 s, `http._RETRIES`), every undo step that needs a new token
would fail at once, and the run would end `rollback-incomplete` with most of its budget
unspent. So while the rollback runs, its client asks for the token again, with growing
pauses (jittered, at least the answer's `Retry-After`), until the token comes, the budget
is spent, or `stop` is set (SIGINT/SIGTERM: `signals.py`), and a pause ends at once when
`stop` is set. The forward steps never wait like this: a failing login before any change
fails fast.

Only the token is waited for, never a Cloud Controller call: the token is fetched before
a call is sent, or after Cloud Controller refused the call's token (401, checked before
any handler runs), so no write (a binding create is not idempotent) can be sent twice
because of this wait. Only an outage is waited out: UAA unreachable, 429 or 5xx; a
refused login (400/401) is an answer and fails at once.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import TypeVar

from ..errors import CfApiError, CfUnreachable
from ..retries import Remaining, retries_end_on

__all__ = ["is_outage", "patiently"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_PAUSE_S = 2.0
"""The pause after the first failed try; it doubles after each further one."""
_MAX_PAUSE_S = 16.0
"""Pauses grow no longer than this, so an outage's end is noticed soon (bar Retry-After)."""
_JITTER_S = 1.0
"""Up to this much is added at random: rollbacks of a targets run do not retry in step."""


def is_outage(error: BaseException) -> bool:
    """True for a failure that says the service is unavailable now, not that it refused."""
    if isinstance(error, CfUnreachable):
        return True
    return isinstance(error, CfApiError) and (error.status == 429 or error.status >= 500)


def _pause_s(tries: int, error: BaseException) -> float:
    backoff = min(_FIRST_PAUSE_S * 2.0 ** (tries - 1), _MAX_PAUSE_S)
    backoff += random.uniform(0, _JITTER_S)  # noqa: S311 (spreading retries, not a secret)
    retry_after = error.retry_after_s if isinstance(error, CfApiError) else None
    return max(backoff, retry_after or 0.0)


def patiently(get: Callable[[], T], stop: threading.Event, remaining: Remaining) -> T:
    """`get()` (a token), tried again after an outage until it succeeds, `remaining()`
    would be spent by the pause, or `stop` is set; then the last error is raised."""
    tries = 0
    while True:
        tries += 1
        try:
            with retries_end_on(stop):
                return get()
        except (CfApiError, CfUnreachable) as error:
            if not is_outage(error) or stop.is_set():
                raise
            pause, left = _pause_s(tries, error), remaining()
            if left is not None and pause >= left:
                log.warning("UAA is still unavailable and the rollback's time is up: %s", error)
                raise
            budget = "" if left is None else f" ({left:.0f}s of the rollback's budget left)"
            log.warning(
                "UAA is unavailable (%s); asking for a token again in %.1fs%s",
                error,
                pause,
                budget,
            )
            if stop.wait(pause):
                log.warning("stopped waiting for UAA: the run was interrupted")
                raise
