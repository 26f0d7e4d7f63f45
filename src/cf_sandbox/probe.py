"""The probe: steady traffic "through" the app, to measure what a rotation costs its users.

At `rps` calls per second it picks the next RUNNING instance round-robin (the router's
job) and lets that instance call the iFlow with its own snapshot of chain, key and URL.
Every call is recorded; `longest_outage_s` is the longest run of consecutive failures,
measured from its first failure to the next success (or to its last failure if the run
has not ended), so even a single failed call counts as an outage of one interval.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .instances import CallResult, Runtime


class Probe:
    """A load generator against one app."""

    def __init__(self, runtime: Runtime, app_guid: str, ca_pem: str) -> None:
        self._runtime = runtime
        self._app_guid = app_guid
        self._ca_pem = ca_pem
        self._lock = threading.Lock()
        self._timeline: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._rps = 0.0

    @property
    def running(self) -> bool:
        """Whether calls are being made."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, rps: float = 20.0) -> None:
        """(Re)start at `rps` calls per second; resets the counters."""
        if rps <= 0:
            raise ValueError("rps must be > 0")
        self.stop()
        with self._lock:
            self._timeline = []
            self._t0 = time.monotonic()
            self._rps = rps
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(rps,), name="sandbox-probe", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop calling; the results stay readable."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def _run(self, rps: float) -> None:
        interval = 1.0 / rps
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.call_once()
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < -interval:  # fell behind (a slow call): do not burst to catch up
                next_at = time.monotonic()
            elif delay > 0:
                self._stop.wait(delay)

    def call_once(self) -> dict[str, Any]:
        """Make one call through the app now and record it."""
        started = time.monotonic()
        inst = self._runtime.pick(self._app_guid)
        entry: dict[str, Any] = {"t": round(started - self._t0, 4)}
        if inst is None:
            entry.update(instance=None, ok=False, status=None, error="no running instance")
        else:
            try:
                result = inst.call(self._ca_pem)
            except Exception as error:  # the probe must outlive any one broken call
                result = CallResult(False, None, f"probe error: {type(error).__name__}")
            entry.update(
                instance=inst.index,
                instance_guid=inst.guid,
                leaf_sha256=inst.snapshot.leaf_sha256,
                ok=result.ok,
                status=result.status,
                error=result.error,
            )
        entry["duration_s"] = round(time.monotonic() - started, 4)
        with self._lock:
            self._timeline.append(entry)
        return entry

    def result(self) -> dict[str, Any]:
        """`{"calls","failures","longest_outage_s","timeline"}` (also while running)."""
        with self._lock:
            timeline = list(self._timeline)
        return {
            "running": self.running,
            "rps": self._rps,
            "calls": len(timeline),
            "failures": sum(1 for e in timeline if not e["ok"]),
            "longest_outage_s": longest_outage(timeline),
            "timeline": timeline,
        }


def longest_outage(timeline: list[dict[str, Any]]) -> float:
    """Longest span of consecutive failures, in seconds (see the module docstring)."""
    longest = 0.0
    first_failure: float | None = None
    last_failure = 0.0
    for entry in timeline:
        if not entry["ok"]:
            if first_failure is None:
                first_failure = entry["t"]
            last_failure = entry["t"]
            continue
        if first_failure is not None:
            longest = max(longest, entry["t"] - first_failure)
            first_failure = None
    if first_failure is not None:
        longest = max(longest, last_failure - first_failure)
    return round(longest, 4)
