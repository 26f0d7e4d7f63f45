"""The poll loop's schedule and deadline, on a virtual clock; jobs turned into errors."""

from __future__ import annotations

import pytest

from cpi_cert_rotate.cf import CfJobFailed, CfTimeout, Job, JobError
from cpi_cert_rotate.cf.polling import FIRST_DELAY_S, job_failure, poll


class VirtualClock:
    """`time.monotonic` + `time.sleep` that only move when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 4))
        self.now += seconds


def test_polls_start_fast_and_back_off_to_the_cap() -> None:
    vc = VirtualClock()
    answers = iter(["PROCESSING"] * 9 + ["COMPLETE"])
    state = poll(
        lambda: next(answers),
        lambda s: s == "COMPLETE",
        deadline=vc.now + 60,
        cap_s=1.0,
        what="a job",
        sleep=vc.sleep,
        clock=vc.clock,
    )
    assert state == "COMPLETE"
    assert vc.sleeps[0] == FIRST_DELAY_S
    assert vc.sleeps == sorted(vc.sleeps)
    assert vc.sleeps[-3:] == [1.0, 1.0, 1.0]
    assert len(vc.sleeps) == 9


def test_deadline_cuts_the_last_sleep_and_raises_timeout() -> None:
    vc = VirtualClock()
    with pytest.raises(CfTimeout) as caught:
        poll(
            lambda: "PROCESSING",
            lambda s: s == "COMPLETE",
            deadline=vc.now + 2.0,
            cap_s=3.0,
            what="deleting the binding",
            guid="job-9",
            sleep=vc.sleep,
            clock=vc.clock,
        )
    assert vc.now == pytest.approx(102.0)  # never slept past the deadline
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.resource_guid == "job-9"
    assert str(caught.value).startswith("deleting the binding (job-9) did not finish")


def test_work_done_at_the_deadline_is_not_a_timeout() -> None:
    vc = VirtualClock()
    assert (
        poll(
            lambda: "COMPLETE",
            lambda s: s == "COMPLETE",
            deadline=vc.now - 5,
            cap_s=1.0,
            what="x",
            sleep=vc.sleep,
            clock=vc.clock,
        )
        == "COMPLETE"
    )
    assert vc.sleeps == []


def test_failed_job_becomes_cf_job_failed_with_the_first_error() -> None:
    job = Job(
        guid="job-1",
        operation="service_bindings.create",
        state="FAILED",
        errors=(
            JobError(
                10009, "CF-UnableToPerform", "bind could not be completed: Service broker error: no"
            ),
        ),
        resource_guid="binding-7",
    )
    error = job_failure(job, "creating the binding")
    assert isinstance(error, CfJobFailed)
    assert (error.status, error.code, error.title) == (0, 10009, "CF-UnableToPerform")
    assert (error.job_guid, error.binding_guid) == ("job-1", "binding-7")
    assert str(error) == (
        "creating the binding failed (job job-1, service_bindings.create): CF-UnableToPerform "
        "(10009): bind could not be completed: Service broker error: no"
    )


def test_failed_job_without_errors_still_says_so() -> None:
    error = job_failure(Job(guid="j", operation="", state="FAILED"), "deleting", binding_guid="b")
    assert error.binding_guid == "b"
    assert str(error) == "deleting failed (job j, operation unknown): no error detail given"
