"""Waiting for asynchronous Cloud Foundry work: jobs, builds, deployments, bindings.

One helper, `wait_for`, serves every wait, so each is seen to end about when it ends
without hammering Cloud Controller:

- With an expected end (a job as long as the last one of this client, the next batch of
  a deployment whose batches seen so far say how long one takes), the next poll is timed
  to *arrive* just after that end (half the measured round trip early), then polls
  follow `MIN_STEP_S` apart, growing with how overdue the work is.
- Without one, the pause is `LONG_WAIT_SHARE` of the time waited so far (at least
  `MIN_STEP_S`, at most `cap_s`): a one-second job is seen within 0.1 s, a
  long wait backs off to the cap (the cf CLI polls every 3 s, cloudfoundry/cli
  `util/configv3/defaults.go`).
- A `Retry-After` the server sent is honoured as the least pause.
- Every wait has an absolute deadline on `time.monotonic()`; no sleep runs past it, and a
  missed deadline raises `CfTimeout` (a `TimeoutError`) naming what was awaited and its
  guid. The work is fetched at least once, even past the deadline, so work that already
  finished is never reported as timed out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import CfJobFailed, CfTimeout
from .resources import Job

__all__ = ["Waited", "job_failure", "poll", "wait_for"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

MIN_STEP_S = 0.05
"""The shortest pause between two polls of one thing."""
FIRST_DELAY_S = MIN_STEP_S
LONG_WAIT_SHARE = 0.1
"""Without an expected end, pause this share of the time waited so far."""
FIRST_STEP_SHARE = 0.1
"""While the first of several steps runs, pause this share: its length sets every later
poll, so it is measured more finely."""
OVERDUE_SHARE = 0.5
"""Past the expected end, pause this share of the time overdue."""
ARRIVAL_MARGIN_S = 0.01
"""A poll timed for an expected end arrives this much after it."""
DEFAULT_CAP_S = 3.0


class Waited:
    """What the last `wait_for` with this record learned: how long the work took."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        self.polls = 0


def _pause(
    waited: float,
    share: float,
    *,
    cap_s: float,
    expected_end: float | None,
    mid: float,
    half_trip: float,
    now: float,
) -> float:
    """How long to sleep before the next poll (see the module docstring)."""
    if expected_end is None:  # polls *arrive* that far apart: a round trip is part of it
        return min(max(share * waited - 2 * half_trip, MIN_STEP_S), cap_s)
    arrive = expected_end + ARRIVAL_MARGIN_S
    if arrive > mid:  # sent half a round trip early, it arrives just after the end
        return max(arrive - half_trip - now, MIN_STEP_S)
    return min(max(OVERDUE_SHARE * (mid - expected_end), MIN_STEP_S), cap_s)


def wait_for(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    deadline: float,
    what: str,
    guid: str | None = None,
    cap_s: float = DEFAULT_CAP_S,
    started: float | None = None,
    expected_s: float | None = None,
    progress: Callable[[T], int] | None = None,
    steps: int = 1,
    retry_after: Callable[[], float | None] | None = None,
    check: Callable[[], None] | None = None,
    record: Waited | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call `fetch` until `done(result)`; return that result or raise `CfTimeout`.

    `started`: when the request that began the work was sent (default: now).
    `expected_s`: how long the work is expected to take. `progress` and `steps`: the work
    runs in `steps` steps of about equal length, `progress(result)` of them done (a
    deployment's batches); the steps seen end say how long one takes, and each poll aims
    at the next step's end. `retry_after`:
    the least pause the server asked for. `check` runs before every poll (a cancel).
    `record` learns how long the work took, for the next wait of its kind.
    """
    now = clock()
    origin = now if started is None else min(started, now)
    expected_end = None if expected_s is None else origin + expected_s
    seen_steps, step_s = 0, 0.0
    last_mid = origin
    polls = 0
    while True:
        if check is not None:
            check()
        sent = clock()
        value = fetch()
        now = clock()
        polls += 1
        half_trip, mid = (now - sent) / 2, (sent + now) / 2
        if done(value):
            if record is not None:  # a lower bound: the next wait of its kind polls early
                record.seconds = max((last_mid if polls > 1 else mid) - origin, 0.0)
                record.polls = polls
            logger.debug("%s done after %d polls, %.2fs", what, polls, now - origin)
            return value
        left = deadline - now
        if left <= 0:
            raise CfTimeout(
                f"{what}{f' ({guid})' if guid else ''} did not finish within the time "
                f"allowed ({now - origin:.1f}s, {polls} polls); it may still complete later",
                resource_guid=guid,
            )
        share = LONG_WAIT_SHARE
        if progress is not None and steps > 1:
            done_steps = progress(value)
            if done_steps > seen_steps and polls > 1:
                # Step `done_steps` ended after the previous poll arrived: a lower bound on
                # a step's length, so the polls that follow come early rather than late.
                step_s = max(step_s, (last_mid - origin) / done_steps)
            seen_steps = max(seen_steps, done_steps)
            if step_s > 0:
                expected_end = origin + min(seen_steps + 1, steps) * step_s
            else:
                share = FIRST_STEP_SHARE
        last_mid = mid
        pause = _pause(
            now - origin, share, cap_s=cap_s, expected_end=expected_end, mid=mid,
            half_trip=half_trip, now=now,
        )  # fmt: skip
        asked = retry_after() if retry_after is not None else None
        if asked:
            pause = max(pause, asked)
        sleep(min(pause, left))


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
    """`wait_for` without an expected end (kept for callers that know nothing more)."""
    return wait_for(
        fetch, done, deadline=deadline, cap_s=cap_s, what=what, guid=guid, sleep=sleep,
        clock=clock,
    )  # fmt: skip


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
