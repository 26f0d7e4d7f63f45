"""`cf/outage.py`: which failures are waited out, how long, and that a stop ends the wait;
and `CfHttp` after `wait_out_outages`: a Cloud Controller call safe to repeat is sent again
after an outage, a POST is not."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import trustme
from cf_fake import FakeCf, Reply, error_body, fast_retries, user_auth

from cpi_cert_rotate.cf import CfClient, outage
from cpi_cert_rotate.cf.outage import is_cc_outage, is_outage, patiently
from cpi_cert_rotate.errors import CfApiError, CfTimeout, CfUnreachable, LoginRefused


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


def _cc(status: int) -> CfApiError:
    return CfApiError(f"Cloud Controller answered {status}", status=status, path="/v3/apps/a")


def test_cc_unavailable_is_an_outage_and_an_answer_is_not() -> None:
    assert [is_cc_outage(_cc(status)) for status in (429, 502, 503, 504)] == [True] * 4
    assert is_cc_outage(CfUnreachable("cannot reach api"))
    # a 500 is a handler's answer (CF-ServerError), not the router's "no instance there"
    assert [is_cc_outage(_cc(status)) for status in (400, 401, 403, 404, 422, 500)] == [False] * 6
    assert not is_cc_outage(CfTimeout("the run's time is up"))


def test_a_cc_outage_is_waited_out_and_a_500_is_not(quick_pauses: None) -> None:
    get, calls = _failing(_cc(503), CfUnreachable("dropped"), _cc(502))
    assert patiently(get, threading.Event(), lambda: 60.0, outage=is_cc_outage) == "bearer token"
    assert len(calls) == 4
    get, calls = _failing(_cc(500))
    with pytest.raises(CfApiError, match="500"):
        patiently(get, threading.Event(), lambda: 60.0, outage=is_cc_outage)
    assert len(calls) == 1


_DOWN = error_body(503, "CF-ServiceUnavailable", 10015, "down")


@pytest.fixture
def waiting_client(
    fake: FakeCf, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch, quick_pauses: None
) -> Iterator[CfClient]:
    """A client as the rollback has it: outages waited out (quick retries and pauses)."""
    fast_retries(monkeypatch)
    with CfClient(fake.url, user_auth(ca), timeout_s=5) as client:
        client.authenticate()
        client.set_deadline(time.monotonic() + 30)
        client.wait_out_outages(threading.Event())
        yield client


def test_a_get_and_a_patch_are_sent_again_after_an_outage(
    fake: FakeCf, waiting_client: CfClient
) -> None:
    # 12 answers 503: more than one call's 5 (the first and 4 retries)
    fake.fail("GET", "/v3/apps/app-1", *[_DOWN] * 12)
    assert waiting_client.get_app("app-1").name == "orders"
    assert fake.count("GET", "/v3/apps/app-1") == 13
    path = "/v3/apps/app-1/environment_variables"
    fake.fail("PATCH", path, *[_DOWN] * 7, Reply(drop=True))
    waiting_client.patch_env_vars("app-1", {"A": "1"})
    assert fake.env["app-1"]["A"] == "1"
    assert fake.count("PATCH", path) == 9


def test_a_delete_is_sent_again_after_an_outage(fake: FakeCf, waiting_client: CfClient) -> None:
    guid = fake.add_binding()
    path = f"/v3/service_credential_bindings/{guid}"
    fake.fail("DELETE", path, *[_DOWN] * 6)
    waiting_client.delete_binding(guid, deadline=time.monotonic() + 10)
    assert guid not in fake.bindings
    assert fake.count("DELETE", path) == 7


def test_a_post_is_not_sent_again_after_an_outage(fake: FakeCf, waiting_client: CfClient) -> None:
    fake.fail("POST", "/v3/deployments", *[_DOWN] * 3)
    with pytest.raises(CfApiError, match="503"):
        waiting_client.create_deployment("app-1")
    assert fake.count("POST", "/v3/deployments") == 1
    assert fake.deployments == {}


def test_without_the_wait_a_cc_outage_fails_after_one_calls_retries(
    fake: FakeCf, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_retries(monkeypatch)
    with CfClient(fake.url, user_auth(ca), timeout_s=5) as client:
        client.authenticate()
        fake.fail("GET", "/v3/apps/app-1", *[_DOWN] * 12)
        with pytest.raises(CfApiError, match="503"):
            client.get_app("app-1")
    assert fake.count("GET", "/v3/apps/app-1") == 5


def test_one_call_waits_no_longer_than_its_own_limit(quick_pauses: None) -> None:
    get, calls = _failing(*[_cc(503)] * 100)
    started = time.monotonic()
    with pytest.raises(CfApiError, match="503"):
        patiently(get, threading.Event(), lambda: 600.0, outage=is_cc_outage, at_most_s=0.3)
    # pauses 0.01, 0.02, 0.04, 0.08 s; the next (0.16 s) would end past 0.3 s: given up
    assert time.monotonic() - started < 0.3
    assert len(calls) == 5
