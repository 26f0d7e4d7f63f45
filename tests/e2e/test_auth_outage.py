"""UAA down while a rollback needs a token: the rollback waits it out within its budget.

The forward steps fail fast when the login fails (nothing changed yet), the rollback does
not give up after one call's retries (~7 s) but keeps asking for a token until its budget
is spent (`cpi_cert_rotate/cf/outage.py`), a binding create is never sent twice for it,
and SIGTERM ends the wait at once. The test call fails (CPI answers 500) so that a
rollback starts; the outage begins when that step has failed (`on_step`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from outage_kit import TEST_CALL_FAILS, assert_stopped_at_once, sigterm_once
from rotation_kit import assert_consistent, live_binding_leaves, request_for, write_calls

from cf_sandbox import Landscape
from cpi_cert_rotate.errors import ExitCode
from cpi_cert_rotate.models import Outcome, StepEvent, StepFinished, Strategy
from cpi_cert_rotate.rotation.engine import rotate

pytestmark = pytest.mark.e2e

UAA_DOWN = {"server": "uaa", "path": "^/oauth/token", "status": 503, "name": "uaa-down"}
TOKEN_REJECTED_ONCE = {"server": "cc", "path": "^/v3/", "status": 401, "times": 1}
OUTAGE_S = 12.0
"""Longer than one token call's retries (0 + 1 + 2 + 4 s and jitter), well within budget."""


def _token_503s(ls: Landscape) -> int:
    return sum(1 for c in ls.calls() if c["path"] == "/oauth/token" and c["status"] == 503)


@pytest.fixture
def timers() -> Iterator[list[threading.Timer]]:
    started: list[threading.Timer] = []
    yield started
    for timer in started:
        timer.cancel()


def _on_failed_step(action: Callable[[], None]) -> Callable[[StepEvent], None]:
    """An `on_step` that runs `action` once, when the first step fails (the rollback
    starts right after)."""
    done: list[bool] = []

    def listener(event: StepEvent) -> None:
        if isinstance(event, StepFinished) and event.result.status == "failed" and not done:
            done.append(True)
            action()

    return listener


def test_the_rollback_waits_out_a_uaa_outage_and_restores_the_app(
    landscape_factory: Callable[..., Landscape], timers: list[threading.Timer]
) -> None:
    # Tokens live 3 s and the test call answers after 2.5 s: the rollback's first call
    # needs a new token, and UAA answers 503 for OUTAGE_S from then on.
    ls = landscape_factory(token_ttl_s=3.0)
    old_leaf = assert_consistent(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault({**TEST_CALL_FAILS, "delay_s": 2.5})

    def outage() -> None:
        ls.add_fault(UAA_DOWN)
        timer = threading.Timer(OUTAGE_S, ls.clear_faults)
        timers.append(timer)
        timer.start()
        marks.append(time.monotonic())

    marks: list[float] = []
    report = rotate(
        request_for(ls, minted.chain_pem, minted.key_pem), on_step=_on_failed_step(outage)
    )
    assert report.outcome is Outcome.ROLLED_BACK, (report.error, report.state_left)
    assert report.exit_code is ExitCode.FAILED
    assert report.state_left == ()
    assert "did not accept the new certificate" in (report.error or "")
    assert time.monotonic() - marks[0] >= OUTAGE_S, "the run ended before UAA came back"
    assert _token_503s(ls) > 5, "the outage never outlasted one call's retries"
    assert assert_consistent(ls) == old_leaf
    assert minted.leaf_sha256 not in live_binding_leaves(ls)


def test_a_swap_rollback_sends_its_binding_create_once_across_the_outage(
    landscape: Landscape,
) -> None:
    # Swap deleted the live binding; its undo binds the old leaf again (a POST, not
    # idempotent). That POST is answered 401 CF-InvalidAuthToken; the renewal meets UAA
    # answering 503 eight times (more than one call's retries); the POST is sent again
    # once, after the new token.
    ls = landscape
    old_leaf = assert_consistent(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault(TEST_CALL_FAILS)
    start = [0]

    def outage() -> None:
        start[0] = len(ls.calls())
        ls.add_fault({**TOKEN_REJECTED_ONCE, "method": "POST", "path": "^/v3/service_cred"})
        ls.add_fault({**UAA_DOWN, "times": 8})

    report = rotate(
        request_for(ls, minted.chain_pem, minted.key_pem, strategy=Strategy.SWAP),
        on_step=_on_failed_step(outage),
    )
    assert report.outcome is Outcome.ROLLED_BACK, (report.error, report.state_left)
    creates = [
        c
        for c in write_calls(ls, start[0])
        if c["method"] == "POST" and c["path"] == "/v3/service_credential_bindings"
    ]
    assert [c["status"] for c in creates] == [401, 202], creates
    assert _token_503s(ls) == 8
    app_guid = next(a["guid"] for a in ls.state()["apps"] if a["name"] == ls.app)
    live = [
        b for b in ls.state()["bindings"] if b["app_guid"] == app_guid and b["state"] == "succeeded"
    ]
    assert [b["leaf_sha256"] for b in live] == [old_leaf]
    assert assert_consistent(ls) == old_leaf


def test_a_failing_login_before_any_change_fails_fast(landscape: Landscape) -> None:
    ls = landscape
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault(UAA_DOWN)
    started = time.monotonic()
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    took = time.monotonic() - started
    assert report.outcome is Outcome.FAILED, report.error
    assert "UAA answered 503" in (report.error or "")
    assert write_calls(ls) == []
    assert took < 15, f"the login failed after {took:.0f}s, not fast"


@pytest.mark.parametrize(
    ("when", "seen_503s"),
    [("in-the-pause", 5), ("in-a-retry-backoff", 9)],
    ids=["in-the-pause", "in-a-retry-backoff"],
)
def test_sigterm_ends_the_wait_for_uaa_at_once(
    landscape: Landscape, tmp_path: Path, when: str, seen_503s: int
) -> None:
    # The CLI as a user runs it. The login passes; every later token request gets 503.
    # The test call fails, and the rollback's first write (deleting the new binding) is
    # answered 401 CF-InvalidAuthToken, so the rollback needs a new token and waits.
    # 5 answers are one try's retries (0 + 1 + 2 + 4 s): after the 5th the rollback pauses
    # 2-3 s; after the 9th the second try sleeps 4 s in urllib3's backoff. SIGTERM there
    # must end the wait at once, with an exact report.
    ls = landscape
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault(TEST_CALL_FAILS)
    ls.add_fault(
        {**TOKEN_REJECTED_ONCE, "method": "DELETE", "path": "^/v3/service_credential_bindings/"}
    )
    ls.add_fault({**UAA_DOWN, "after": 1})
    result = sigterm_once(
        ls, tmp_path, minted, f"{seen_503s} token 503s", lambda: _token_503s(ls) >= seen_503s
    )
    assert_stopped_at_once(result, when, minted.leaf_sha256)
