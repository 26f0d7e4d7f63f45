"""The CPI iFlow endpoint: real mTLS, then CPI's rules per request (reference section 7,
sap-and-rotation-anchors.md 3.1-3.2)."""

from __future__ import annotations

import datetime
import http.client
import time
from urllib.parse import urlsplit

import pytest
import requests
from sandbox_client import Cf, bind_body, leaf_of

from cf_sandbox import Landscape, Minted
from cf_sandbox.memtls import client_context, session

URL = "/v3/service_credential_bindings"


def _seed_material(ls: Landscape) -> tuple[str, str]:
    env = ls.state()["apps"][0]["env"]
    return env["CLI_CHAIN"], env["CLI_KEY"]


def _call(ls: Landscape, chain: str, key: str, body: bytes = b"hello") -> requests.Response:
    with session(client_context(ls.ca_pem, chain, key)) as http:
        return http.post(f"{ls.cpi_url}/http/iflow", data=body, timeout=10)


def _bind(cf: Cf, minted: Minted, **extra: object) -> str:
    resp = cf.post(URL, bind_body(cf.ls, leaf_of(minted.chain_pem), strategy="multiple", **extra))
    job = cf.wait_job(resp.headers["Location"])
    assert job["state"] == "COMPLETE", job
    return str(job["links"]["service_credential_binding"]["href"].rsplit("/", 1)[1])


def test_registered_chain_gets_200_with_the_body_echoed(ls: Landscape) -> None:
    resp = _call(ls, *_seed_material(ls), body=b"<order/>")
    assert resp.status_code == 200
    assert resp.content == b"<order/>"


def test_untrusted_root_fails_the_handshake(ls: Landscape) -> None:
    rogue = ls.mint("rogue", trusted=False)
    with pytest.raises(requests.exceptions.ConnectionError):
        _call(ls, rogue.chain_pem, rogue.key_pem)


def test_no_client_certificate_fails_the_handshake(ls: Landscape) -> None:
    with (
        session(client_context(ls.ca_pem)) as http,
        pytest.raises(requests.exceptions.ConnectionError),
    ):
        http.post(f"{ls.cpi_url}/http/iflow", data=b"x", timeout=10)


def test_leaf_without_intermediate_fails_the_handshake(ls: Landscape) -> None:
    chain, key = _seed_material(ls)
    with pytest.raises(requests.exceptions.ConnectionError):
        _call(ls, leaf_of(chain), key)


def test_trusted_but_unregistered_certificate_is_401(ls: Landscape) -> None:
    other = ls.mint("unregistered")
    resp = _call(ls, other.chain_pem, other.key_pem)
    assert resp.status_code == 401
    assert "not registered" in resp.headers["X-Sandbox-Reason"]


def test_keep_alive_connection_is_rechecked_per_request(ls: Landscape, cf: Cf) -> None:
    chain, key = _seed_material(ls)
    parts = urlsplit(ls.cpi_url)
    conn = http.client.HTTPSConnection(
        parts.hostname or "", parts.port, context=client_context(ls.ca_pem, chain, key), timeout=10
    )
    try:
        conn.request("POST", "/http/iflow", body=b"1")
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        binding = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
        cf.wait_job(cf.delete(f"{URL}/{binding['guid']}").headers["Location"])
        conn.request("POST", "/http/iflow", body=b"2")
        second = conn.getresponse()
        second.read()
        assert conn.sock is sock  # the same TLS connection
    finally:
        conn.close()
    assert (first.status, second.status) == (200, 401)


def test_deleting_binding_is_refused_but_a_failed_delete_keeps_it(ls: Landscape, cf: Cf) -> None:
    chain, key = _seed_material(ls)
    ls.add_fault({"job": "service_bindings.delete", "fail": True, "times": 1})
    binding = cf.ok(cf.get(f"{URL}?app_guids={ls.app_guid}"))["resources"][0]
    job = cf.wait_job(cf.delete(f"{URL}/{binding['guid']}").headers["Location"])
    assert job["state"] == "FAILED"
    assert _call(ls, chain, key).status_code == 200  # still registered at the broker
    again = cf.delete(f"{URL}/{binding['guid']}")
    assert again.status_code == 202
    assert cf.wait_job(again.headers["Location"])["state"] == "COMPLETE"
    assert _call(ls, chain, key).status_code == 401  # unbound


def test_new_binding_authorizes_its_certificate(ls: Landscape, cf: Cf) -> None:
    new = ls.mint("second")
    assert _call(ls, new.chain_pem, new.key_pem).status_code == 401
    _bind(cf, new)
    assert _call(ls, new.chain_pem, new.key_pem).status_code == 200
    assert _call(ls, *_seed_material(ls)).status_code == 200  # overlap: both work


def test_service_key_authorizes_too(ls: Landscape, cf: Cf) -> None:
    new = ls.mint("via-key")
    body = {
        "type": "key",
        "name": "k",
        "relationships": {"service_instance": {"data": {"guid": ls.service_instance_guid}}},
        "parameters": {"key-type": "certificate_external", "X.509": leaf_of(new.chain_pem)},
    }
    cf.wait_job(cf.post(URL, body).headers["Location"])
    assert _call(ls, new.chain_pem, new.key_pem).status_code == 200


def test_propagation_delay() -> None:
    with Landscape(cpi_propagation_s=2.0) as ls:
        cf = Cf(ls)
        new = ls.mint("slow")
        _bind(cf, new)
        early = _call(ls, new.chain_pem, new.key_pem)
        assert early.status_code == 401
        assert "propagated" in early.headers["X-Sandbox-Reason"]
        end = time.monotonic() + 10
        while _call(ls, new.chain_pem, new.key_pem).status_code != 200:
            assert time.monotonic() < end, "the registration never propagated"
            time.sleep(0.2)


def _days_ago(days: int) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)


def test_pinning_off_accepts_a_renewal_then_refuses_the_older() -> None:
    with Landscape(pinning=False) as ls:
        cf = Cf(ls)
        registered = ls.mint("app-client", not_before=_days_ago(30))
        _bind(cf, registered)
        older = ls.mint("app-client", not_before=_days_ago(40))
        assert _call(ls, older.chain_pem, older.key_pem).status_code == 401
        assert _call(ls, registered.chain_pem, registered.key_pem).status_code == 200
        renewed = ls.mint("app-client", not_before=_days_ago(1))  # new key, same DNs
        assert _call(ls, renewed.chain_pem, renewed.key_pem).status_code == 200
        refused = _call(ls, registered.chain_pem, registered.key_pem)
        assert refused.status_code == 401
        assert "newer certificate" in refused.headers["X-Sandbox-Reason"]
        other_cn = ls.mint("someone-else")
        assert _call(ls, other_cn.chain_pem, other_cn.key_pem).status_code == 401


def test_pinning_on_refuses_a_renewal(ls: Landscape, cf: Cf) -> None:
    registered = ls.mint("app-client", not_before=_days_ago(30))
    _bind(cf, registered)
    renewed = ls.mint("app-client", not_before=_days_ago(1))
    assert _call(ls, renewed.chain_pem, renewed.key_pem).status_code == 401


def test_two_unpinned_registrations_with_the_same_dns_are_clones() -> None:
    with Landscape(pinning=False) as ls:
        cf = Cf(ls)
        first = ls.mint("dup", not_before=_days_ago(10))
        second = ls.mint("dup", not_before=_days_ago(5))
        _bind(cf, first)
        _bind(cf, second)
        resp = _call(ls, second.chain_pem, second.key_pem)
        assert resp.status_code == 401
        assert resp.headers["X-Sandbox-Reason"] == "Multiple clones found for certificate"


def test_cpi_faults_and_unknown_paths(ls: Landscape) -> None:
    chain, key = _seed_material(ls)
    ls.add_fault({"server": "cpi", "method": "POST", "path": "^/http/", "status": 503, "times": 1})
    assert _call(ls, chain, key).status_code == 503
    assert _call(ls, chain, key).status_code == 200
    with session(client_context(ls.ca_pem, chain, key)) as http:
        assert http.get(f"{ls.cpi_url}/api/v1", timeout=10).status_code == 404
    statuses = [c["status"] for c in ls.cpi_calls()]
    assert statuses == [503, 200, 404]
