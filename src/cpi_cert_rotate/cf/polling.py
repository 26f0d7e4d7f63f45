"""Waiting for asynchronous Cloud Foundry work: jobs, builds and deployments.

Polls start fast (a local or idle foundation finishes a job in well under a second) and
back off geometrically to a cap of a few seconds (the cf CLI polls every 3 s), so a slow
broker is not hammered. Every wait has an absolute deadline on `time.monotonic()`; the
last sleep is cut short so the deadline is checked on time, and a missed deadline raises
`CfTimeout` (a `TimeoutError`) that names what was awaited and its guid.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import CfJobFailed, CfTimeout
from .resources import Job

__all__ = ["job_failure", "poll"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY_S = 0.1
GROWTH = 1.6


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    deadline: float,
    cap_s: float,
    what: str,
    guid: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call `fetch` until `done(result)`; return that result or raise `CfTimeout`.

    `fetch` runs at least once, even past the deadline, so work that already finished is
    never reported as timed out.
    """
    delay = min(FIRST_DELAY_S, cap_s)
    polls = 0
    started = clock()
    while True:
        value = fetch()
        polls += 1
        if done(value):
            logger.debug("%s done after %d polls, %.2fs", what, polls, clock() - started)
            return value
        left = deadline - clock()
        if left <= 0:
            raise CfTimeout(
                f"{what}{f' ({guid})' if guid else ''} did not finish within the time "
                f"allowed ({clock() - started:.1f}s, {polls} polls); it may still complete "
                "later",
                resource_guid=guid,
            )
        sleep(min(delay, left))
        delay = min(delay * GROWTH, cap_s)


def job_failure(
    job: Job,
    what: str,
    *,
    binding_guid: str | None = None,
    redact: Callable[[str], str] = str,
) -> CfJobFailed:
    """A FAILED job as `CfJobFailed` with the first error's code, title and detail.

    `redact` cleans the details (a broker may echo what it was sent) before they reach
    the message.
    """
    first = job.errors[0] if job.errors else None
    detail = redact("; ".join(e.detail for e in job.errors if e.detail) or "no error detail given")
    title = first.title if first else ""
    label = f"{title} ({first.code})" if first and first.code is not None else title
    return CfJobFailed(
        f"{what} failed (job {job.guid}, {job.operation or 'operation unknown'})"
        f"{': ' + label if label else ''}: {detail}",
        job_guid=job.guid,
        binding_guid=binding_guid or job.resource_guid,
        code=first.code if first else None,
        title=title,
        detail=detail,
        method="GET",
        path=f"/v3/jobs/{job.guid}",
    )
