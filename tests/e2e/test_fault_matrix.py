"""The fault matrix: every call a rotation makes x every way it can fail, with the probe.

Calls: the lock's create and delete, the binding create (and its broker job), the test call
to CPI, the env PATCH, the deployment's create and polls, the old binding's delete (and its
job), the rotation record. Faults: 500 once, 500 always, 503 always, 429 (twice, with
Retry-After), the connection dropped before the server acts, dropped after it acted, the
broker job FAILED, the call slowed past the run's deadline; and per step a SIGTERM (the
cancel event the signal handler sets) and a SIGKILL of a real `cpi-cert-rotate rotate`.

For every case: the outcome is one the step allows and its exit code matches; the app is
consistent (env chain and key pair up, a live binding registers the env's leaf, every
instance runs that leaf); the probe calling through the app never failed (overlap keeps
both certificates registered while either may be in use); and a re-run without the fault
converges: the new certificate live everywhere, one binding, no lock left, the rotation
recorded. Sandbox timings are short (2 instances, 50 ms starts and job steps, 3 s call
timeouts, retry backoff scaled down) so that `-n auto` spreads the matrix in minutes.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rotation_kit import (
    accepted_leaves,
    assert_consistent,
    instance_leaves,
    request_for,
    the_app,
)

from cf_sandbox import Landscape
from checkout_kit import checkout_env
from cpi_cert_rotate.cf import CfClient
from cpi_cert_rotate.models import Outcome, Report, RotationRequest
from cpi_cert_rotate.rotation import rotate
from cpi_cert_rotate.rotation.annotations import AnnotationKeys

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CALL_TIMEOUT_S = 3.0
RUN_TIMEOUT_S = 20.0
SLOW_RUN_TIMEOUT_S = 6.0
SLOW_DELAY_S = 8.0
LOCK = "cpi-cert-rotate-lock-ntifext"


@dataclass(frozen=True)
class Call:
    """One call of a rotation: its step and how the sandbox recognises it."""

    step: str
    method: str
    path: str
    server: str = "cc"
    job: str | None = None
    creates: bool = False
    """A POST: a drop after the server acted leaves something the client never saw."""
    polled: bool = False

    def rule(self, **fault: Any) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "server": self.server, **fault}


CALLS = {
    "lock-create": Call("lock", "POST", r"^/v3/service_instances$", creates=True),
    "bind": Call(
        "set",
        "POST",
        r"^/v3/service_credential_bindings$",
        job="service_bindings.create",
        creates=True,
    ),
    "test-call": Call("test", "POST", r"^/http/ping$", server="cpi"),
    "env-patch": Call("promote", "PATCH", r"^/v3/apps/[^/]+/environment_variables$"),
    "deploy-create": Call("deploy", "POST", r"^/v3/deployments$", creates=True),
    "deploy-poll": Call("deploy", "GET", r"^/v3/deployments/[^/]+$", polled=True),
    "old-binding-delete": Call(
        "finish",
        "DELETE",
        r"^/v3/service_credential_bindings/[^/]+$",
        job="service_bindings.delete",
    ),
    "record": Call("finish", "PATCH", r"^/v3/apps/[^/]+$"),
    "lock-release": Call("release", "DELETE", r"^/v3/service_instances/[^/]+$"),
}

FAULTS: dict[str, dict[str, Any]] = {
    "500-once": {"status": 500, "times": 1},
    "500-always": {"status": 500},
    "503-always": {"status": 503},
    "429-twice": {"status": 429, "headers": {"Retry-After": "1"}, "times": 2},
    "drop-before": {"drop_connection": True, "times": 1},
    "drop-after-apply": {"drop_connection": True, "after_apply": True, "times": 1},
    "slow-past-deadline": {"delay_s": SLOW_DELAY_S, "times": 1},
}

# What each step's failure may end in. Before the set step nothing changed (failed); a
# failure in set, test, promote or deploy is undone (rolled back) unless a retry absorbed
# it (rotated); in finish and release the new certificate is live whatever happens.
ALLOWED = {
    "lock": {Outcome.FAILED, Outcome.ROTATED},
    "set": {Outcome.ROLLED_BACK, Outcome.FAILED, Outcome.ROTATED},
    "test": {Outcome.ROLLED_BACK, Outcome.ROTATED},
    "promote": {Outcome.ROLLED_BACK, Outcome.ROTATED},
    "deploy": {Outcome.ROLLED_BACK, Outcome.ROTATED},
    "finish": {Outcome.ROTATED, Outcome.CLEANUP_INCOMPLETE},
    "release": {Outcome.ROTATED},
}
EXIT = {
    Outcome.ROTATED: 0,
    Outcome.ALREADY_CURRENT: 0,
    Outcome.FAILED: 1,
    Outcome.ROLLED_BACK: 1,
    Outcome.CLEANUP_INCOMPLETE: 3,
}


def _cases() -> list[Any]:
    cases = []
    for call_name, call in CALLS.items():
        for fault_name in FAULTS:
            if fault_name == "drop-after-apply" and (call.server == "cpi" or call.polled):
                continue  # a read or CPI's answer: nothing to apply
            marks = [pytest.mark.slow] if fault_name == "slow-past-deadline" else []
            cases.append(pytest.param(call_name, fault_name, id=f"{call_name}-{fault_name}",
                                      marks=marks))  # fmt: skip
        if call.job:
            cases.append(pytest.param(call_name, "job-failed", id=f"{call_name}-job-failed"))
    return cases


@pytest.fixture(autouse=True)
def _quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's retry backoff (0-1-2-4 s) scaled down like the sandbox's timings: the
    matrix checks where a run ends, not how long it waits (bench/ measures that)."""
    from cpi_cert_rotate.cf import http, outage

    monkeypatch.setattr(http, "_BACKOFF_FACTOR_S", 0.05)
    monkeypatch.setattr(http, "_BACKOFF_JITTER_S", 0.0)
    # A fault that never ends ("503-always") on a call the rollback repeats (the env PATCH,
    # a deployment's read) would be waited out for 120 s per call (`cf/outage.py`); here
    # it fails after one call's retries, as before. test_cc_outage.py covers the wait.
    monkeypatch.setattr(outage, "CC_WAIT_MAX_S", 0.0)


def _short_timeouts(request: RotationRequest) -> CfClient:
    return CfClient(request.target.api_url, request.auth, timeout_s=CALL_TIMEOUT_S)


def _request(ls: Landscape, minted: Any, timeout_s: float = RUN_TIMEOUT_S) -> RotationRequest:
    return request_for(ls, minted.chain_pem, minted.key_pem, timeout_s=timeout_s,
                       verify_timeout_s=2.0)  # fmt: skip


def _assert_ends_consistent(ls: Landscape, report: Report, old: str, new: str) -> None:
    """Consistent after any outcome: old everywhere, or new everywhere (bar old bindings)."""
    assert report.exit_code == EXIT[report.outcome]
    live = assert_consistent(ls)
    expected = new if report.rotated else old
    assert live == expected, report.outcome
    assert set(instance_leaves(ls)) == {expected}
    if report.rotated:
        assert report.verified
    else:
        assert new not in accepted_leaves(ls), "a rolled-back certificate is still registered"
        assert report.state_left == ()
    if report.outcome is Outcome.CLEANUP_INCOMPLETE:
        assert report.state_left, "cleanup-incomplete must say what is left"
        assert accepted_leaves(ls) - {new}, "it said an old binding is left; none is"


def _assert_converged(ls: Landscape, rerun: Report, new: str) -> None:
    assert rerun.outcome in (Outcome.ROTATED, Outcome.ALREADY_CURRENT), (
        rerun.error,
        rerun.state_left,
    )
    assert assert_consistent(ls) == new
    assert accepted_leaves(ls) == {new}
    assert set(instance_leaves(ls)) == {new}
    assert the_app(ls)["annotations"][AnnotationKeys().fingerprint] == new
    with ls.store.lock:
        assert not [si for si in ls.store.instances.values() if si.name == LOCK], "lock left"


@pytest.mark.parametrize(("call_name", "fault_name"), _cases())
def test_fault(
    landscape_factory: Callable[..., Landscape], call_name: str, fault_name: str
) -> None:
    call = CALLS[call_name]
    ls = landscape_factory(instances=2)
    old = assert_consistent(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    if fault_name == "job-failed":
        ls.add_fault({"job": call.job, "fail": True, "times": 1})
    else:
        ls.add_fault(call.rule(**FAULTS[fault_name]))
    timeout = SLOW_RUN_TIMEOUT_S if fault_name == "slow-past-deadline" else RUN_TIMEOUT_S
    ls.probe_start(rps=20)
    report = rotate(_request(ls, minted, timeout), client_factory=_short_timeouts)
    assert all(rule["fired"] >= 1 for rule in ls.faults()), f"the fault never fired: {ls.faults()}"
    ls.clear_faults()
    assert report.outcome in ALLOWED[call.step], (report.outcome, report.error, report.state_left)
    _assert_ends_consistent(ls, report, old, minted.leaf_sha256)

    rerun = rotate(_request(ls, minted), client_factory=_short_timeouts)
    ls.probe_stop()
    if call_name == "lock-release" and fault_name in ("500-always", "503-always"):
        # The lock could not be removed: the report says so and how to remove it; it
        # expires by itself. A re-run with nothing to change does not need it.
        assert any(f"cf delete-service {LOCK} -f" in w for w in report.warnings)
        assert rerun.outcome is Outcome.ALREADY_CURRENT
        with ls.store.lock:
            assert [si.name for si in ls.store.instances.values() if si.name == LOCK] == [LOCK]
            for si in list(ls.store.instances.values()):
                if si.name == LOCK:
                    del ls.store.instances[si.guid]  # as `cf delete-service` would
    _assert_converged(ls, rerun, minted.leaf_sha256)
    assert ls.probe()["failures"] == 0, ls.probe()["timeline"][-5:]


def test_the_new_binding_outlives_the_instances_that_may_present_it(
    landscape_factory: Callable[..., Landscape],
) -> None:
    """Deployments cannot be read (GET /v3/deployments/:guid answers 500; its first
    answer comes 2.5 s late, after the rollout restarted instances with the new env).
    The rollback restores the env and starts a deployment it cannot read either; the new
    binding, which those instances present to CPI, is deleted only once the app's
    deployment list shows that deployment DEPLOYED. It used to be deleted at once, and
    the probe failed while the old env rolled back."""
    ls = landscape_factory(instances=2, start_s=1.0)
    old = assert_consistent(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    read = CALLS["deploy-poll"]
    ls.add_fault(read.rule(status=500))
    ls.add_fault(read.rule(delay_s=2.5, times=1))
    ls.probe_start(rps=20)
    report = rotate(_request(ls, minted), client_factory=_short_timeouts)
    ls.probe_stop()
    ls.clear_faults()
    assert report.outcome is Outcome.ROLLED_BACK, (report.error, report.state_left)
    _assert_ends_consistent(ls, report, old, minted.leaf_sha256)
    assert ls.probe()["failures"] == 0, ls.probe()["timeline"][-5:]


# -- signals -------------------------------------------------------------------------------

SIGNAL_AT = {
    "lock": CALLS["lock-create"],
    "set": CALLS["bind"],
    "test": CALLS["test-call"],
    "promote": CALLS["env-patch"],
    "deploy": CALLS["deploy-create"],
    "finish": CALLS["old-binding-delete"],
}
SIGNAL_DELAY_S = 1.0
"""Each signal is sent while this call is in flight, slowed this much to be sure."""

SIGTERM_ENDS = {
    "lock": Outcome.FAILED,  # the cancel check before the set step: nothing changed
    "set": Outcome.ROLLED_BACK,
    "test": Outcome.ROLLED_BACK,
    "promote": Outcome.ROLLED_BACK,
    "deploy": Outcome.ROLLED_BACK,
    "finish": Outcome.ROTATED,  # live already: finishing beats undoing
}


def _in_flight(ls: Landscape) -> bool:
    """The slowed call has arrived: its fault rule fired (the sandbox counts a match when
    the request arrives, before the delay; its call log records a call only once
    answered, which for the lock step is too late: the run is then already binding)."""
    return any(rule["fired"] >= 1 for rule in ls.faults())


def _answered(ls: Landscape, call: Call, timeout_s: float = 15.0) -> bool:
    """Wait until the sandbox has answered `call` (to a client that may be dead by then).

    A server finishes a request whose client was killed, and so does Cloud Controller: a
    lock create slowed by 1 s and cut off by SIGKILL still makes the lock a second later.
    A re-run that finishes within that second (a small sandbox app rotates in under one)
    would leave it behind for the next run to take over, which is the lock's promise but
    not this test's scenario: a re-run that starts after the killed run's last call.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log = ls.cpi_calls() if call.server == "cpi" else ls.calls()
        if any(c["method"] == call.method and re.search(call.path, c["path"]) for c in log):
            return True
        time.sleep(0.01)
    return False


def _when_seen(ls: Landscape, act: Callable[[], None]) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 60
        while not _in_flight(ls) and time.monotonic() < deadline:
            time.sleep(0.01)
        act()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("step", list(SIGNAL_AT))
def test_sigterm(landscape_factory: Callable[..., Landscape], step: str) -> None:
    """SIGTERM only sets the run's cancel event (`signals.stop_requested_on_signals`);
    here the event is set directly while the step's call is in flight."""
    call = SIGNAL_AT[step]
    # Instances that take a second to start keep the deployment ACTIVE well after its
    # create answered, so the signal is seen while it rolls (not after it finished).
    ls = landscape_factory(instances=2, start_s=1.0)
    old = assert_consistent(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault(call.rule(delay_s=SIGNAL_DELAY_S, times=1))
    cancel = threading.Event()
    watcher = _when_seen(ls, cancel.set)
    ls.probe_start(rps=20)
    report = rotate(_request(ls, minted), cancel=cancel, client_factory=_short_timeouts)
    watcher.join()
    assert report.outcome is SIGTERM_ENDS[step], (report.error, report.state_left)
    if report.outcome is not Outcome.ROTATED:
        assert report.error_code == "cancelled"
    _assert_ends_consistent(ls, report, old, minted.leaf_sha256)
    ls.clear_faults()
    _assert_converged(ls, rotate(_request(ls, minted), client_factory=_short_timeouts),
                      minted.leaf_sha256)  # fmt: skip
    ls.probe_stop()
    assert ls.probe()["failures"] == 0


@pytest.mark.parametrize("step", list(SIGNAL_AT))
def test_sigkill_then_rerun(
    landscape_factory: Callable[..., Landscape], step: str, tmp_path: Path
) -> None:
    """A real `cpi-cert-rotate rotate` killed with SIGKILL mid-step: nothing is undone,
    the lock stays; a re-run on the same machine takes the lock over (its process has
    ended) and finishes, whatever the step was."""
    call = SIGNAL_AT[step]
    ls = landscape_factory(instances=2)
    assert_consistent(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault(call.rule(delay_s=SIGNAL_DELAY_S, times=1))
    (tmp_path / "ca.pem").write_text(ls.ca_pem)
    (tmp_path / "roots.pem").write_text(ls.trusted_root_pem)
    command = [
        sys.executable, "-m", "cpi_cert_rotate", "rotate",
        "--cf-api", ls.api_url, "--cf-username", ls.username,
        "--cf-password-env", "TEST_CF_PASSWORD", "--cf-origin", ls.origin,
        "--cf-ca-cert", str(tmp_path / "ca.pem"), "--trusted-roots", str(tmp_path / "roots.pem"),
        "--cf-org", ls.org, "--cf-space", ls.space,
        "--app", ls.app, "--service-instance", ls.service_instance,
        "--chain-env", "TEST_CHAIN", "--key-env", "TEST_KEY", "--verify-path", "/http/ping",
    ]  # fmt: skip
    env = checkout_env(TEST_CF_PASSWORD=ls.password)
    env.update({"TEST_CHAIN": minted.chain_pem, "TEST_KEY": minted.key_pem})
    ls.probe_start(rps=20)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    watcher = _when_seen(ls, lambda: process.send_signal(signal.SIGKILL))
    process.wait(timeout=60)
    watcher.join()
    assert process.returncode == -signal.SIGKILL, "the run ended before it was killed"
    ls.clear_faults()
    assert _answered(ls, call), f"the killed run's {call.method} {call.path} went unanswered"
    rerun = rotate(_request(ls, minted), client_factory=_short_timeouts)
    _assert_converged(ls, rerun, minted.leaf_sha256)
    ls.probe_stop()
    assert ls.probe()["failures"] == 0, ls.probe()["timeline"][-5:]
