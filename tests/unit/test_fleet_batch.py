"""A batch of targets: the bound, one login shared, a failure or a bug of one target, a stop.

The login is a real one against the loopback UAA + Cloud Controller fake (cf_fake.py);
the engine is replaced by a stand-in that records what it was given and calls Cloud
Controller through the client it is handed, so the shared login is exercised for real.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import trustme
from cf_fake import FakeCf, user_auth

from cpi_cert_rotate.errors import CfApiError, ExitCode
from cpi_cert_rotate.fleet.batch import TargetResult, current_target, rotate_batch, worst
from cpi_cert_rotate.models import CfTarget, Outcome, Report, RotationRequest
from cpi_cert_rotate.request.build import Settings
from cpi_cert_rotate.request.targets import Batch, TargetRun


def _batch(fake: FakeCf, ca: trustme.CA, apps: list[str], parallel: int, **auth: Any) -> Batch:
    runs = tuple(
        TargetRun(
            f"acme/prod/{app}",
            line,
            Settings(
                RotationRequest(
                    target=CfTarget(fake.url, "acme", "prod", app, "CPI-Runtime"),
                    auth=user_auth(ca, **auth),
                    dry_run=True,
                )
            ),
        )
        for line, app in enumerate(apps, 2)
    )
    return Batch("targets.yml", runs, parallel)


class Engine:
    """Stands in for `rotation.rotate`: one Cloud Controller call through the client it
    is given, a pause, and a report; counts how many run at once."""

    def __init__(self, fail: str = "", crash: str = "", pause_s: float = 0.05) -> None:
        self.fail, self.crash, self.pause_s = fail, crash, pause_s
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.labels: list[str | None] = []

    def __call__(self, request: RotationRequest, **kw: Any) -> Report:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.labels.append(current_target.get())
        try:
            with kw["client_factory"](request) as client:
                client.authenticate()  # what observe does first: no new grant when shared
                client.get_app("app-1")
            time.sleep(self.pause_s)
            if request.target.app == self.crash:
                raise KeyError("a bug")
            outcome = Outcome.ROLLED_BACK if request.target.app == self.fail else Outcome.DRY_RUN
            return Report(outcome, request.target, finished_at=datetime.now(UTC))
        finally:
            with self.lock:
                self.running -= 1


def _grants(fake: FakeCf) -> int:
    return sum(1 for c in fake.calls if c.path == "/oauth/token")


def test_at_most_parallel_run_at_once_after_one_login(fake: FakeCf, ca: trustme.CA) -> None:
    engine = Engine(pause_s=0.1)
    apps = [f"app-{i}" for i in range(6)]
    done: list[str] = []
    results = rotate_batch(
        _batch(fake, ca, apps, 2),
        rotate=engine,
        on_done=lambda r: done.append(r.target.label),
    )
    assert [r.target.label for r in results] == [f"acme/prod/{a}" for a in apps]  # file order
    assert engine.most == 2
    assert sorted(done) == sorted(r.target.label for r in results)
    assert sorted(engine.labels) == sorted(f"acme/prod/{a}" for a in apps)  # per thread
    assert _grants(fake) == 1  # one login, shared by the six clients


def test_one_failure_or_bug_stops_none_and_the_worst_code_wins(
    fake: FakeCf, ca: trustme.CA
) -> None:
    engine = Engine(fail="b", crash="c")
    results = rotate_batch(_batch(fake, ca, ["a", "b", "c", "d"], 2), rotate=engine)
    outcomes = {r.report.target.app: r.report for r in results}
    assert outcomes["a"].outcome is outcomes["d"].outcome is Outcome.DRY_RUN
    assert outcomes["b"].outcome is Outcome.ROLLED_BACK
    assert (outcomes["c"].outcome, outcomes["c"].error_code) == (Outcome.FAILED, "internal-error")
    assert "KeyError" in (outcomes["c"].error or "")
    assert worst(r.report.exit_code for r in results) is ExitCode.FAILED


def test_a_refused_login_raises_before_any_target(fake: FakeCf, ca: trustme.CA) -> None:
    engine = Engine()
    with pytest.raises(CfApiError) as caught:
        rotate_batch(_batch(fake, ca, ["a", "b", "c"], 2, password="wrong-1"), rotate=engine)
    assert caught.value.status == 401
    assert engine.labels == []
    assert _grants(fake) == 1  # tried once, not once per target


def test_a_stop_leaves_the_targets_not_started_untouched(fake: FakeCf, ca: trustme.CA) -> None:
    cancel = threading.Event()

    def stop_after_first(result: TargetResult) -> None:
        cancel.set()  # as SIGTERM would, while the first target ends

    engine = Engine()
    results = rotate_batch(
        _batch(fake, ca, ["a", "b", "c"], 1), rotate=engine, cancel=cancel, on_done=stop_after_first
    )
    assert [r.report.outcome for r in results] == [Outcome.DRY_RUN, Outcome.FAILED, Outcome.FAILED]
    assert [r.report.error_code for r in results[1:]] == ["not-started", "not-started"]
    assert engine.labels == ["acme/prod/a"]


def test_a_failing_result_printer_loses_no_target(fake: FakeCf, ca: trustme.CA) -> None:
    def broken(result: TargetResult) -> None:
        raise BrokenPipeError

    results = rotate_batch(_batch(fake, ca, ["a", "b"], 2), rotate=Engine(), on_done=broken)
    assert [r.report.outcome for r in results] == [Outcome.DRY_RUN, Outcome.DRY_RUN]
