"""`cf/outage.py`: which failures are waited out, how long, and that a stop ends the wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from cpi_cert_rotate.cf import outage
from cpi_cert_rotate.cf.outage import is_outage, patiently
from cpi_cert_rotate.errors import CfApiError, CfUnreachable, LoginRefused


def _uaa(status: int, retry_after_s: float | None = None) -> CfApiError:
    return CfApiError(
        f"UAA answered {status}", status=status, path="/oauth/token", retry_after_s=retry_after_s
    )


def _failing(*errors: Exception) -> tuple[Callable[[], str], list[float]]:
    """A token source that raises `errors` in turn, then gives a token; it notes when."""
    calls: list[float] = []

    def get() -> str:
        calls.append(time.monotonic())
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "bearer token"

    return get, calls


@pytest.fixture
def quick_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outage, "_FIRST_PAUSE_S", 0.01)
    monkeypatch.setattr(outage, "_JITTER_S", 0.0)


def test_unavailable_is_an_outage_and_a_refusal_is_not() -> None:
    assert [is_outage(_uaa(status)) for status in (429, 500, 502, 503)] == [True] * 4
    assert is_outage(CfUnreachable("cannot reach uaa"))
    assert [is_outage(_uaa(status)) for status in (400, 401, 403)] == [False] * 3
    assert not is_outage(LoginRefused("refused", code="x", fix="y"))


def test_an_outage_is_waited_out_until_the_token_comes(quick_pauses: None) -> None:
    get, calls = _failing(_uaa(503), CfUnreachable("down"), _uaa(502))
    assert patiently(get, threading.Event(), lambda: 60.0) == "bearer token"
    assert len(calls) == 4


def test_retry_after_is_honoured(quick_pauses: None) -> None:
    get, calls = _failing(_uaa(503, retry_after_s=0.3))
    patiently(get, threading.Event(), lambda: None)
    assert calls[1] - calls[0] >= 0.3


def test_a_refused_login_fails_at_once() -> None:
    get, calls = _failing(_uaa(401))
    with pytest.raises(CfApiError, match="401"):
        patiently(get, threading.Event(), lambda: 60.0)
    assert len(calls) == 1


def test_no_pause_outlasts_the_budget() -> None:
    get, calls = _failing(_uaa(503))
    started = time.monotonic()
    with pytest.raises(CfApiError, match="503"):
        patiently(get, threading.Event(), lambda: 1.0)  # the first pause is 2 s or more
    assert len(calls) == 1
    assert time.monotonic() - started < 0.5


def test_a_stop_ends_the_pause_at_once() -> None:
    get, calls = _failing(*[_uaa(503)] * 10)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(CfApiError, match="503"):
        patiently(get, stop, lambda: 600.0)
    assert len(calls) == 1
    assert time.monotonic() - started < 1.0


def test_a_stop_set_before_means_no_wait() -> None:
    get, calls = _failing(_uaa(503))
    stop = threading.Event()
    stop.set()
    with pytest.raises(CfApiError, match="503"):
        patiently(get, stop, lambda: 600.0)
    assert len(calls) == 1
