"""One retry policy builder for every HTTP client here: Cloud Foundry, Vault, GitHub's OIDC.

Every client mounts a urllib3 `Retry` from `retry_policy`, so the rules are the same
everywhere and written once: exponential backoff with jitter, `Retry-After` honoured up to
a cap (urllib3's own cap is six hours), 429 retried for any method (the rate limiter
answers before a handler runs, so nothing happened), no hand-written loop, and, where a
run has a deadline, no wait longer than what is left and no attempt after it. What is
retried (which methods, which statuses, how often) is each caller's choice, with its why
next to it. The one loop outside urllib3 is a rollback's wait out an outage
(`cf/outage.py`): it asks again for a UAA token, and sends again a Cloud Controller call of
an idempotent method, never a POST. Inside `retries_end_on(stop)` a retry's pause ends as
soon as `stop` is set, and no retry follows it: a rollback that waits out an outage stops
waiting on SIGTERM.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Self

from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

__all__ = ["Remaining", "retries_end_on", "retry_policy"]

BACKOFF_FACTOR_S = 0.5
"""urllib3 waits `factor * 2 ** (retry - 1)` from the second retry on: 0, 1, 2, 4 s."""
BACKOFF_JITTER_S = 0.5
"""Up to this much is added at random, so that many clients do not retry in step."""

Remaining = Callable[[], float | None]
"""Seconds left before the run's deadline, or None when there is none."""

_STOP: ContextVar[threading.Event | None] = ContextVar("retry_stop", default=None)
"""Set by `retries_end_on` for the calls one thread makes inside it (urllib3 retries and
sleeps in the calling thread), so other threads' calls keep their patience."""


@contextmanager
def retries_end_on(stop: threading.Event) -> Iterator[None]:
    """While the block runs, this thread's retries pause on `stop` (a set event ends the
    pause) and end, with the last answer or error, once it is set."""
    token = _STOP.set(stop)
    try:
        yield
    finally:
        _STOP.reset(token)


class _Retry(Retry):
    """urllib3 `Retry` that replays any method answered 429 and stops at the deadline."""

    remaining: Remaining = staticmethod(lambda: None)

    def new(self, **kw: Any) -> Self:
        fresh = super().new(**kw)
        fresh.remaining = self.remaining
        return fresh

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code == 429:
            return True
        return super().is_retry(method, status_code, has_retry_after)

    def is_exhausted(self) -> bool:
        left, stop = self.remaining(), _STOP.get()
        stopped = stop is not None and stop.is_set()
        return super().is_exhausted() or stopped or (left is not None and left <= 0)

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        stop = _STOP.get()
        if stop is None:
            super().sleep(response)
            return
        wait = self.get_retry_after(response) if response is not None else None
        stop.wait(wait or max(self.get_backoff_time(), 0.0))

    def get_backoff_time(self) -> float:
        return self._within_deadline(super().get_backoff_time())

    def get_retry_after(self, response: Any) -> float | None:
        wait = super().get_retry_after(response)
        return None if wait is None else self._within_deadline(wait)

    def _within_deadline(self, wait: float) -> float:
        left = self.remaining()
        return wait if left is None else max(0.0, min(wait, left))


def retry_policy(
    *,
    methods: Collection[str] | None,
    statuses: Collection[int],
    total: int,
    connect: int,
    read: int,
    status: int,
    other: int | None = None,
    retry_after_max_s: int = 30,
    backoff_max_s: float = Retry.DEFAULT_BACKOFF_MAX,
    backoff_factor_s: float = BACKOFF_FACTOR_S,
    backoff_jitter_s: float = BACKOFF_JITTER_S,
    remaining: Remaining | None = None,
) -> Retry:
    """A `Retry` for `HTTPAdapter(max_retries=)`.

    `methods` may be retried after a dropped connection or on `statuses` (None: every
    method); `connect` counts connections that could not be opened (nothing was sent);
    `remaining` bounds waits and attempts by a run's deadline. Statuses come back as
    responses (`raise_on_status=False`), for the caller's own error.
    """
    policy = _Retry(
        total=total,
        connect=connect,
        read=read,
        status=status,
        other=other,
        allowed_methods=frozenset(methods) if methods is not None else None,
        status_forcelist=frozenset(statuses),
        backoff_factor=backoff_factor_s,
        backoff_jitter=backoff_jitter_s,
        backoff_max=backoff_max_s,
        retry_after_max=retry_after_max_s,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    if remaining is not None:
        policy.remaining = remaining
    return policy
