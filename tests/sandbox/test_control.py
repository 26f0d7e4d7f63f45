"""`/_sandbox/*`, faults, rate limiting, start time, clean stop, and no key on disk."""

from __future__ import annotations

import datetime
import hashlib
import socket
import sys
import threading
import time
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sandbox_client import STATE_FILE_KEYS, Cf, bind_body, leaf_of

from cf_sandbox import Landscape

URL = "/v3/service_credential_bindings"


def _control(cf: Cf, method: str, path: str, body: Any = None) -> requests.Response:
    return cf.http.request(method, f"{cf.ls.api_url}/_sandbox/{path}", json=body, timeout=10)


def test_state_has_exactly_the_documented_shape(cf: Cf) -> None:
    state = _control(cf, "GET", "state").json()
    assert {"apps", "bindings", "service_keys"} <= set(state)
    [app] = state["apps"]
    assert {"guid", "name", "env", "annotations", "instances"} <= set(app)
    assert app["name"] == "ntifext"
    assert app["annotations"] == {}
    assert {"CLI_CHAIN", "CLI_KEY"} <= set(app["env"])
    assert len(app["instances"]) == 3
    for inst in app["instances"]:
        assert {"index", "leaf_sha256", "started_at"} <= set(inst)
    [binding] = state["bindings"]
    assert {"guid", "app_guid", "service_instance_guid", "name", "state", "leaf_sha256"} <= set(
        binding
    )
    assert binding["state"] == "succeeded"
    assert binding["name"] is None
    leaf = x509.load_pem_x509_certificate(leaf_of(app["env"]["CLI_CHAIN"]).encode())
    expected = hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()
    assert binding["leaf_sha256"] == expected
    assert {i["leaf_sha256"] for i in app["instances"]} == {expected}
    assert state["service_keys"] == []
    assert cf.ls.state() == state


def test_seed_certificate_is_due_for_renewal(ls: Landscape) -> None:
    chain = ls.state()["apps"][0]["env"]["CLI_CHAIN"]
    leaf = x509.load_pem_x509_certificate(leaf_of(chain).encode())
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    remaining = leaf.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert lifetime.days == 90
    assert remaining < lifetime * 0.34  # `renew-before 33%` says: due


def test_mint_endpoint_trusted_untrusted_and_ec(cf: Cf) -> None:
    minted = _control(cf, "POST", "mint", {"cn": "x", "days": 30, "trusted": True}).json()
    assert set(minted) >= {"chain_pem", "key_pem"}
    certs = x509.load_pem_x509_certificates(minted["chain_pem"].encode())
    assert len(certs) == 2
    root = x509.load_pem_x509_certificate(cf.ls.trusted_root_pem.encode())
    assert certs[1].issuer == root.subject  # leaf + intermediate, no root
    assert certs[0].issuer == certs[1].subject
    assert "BEGIN PRIVATE KEY" in minted["key_pem"]
    rogue = _control(cf, "POST", "mint", {"cn": "y", "trusted": False, "key": "ec-p256"}).json()
    rogue_certs = x509.load_pem_x509_certificates(rogue["chain_pem"].encode())
    assert rogue_certs[1].issuer != root.subject
    assert _control(cf, "POST", "mint", {"key": "dsa"}).status_code == 400


def test_calls_log_every_cc_and_uaa_call_in_order(cf: Cf) -> None:
    cf.get("/v3/apps")
    cf.get("/v3/nope")
    calls = _control(cf, "GET", "calls").json()
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("POST", "/oauth/token", 200),
        ("GET", "/v3/apps", 200),
        ("GET", "/v3/nope", 404),
    ]
    assert {"method", "path", "status", "time"} <= set(calls[0])
    assert all(c["path"] != "/_sandbox/calls" for c in cf.ls.calls())


def test_status_fault_with_after_and_times(cf: Cf) -> None:
    rule = {"method": "POST", "path": "^/v3/deployments$", "status": 503, "after": 1, "times": 1}
    assert _control(cf, "POST", "faults", rule).status_code == 201
    body = {"relationships": {"app": {"data": {"guid": cf.ls.app_guid}}}}
    assert cf.post("/v3/deployments", body).status_code == 201  # `after` lets one pass
    injected = cf.post("/v3/deployments", body)
    assert cf.error(injected, 503)["title"] == "CF-ServiceUnavailable"
    assert cf.post("/v3/deployments", body).status_code == 201  # `times` used up
    [listed] = _control(cf, "GET", "faults").json()
    assert (listed["matched"], listed["fired"]) == (3, 1)
    assert _control(cf, "DELETE", "faults").status_code == 204
    assert _control(cf, "GET", "faults").json() == []


def test_delay_fault(cf: Cf) -> None:
    cf.ls.add_fault({"path": "^/v3/apps$", "delay_s": 0.4, "times": 1})
    started = time.monotonic()
    assert cf.get("/v3/apps").status_code == 200
    assert time.monotonic() - started >= 0.4


def test_dropped_connection_before_apply_changes_nothing(cf: Cf) -> None:
    ls = cf.ls
    ls.add_fault(
        {"method": "PATCH", "path": "environment_variables$", "drop_connection": True, "times": 1}
    )
    with pytest.raises(requests.exceptions.ConnectionError):
        cf.patch(f"/v3/apps/{ls.app_guid}/environment_variables", {"var": {"X": "1"}})
    assert "X" not in ls.state()["apps"][0]["env"]
    assert ls.calls()[-1]["status"] is None


def test_dropped_connection_after_apply_did_the_write(cf: Cf) -> None:
    ls = cf.ls
    new = ls.mint("after-apply")
    ls.add_fault(
        {
            "method": "POST",
            "path": f"^{URL}$",
            "drop_connection": True,
            "after_apply": True,
            "times": 1,
        }
    )
    with pytest.raises(requests.exceptions.ConnectionError):
        cf.post(URL, bind_body(ls, leaf_of(new.chain_pem), strategy="multiple"))
    assert [b["leaf_sha256"] for b in ls.state()["bindings"]][-1] == new.leaf_sha256


def test_probe_endpoints(cf: Cf) -> None:
    started = _control(cf, "POST", "probe/start", {"rps": 50}).json()
    assert started["running"] is True
    end = time.monotonic() + 5  # a loaded machine may delay the probe's first calls
    running = _control(cf, "GET", "probe").json()
    while running["calls"] == 0 and time.monotonic() < end:
        time.sleep(0.05)
        running = _control(cf, "GET", "probe").json()
    assert {"calls", "failures", "longest_outage_s", "timeline"} <= set(running)
    assert running["calls"] > 0
    stopped = _control(cf, "POST", "probe/stop").json()
    assert stopped["running"] is False
    assert stopped["failures"] == 0
    assert stopped["longest_outage_s"] == 0
    entry = stopped["timeline"][0]
    assert {"t", "instance", "ok", "status", "error"} <= set(entry)
    restarted = _control(cf, "POST", "probe/start", {"rps": 10}).json()
    assert restarted["calls"] <= 1  # counters reset
    cf.ls.probe_stop()


def test_probe_sees_an_outage_when_the_app_stops(cf: Cf) -> None:
    ls = cf.ls
    ls.probe_start(rps=40)
    time.sleep(0.15)
    cf.ok(cf.post(f"/v3/apps/{ls.app_guid}/actions/stop"))
    time.sleep(0.3)
    cf.ok(cf.post(f"/v3/apps/{ls.app_guid}/actions/start"))
    time.sleep(0.3)
    ls.probe_stop()
    probe = ls.probe()
    assert probe["failures"] >= 5
    assert probe["longest_outage_s"] >= 0.25
    assert probe["timeline"][-1]["ok"]


def test_options_endpoint(cf: Cf) -> None:
    changed = _control(cf, "POST", "options", {"bindings_limit": 1}).json()
    assert changed["bindings_limit"] == 1
    assert _control(cf, "POST", "options", {"nonsense": 1}).status_code == 400
    assert _control(cf, "POST", "options", {"api_version": "three"}).status_code == 400


def test_state_file_keys(cf: Cf) -> None:
    data = _control(cf, "GET", "state_file").json()
    assert set(data) >= STATE_FILE_KEYS
    assert "PRIVATE KEY" not in str(data)
    assert (data["org"], data["space"], data["app"], data["service_instance"]) == (
        "demo-org",
        "dev",
        "ntifext",
        "iflowext",
    )


def test_rate_limit_headers_and_429_quirk() -> None:
    with Landscape(rate_limit=3) as ls:
        cf = Cf(ls)
        first = cf.get("/v3/apps")
        assert first.headers["X-RateLimit-Limit"] == "3"
        assert first.headers["X-RateLimit-Remaining"] == "2"
        assert int(first.headers["X-RateLimit-Reset"]) > time.time()
        cf.get("/v3/apps")
        cf.get("/v3/apps")
        limited = cf.get("/v3/apps")
        assert limited.status_code == 429
        assert limited.headers["Content-Type"].startswith("text/plain")
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["errors"][0]["title"] == "CF-RateLimitExceeded"
        assert cf.http.get(f"{ls.api_url}/", timeout=10).status_code == 200  # exempt
        info = cf.ok(cf.get("/v3/info"))
        assert info["rate_limits"]["enabled"] is True


def test_starts_fast_and_stops_cleanly() -> None:
    before = {t.ident for t in threading.enumerate()}
    started = time.monotonic()
    ls = Landscape(instances=3).start()
    elapsed = time.monotonic() - started
    ports = [int(u.rsplit(":", 1)[1]) for u in (ls.api_url, ls.uaa_url, ls.cpi_url)]
    cf = Cf(ls)
    assert cf.get("/v3/apps").status_code == 200
    ls.probe_start(rps=20)
    time.sleep(0.2)
    ls.stop()
    assert elapsed < 2.0
    leftover = [t for t in threading.enumerate() if t.ident not in before]
    assert leftover == [], leftover
    for port in ports:
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass


def test_no_file_is_written_while_keys_are_loaded() -> None:
    """Audit Python-level opens for writing during a whole landscape life: none."""
    writes: list[str] = []
    active = threading.Event()

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not active.is_set():
            return
        if (
            event == "open"
            and isinstance(args[0], str)
            and isinstance(args[1], str)
            and (any(m in args[1] for m in "wax+"))
        ):
            writes.append(args[0])
        if event in ("tempfile.mkstemp", "os.rename"):
            writes.append(str(args[0]))

    sys.addaudithook(hook)
    active.set()
    try:
        with Landscape() as ls:
            ls.probe_start(rps=20)
            time.sleep(0.2)
            ls.mint("another")
    finally:
        active.clear()
    assert writes == []


def test_instance_with_chain_and_key_out_of_sync_fails_its_calls(cf: Cf) -> None:
    ls = cf.ls
    new = ls.mint("half-rotated")
    cf.ok(
        cf.patch(
            f"/v3/apps/{ls.app_guid}/environment_variables", {"var": {"CLI_CHAIN": new.chain_pem}}
        )
    )  # the key stays the old one
    cf.ok(cf.post(f"/v3/apps/{ls.app_guid}/actions/restart"))
    time.sleep(0.2)  # instances healthy again
    ls.probe_start(rps=40)
    time.sleep(0.2)
    ls.probe_stop()
    probe = ls.probe()
    assert probe["calls"] > 0
    assert probe["failures"] == probe["calls"]
    assert {e["error"] for e in probe["timeline"]} == {"bad CLI_CHAIN/CLI_KEY: SSLError"}
