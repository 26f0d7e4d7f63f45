"""Waiting out an outage in a rollback: a token or a call that is safe to repeat, again later.

A rollback has a budget of its own (`rotation.context.ROLLBACK_BUDGET_S`) because undoing
matters more than finishing on time. When UAA (the token endpoint) or Cloud Controller is
down for longer than one call's retries (about 7 s, `http._RETRIES`; a CF platform update
rolls the Cloud Controller instances, and the router answers 502/503 meanwhile), every
undo step would fail at once, and the run would end `rollback-incomplete` with most of
its budget unspent. So while the rollback runs, its client asks for the token again, and
sends again a Cloud Controller call that is safe to repeat (`http.IDEMPOTENT_METHODS`:
GET, PATCH of env vars or metadata, DELETE by guid, whose repeat after CC acted is a 404
its callers count as done), with growing pauses (jittered, at least the answer's
`Retry-After`), until it succeeds, the budget is spent, or `stop` is set (SIGINT/SIGTERM:
`signals.py`), and a pause ends at once when `stop` is set. One Cloud Controller call
waits at most `CC_WAIT_MAX_S`: an endpoint that keeps failing while the rest answers must
not spend the budget of the undo steps after it and of the read after them. The forward
steps never wait like this: an outage before any change fails fast.

A POST (a binding or deployment create) is never sent again by this wait: whether it took
effect is unknown after a 5xx or a dropped connection, so it keeps the transport's rules
(`http.py`) and its caller reconciles; the token a POST needs is waited for before it is
sent, or after Cloud Controller refused the call's token (401, checked before any
handler runs). Only an outage is waited out: the service unreachable, 429 or a 5xx (for
Cloud Controller 502/503/504 only: a 500 is a handler's answer, not unavailability); a
refusal (400/401/403/404/422) is an answer and is raised at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import CfApiError, CfUnreachable
from ..retries import Remaining, retries_end_on

__all__ = ["is_cc_outage", "is_outage", "patiently"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_PAUSE_S = 2.0
"""The pause after the first failed try; it doubles after each further one."""
_MAX_PAUSE_S = 16.0
"""Pauses grow no longer than this, so an outage's end is noticed soon (bar Retry-After)."""
_JITTER_S = 1.0
"""Up to this much is added at random: rollbacks of a targets run do not retry in step."""
CC_WAIT_MAX_S = 120.0
"""One Cloud Controller call waits an outage out this long at most: a platform update's
502/503 last tens of seconds; the rest of the rollback's 300 s is left to the other steps."""


def is_outage(error: BaseException) -> bool:
    """True for a failure that says the service is unavailable now, not that it refused."""
    if isinstance(error, CfUnreachable):
        return True
    return isinstance(error, CfApiError) and (error.status == 429 or error.status >= 500)


CC_OUTAGE_STATUSES = frozenset({429, 502, 503, 504})
"""What the router or Cloud Controller answers while it is unavailable (`http.RETRY_STATUSES`)."""


def is_cc_outage(error: BaseException) -> bool:
    """True for a Cloud Controller call that found it unavailable: unreachable, a dropped
    connection or no answer in time (`CfUnreachable`), or 429/502/503/504."""
    if isinstance(error, CfUnreachable):
        return True
    return isinstance(error, CfApiError) and error.status in CC_OUTAGE_STATUSES


def _pause_s(tries: int, error: BaseException) -> float:
    backoff = min(_FIRST_PAUSE_S * 2.0 ** (tries - 1), _MAX_PAUSE_S)
    backoff += random.uniform(0, _JITTER_S)  # noqa: S311 (spreading retries, not a secret)
    retry_after = error.retry_after_s if isinstance(error, CfApiError) else None
    return max(backoff, retry_after or 0.0)


def patiently(
    get: Callable[[], T],
    stop: threading.Event,
    remaining: Remaining,
    *,
    outage: Callable[[BaseException], bool] = is_outage,
    service: str = "UAA",
    doing: str = "asking for a token",
    at_most_s: float | None = None,
) -> T:
    """`get()` (a token, or a call safe to repeat), tried again after an `outage` of
    `service` until it succeeds, `remaining()` or `at_most_s` (from the first try) would
    be spent by the pause, or `stop` is set; then the last error is raised. `doing` says
    what is tried again, for the log."""
    started = time.monotonic()
    tries = 0
    while True:
        tries += 1
        try:
            with retries_end_on(stop):
                return get()
        except (CfApiError, CfUnreachable) as error:
            if not outage(error) or stop.is_set():
                raise
            pause, budget_left = _pause_s(tries, error), remaining()
            left = budget_left
            if at_most_s is not None:
                own = at_most_s - (time.monotonic() - started)
                left = own if left is None else min(left, own)
            if left is not None and pause >= left:
                log.warning(
                    "%s is still unavailable and the time to wait for it is up: %s", service, error
                )
                raise
            budget = (
                ""
                if budget_left is None
                else f" ({budget_left:.0f}s of the rollback's budget left)"
            )
            log.warning(
                "%s is unavailable (%s); %s again in %.1fs%s",
                service,
                error,
                doing,
                pause,
                budget,
            )
            if stop.wait(pause):
                log.warning("stopped waiting for %s: the run was interrupted", service)
                raise
