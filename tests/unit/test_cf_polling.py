"""The poll loop's schedule and deadline, on a virtual clock; jobs turned into errors."""

from __future__ import annotations

import pytest

from cpi_cert_rotate.cf import CfJobFailed, CfTimeout, Job, JobError
from cpi_cert_rotate.cf.polling import (
    FIRST_DELAY_S,
    LONG_WAIT_SHARE,
    MIN_STEP_S,
    OVERDUE_SHARE,
    Waited,
    job_failure,
    poll,
    wait_for,
)


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
    answers = iter(["PROCESSING"] * 60 + ["COMPLETE"])
    state = poll(
        lambda: next(answers),
        lambda s: s == "COMPLETE",
        deadline=vc.now + 600,
        cap_s=1.0,
        what="a job",
        sleep=vc.sleep,
        clock=vc.clock,
    )
    assert state == "COMPLETE"
    assert vc.sleeps[0] == FIRST_DELAY_S
    assert vc.sleeps == sorted(vc.sleeps)
    assert vc.sleeps[-3:] == [1.0, 1.0, 1.0]
    # each pause is a share of the time waited: a 1 s job is seen within 0.1 s
    assert all(p <= max(LONG_WAIT_SHARE * t, FIRST_DELAY_S) + 1e-3 for t, p in _waited(vc))


def _waited(vc: VirtualClock) -> list[tuple[float, float]]:
    """(time waited before each pause, the pause)."""
    out, total = [], 0.0
    for pause in vc.sleeps:
        out.append((total, pause))
        total += pause
    return out


def test_a_wait_with_an_expected_end_polls_just_after_it() -> None:
    vc = VirtualClock()
    end = vc.now + 2.0
    state = wait_for(
        lambda: "COMPLETE" if vc.now >= end else "PROCESSING",
        lambda s: s == "COMPLETE",
        deadline=vc.now + 60,
        what="a job",
        expected_s=2.0,
        sleep=vc.sleep,
        clock=vc.clock,
    )
    assert state == "COMPLETE"
    assert len(vc.sleeps) == 1  # one poll at the start, one just after the expected end
    assert vc.now - end == pytest.approx(0.01)


def test_a_job_later_than_expected_is_polled_finely_then_backs_off() -> None:
    vc = VirtualClock()
    end = vc.now + 3.0
    wait_for(
        lambda: "COMPLETE" if vc.now >= end else "PROCESSING",
        lambda s: s == "COMPLETE",
        deadline=vc.now + 60,
        what="a job",
        expected_s=2.0,
        sleep=vc.sleep,
        clock=vc.clock,
    )
    assert vc.now - end <= OVERDUE_SHARE * 1.0 + MIN_STEP_S  # 1 s overdue: seen within 0.55 s
    assert vc.sleeps[1] == MIN_STEP_S  # overdue: polls come close together at first


def test_the_waited_time_is_learned_for_the_next_wait_of_its_kind() -> None:
    vc = VirtualClock()
    record = Waited()
    end = vc.now + 1.0
    wait_for(
        lambda: vc.now >= end, bool, deadline=vc.now + 60, what="a job", record=record,
        sleep=vc.sleep, clock=vc.clock,
    )  # fmt: skip
    assert record.seconds is not None
    assert 0.8 < record.seconds <= 1.0  # a lower bound: the next wait polls early, not late


def test_retry_after_is_the_least_pause() -> None:
    vc = VirtualClock()
    answers = iter([False, False, True])
    wait_for(
        lambda: next(answers), bool, deadline=vc.now + 60, what="a job",
        retry_after=lambda: 2.0, sleep=vc.sleep, clock=vc.clock,
    )  # fmt: skip
    assert vc.sleeps == [2.0, 2.0]


def test_check_runs_before_every_poll() -> None:
    vc = VirtualClock()

    def stop() -> None:
        if vc.now > 100.2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wait_for(
            lambda: False, bool, deadline=vc.now + 60, what="x", check=stop,
            sleep=vc.sleep, clock=vc.clock,
        )  # fmt: skip
    assert vc.now < 100.4


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


def test_a_wait_in_steps_aims_at_each_step_end_and_sees_the_last_promptly() -> None:
    """Ten 0.5 s steps: once the first is seen, polls come about once a step, and the end
    is seen within a poll's minimum step, not a share of the whole wait."""
    vc = VirtualClock()
    start = vc.now

    def fetch() -> tuple[bool, int]:
        done = int((vc.now - start) / 0.5)
        return done >= 10, min(done, 10)

    wait_for(
        fetch,
        lambda v: v[0],
        deadline=vc.now + 60,
        what="a deployment",
        progress=lambda v: v[1],
        steps=10,
        sleep=vc.sleep,
        clock=vc.clock,
    )
    assert vc.now - (start + 5.0) <= MIN_STEP_S + 0.02
    assert len(vc.sleeps) < 40  # not a poll every 50 ms for 5 s
