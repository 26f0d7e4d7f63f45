"""Cloud Controller down while a rollback runs: calls safe to repeat wait it out.

A CF platform update rolls the Cloud Controller instances, and the router answers 502/503
for tens of seconds. The rollback's GETs, its env PATCH and its binding DELETEs are sent
again after such an outage, with growing pauses, within the rollback's budget
(`cpi_cert_rotate/cf/outage.py`); a POST (a binding create) is sent once, as before, and
the report's state is read afresh after it; the forward steps fail fast; SIGTERM ends the
wait at once. An outage is a count of 503 answers (`times`): one call's own retries are
five answers (0 + 1 + 2 + 4 s), so 8 or 10 outlast them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from outage_kit import TEST_CALL_FAILS, assert_stopped_at_once, sigterm_once
from rotation_kit import assert_consistent, live_binding_leaves, request_for, write_calls

from cf_sandbox import Landscape
from cpi_cert_rotate.errors import ExitCode
from cpi_cert_rotate.models import Outcome, StepEvent, StepFinished, Strategy
from cpi_cert_rotate.rotation.engine import rotate

pytestmark = pytest.mark.e2e

BINDINGS = "/v3/service_credential_bindings"
ONE_BINDING = f"^{BINDINGS}/[^/]+$"


def _cc_503s(ls: Landscape, since: int = 0) -> int:
    return sum(1 for c in ls.calls()[since:] if c["path"].startswith("/v3/") and c["status"] == 503)


def _on_failed_step(
    *rules: dict[str, Any], ls: Landscape, start: list[int]
) -> Callable[[StepEvent], None]:
    """An `on_step` that adds `rules` once, when the first step fails (the rollback starts
    right after), and notes in `start` how many calls were made until then."""

    def listener(event: StepEvent) -> None:
        if isinstance(event, StepFinished) and event.result.status == "failed" and not start:
            start.append(len(ls.calls()))
            for rule in rules:
                ls.add_fault(rule)

    return listener


def test_the_rollback_waits_out_a_cc_outage_and_removes_the_new_binding(
    landscape: Landscape,
) -> None:
    # Every Cloud Controller call of the rollback meets the outage first: the read of the
    # new binding before its delete, then whatever follows.
    ls = landscape
    old_leaf = assert_consistent(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault(TEST_CALL_FAILS)
    start: list[int] = []
    outage = {"server": "cc", "path": "^/v3/", "status": 503, "times": 8}
    began = time.monotonic()
    report = rotate(
        request_for(ls, minted.chain_pem, minted.key_pem),
        on_step=_on_failed_step(outage, ls=ls, start=start),
    )
    assert report.outcome is Outcome.ROLLED_BACK, (report.error, report.state_left)
    assert report.exit_code is ExitCode.FAILED
    assert report.state_left == ()
    assert "did not accept the new certificate" in (report.error or "")
    assert _cc_503s(ls, start[0]) == 8
    assert assert_consistent(ls) == old_leaf
    assert minted.leaf_sha256 not in live_binding_leaves(ls)
    assert time.monotonic() - began < 30


def test_the_rollback_waits_out_a_cc_outage_to_restore_the_env(landscape: Landscape) -> None:
    # The deployment is refused once (quota) after the env PATCH: the undo PATCHes the
    # previous chain and key back, and that PATCH meets the outage.
    ls = landscape
    old_leaf = assert_consistent(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault({"deployment": "quota", "times": 1})
    start: list[int] = []
    outage = {
        "server": "cc",
        "method": "PATCH",
        "path": "/environment_variables$",
        "status": 503,
        "times": 8,
    }
    report = rotate(
        request_for(ls, minted.chain_pem, minted.key_pem),
        on_step=_on_failed_step(outage, ls=ls, start=start),
    )
    assert report.outcome is Outcome.ROLLED_BACK, (report.error, report.state_left)
    assert report.state_left == ()
    patches = [
        c["status"]
        for c in write_calls(ls, start[0])
        if c["method"] == "PATCH" and c["path"].endswith("/environment_variables")
    ]
    assert patches == [503] * 8 + [200], patches
    assert assert_consistent(ls) == old_leaf
    assert minted.leaf_sha256 not in live_binding_leaves(ls)


def test_a_swap_rollback_sends_its_binding_create_once_after_the_outage(
    landscape: Landscape,
) -> None:
    # Swap deleted the live binding; its undo binds the old leaf again (a POST, not
    # idempotent). The reads of single bindings before both undo steps meet 10 answers
    # 503 (two calls' retries: before, neither undo got as far as its write); the rebind
    # POST is answered 503 every time. It is sent once, not again after a pause, and the
    # report's state is read afresh: no binding registers the old leaf.
    ls = landscape
    old_leaf = assert_consistent(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault(TEST_CALL_FAILS)
    start: list[int] = []
    reads = {"server": "cc", "method": "GET", "path": ONE_BINDING, "status": 503, "times": 10}
    creates = {"server": "cc", "method": "POST", "path": f"^{BINDINGS}$", "status": 503}
    report = rotate(
        request_for(ls, minted.chain_pem, minted.key_pem, strategy=Strategy.SWAP),
        on_step=_on_failed_step(reads, creates, ls=ls, start=start),
    )
    assert report.outcome is Outcome.ROLLBACK_INCOMPLETE, (report.error, report.state_left)
    posts = [
        c["status"]
        for c in write_calls(ls, start[0])
        if c["method"] == "POST" and c["path"] == BINDINGS
    ]
    assert posts == [503], posts
    assert any("registers the previous certificate" in s for s in report.state_left)
    assert not any("registers the new certificate" in s for s in report.state_left)
    assert minted.leaf_sha256 not in live_binding_leaves(ls)
    assert old_leaf not in live_binding_leaves(ls)


def test_a_cc_outage_before_any_change_fails_fast(landscape: Landscape) -> None:
    ls = landscape
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault({"server": "cc", "method": "GET", "path": "^/v3/apps", "status": 503})
    started = time.monotonic()
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    took = time.monotonic() - started
    assert report.outcome is Outcome.FAILED, report.error
    assert "answered 503" in (report.error or "")
    assert write_calls(ls) == []
    assert took < 15, f"the run failed after {took:.0f}s, not fast"


def _delete_503s(ls: Landscape) -> int:
    return sum(
        1
        for c in ls.calls()
        if c["method"] == "DELETE" and c["path"].startswith(BINDINGS) and c["status"] == 503
    )


@pytest.mark.parametrize(
    ("when", "seen_503s"),
    [("in-the-pause", 5), ("in-a-retry-backoff", 9)],
    ids=["in-the-pause", "in-a-retry-backoff"],
)
def test_sigterm_ends_the_wait_for_cloud_controller_at_once(
    landscape: Landscape, tmp_path: Path, when: str, seen_503s: int
) -> None:
    # The CLI as a user runs it. The test call fails; the rollback's delete of the new
    # binding is answered 503 every time. 5 answers are one try's retries (0 + 1 + 2 + 4
    # s): after the 5th the rollback pauses 2-3 s; after the 9th the second try sleeps
    # 4 s in urllib3's backoff. SIGTERM there ends the wait at once, with an exact report.
    ls = landscape
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault(TEST_CALL_FAILS)
    ls.add_fault({"server": "cc", "method": "DELETE", "path": ONE_BINDING, "status": 503})
    result = sigterm_once(
        ls, tmp_path, minted, f"{seen_503s} DELETE 503s", lambda: _delete_503s(ls) >= seen_503s
    )
    assert_stopped_at_once(result, when, minted.leaf_sha256)
    assert _delete_503s(ls) <= seen_503s + 1, "a DELETE was sent again after SIGTERM"
