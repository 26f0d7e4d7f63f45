"""Independent Cloud Controller calls at once: one round trip instead of several.

At 100 ms between a runner and Cloud Controller each sequential call costs its round
trip; calls that need nothing from each other (the bindings, the env vars and the active
deployments of one app) can be in flight together over the session's pooled connections
(urllib3 pools are thread-safe). Every call ends before anything is returned or raised,
so no call outlives its step.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["together"]

MAX_AT_ONCE = 6
"""Never more calls at once than this (requests' pools keep 10 connections per host)."""


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run `calls` at once; their results in order. The first failure, in the order of
    `calls`, is raised once all have ended."""
    if len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(len(calls), MAX_AT_ONCE)) as pool:
        futures = [pool.submit(call) for call in calls]
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]
