"""The CF client and the mTLS session walked against the sandbox landscape (cf_sandbox).

Not the engine: every `CfClient` call the engine relies on, in the order a rotation uses
them, plus the failures the client itself must absorb (retries, token expiry, jobs that
fail, deployments that stall), against the sandbox's CC, UAA, it-rt broker and CPI.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from cf_sandbox import Landscape, Minted
from cpi_cert_rotate.cf import CfApiError, CfClient, CfJobFailed, CfTimeout
from cpi_cert_rotate.models import CfAuth
from cpi_cert_rotate.mtls import mtls_session

pytestmark = pytest.mark.e2e


def _auth(ls: Landscape, **overrides: Any) -> CfAuth:
    values: dict[str, Any] = {
        "username": ls.username,
        "password": ls.password,
        "origin": ls.origin,
        "ca_pem": ls.ca_pem,
    }
    values.update(overrides)
    return CfAuth(**values)


def _leaf_pem(minted: Minted) -> str:
    """The first certificate of the minted chain: CPI takes the leaf only."""
    end = "-----END CERTIFICATE-----"
    return minted.chain_pem.split(end, 1)[0] + end + "\n"


def _soon(seconds: float = 30) -> float:
    return time.monotonic() + seconds


@pytest.fixture
def landscape() -> Iterator[Landscape]:
    with Landscape(instances=2) as ls:
        yield ls


@pytest.fixture
def client(landscape: Landscape) -> Iterator[CfClient]:
    with CfClient(landscape.api_url, _auth(landscape), poll_cap_s=0.5) as cf:
        yield cf


def _ids(client: CfClient, ls: Landscape) -> tuple[str, str]:
    org = client.find_org(ls.org)
    space = client.find_space(org.guid, ls.space)
    return client.find_app(space.guid, ls.app).guid, client.find_service_instance(
        space.guid, ls.service_instance
    ).guid


def test_a_whole_overlap_rotation_through_the_client(
    landscape: Landscape, client: CfClient
) -> None:
    ls = landscape
    assert client.supports_binding_strategy()
    client.authenticate()
    app_guid, si_guid = _ids(client, ls)
    (old,) = client.list_app_bindings(app_guid, si_guid)
    assert old.succeeded
    iflow_url = client.binding_credentials(old.guid)["oauth"]["url"]

    minted = ls.mint("rotated-client")
    new = client.create_app_binding(
        app_guid,
        si_guid,
        name=old.name,
        parameters={"key-type": "certificate_external", "X.509": _leaf_pem(minted)},
        strategy="multiple",
        deadline=_soon(),
    )
    assert new.succeeded
    assert [b.guid for b in client.list_app_bindings(app_guid, si_guid)] == [old.guid, new.guid]
    assert client.get_binding(new.guid) == new

    key = serialization.load_pem_private_key(minted.key_pem.encode(), password=None)
    with mtls_session(minted.chain_pem, key, ca_pem=ls.ca_pem) as session:  # type: ignore[arg-type]
        response = session.post(f"{iflow_url}/http/ping", data=b"hello", timeout=10)
    assert response.status_code == 200

    merged = client.patch_env_vars(
        app_guid, {"CLI_CHAIN": minted.chain_pem, "CLI_KEY": minted.key_pem}
    )
    assert merged["CLI_CHAIN"] == minted.chain_pem
    assert client.get_env_vars(app_guid) == merged
    deployment = client.create_deployment(app_guid)
    assert client.wait_deployment(deployment.guid, deadline=_soon()).succeeded
    app_state = next(a for a in ls.state()["apps"] if a["guid"] == app_guid)
    assert {i["leaf_sha256"] for i in app_state["instances"]} == {minted.leaf_sha256}

    client.delete_binding(old.guid, deadline=_soon())
    assert client.get_binding(old.guid) is None
    client.delete_binding(old.guid, deadline=_soon())  # already gone: fine
    app = client.patch_app_annotations(
        app_guid, {"cpi-cert-rotate.local/fingerprint": minted.leaf_sha256}
    )
    assert app.annotations["cpi-cert-rotate.local/fingerprint"] == minted.leaf_sha256
    assert client.get_app(app_guid).annotations == app.annotations


def test_lookups_that_miss_say_what_and_where(landscape: Landscape, client: CfClient) -> None:
    org = client.find_org(landscape.org)
    space = client.find_space(org.guid, landscape.space)
    with pytest.raises(CfApiError, match=r"App 'nope' not found in org .* / space ") as caught:
        client.find_app(space.guid, "nope")
    assert caught.value.status == 404
    with pytest.raises(CfApiError, match="case-sensitive"):
        client.find_service_instance(space.guid, landscape.service_instance.swapcase())


def test_names_with_commas_percent_signs_and_spaces_are_found(
    landscape: Landscape, client: CfClient
) -> None:
    """Names may hold any printable character (cloud_controller_ng `app/models/runtime/
    app_model.rb` APP_NAME_REGEX, organization.rb, space.rb); CC splits a `names` value on
    `,\\s*` and URL-unescapes each part (`app/messages/base_message.rb` `to_array!`), so
    `ntif,ext` used to be looked up as `ntif` and `ext`, and `100%41` as `100A`."""
    ls = landscape
    odd = "ntif,ext 100%41, x"
    with ls.store.lock:
        org = next(o for o in ls.store.orgs.values() if o.name == ls.org)
        org.name = "acme, inc 50%2C"
        space = next(s for s in ls.store.spaces.values() if s.name == ls.space)
        space.name = "dev,  eu"
        ls.store.apps[ls.app_guid].name = odd
    found_org, found_space, app = client.locate_app(org.name, space.name, odd)
    assert (found_org.guid, found_space.guid, app.guid) == (org.guid, space.guid, ls.app_guid)
    assert client.find_app(client.find_space(client.find_org(org.name).guid, space.name).guid, odd)
    assert [o.guid for o in client.list_orgs([org.name, "other"])] == [org.guid]
    bindings, instances = client.bindings_of_app_named(odd, ls.service_instance)
    assert bindings
    assert [si.guid for si in instances] == [ls.service_instance_guid]
    lock = client.create_user_provided_instance(space.guid, "lock, 50%25")
    assert client.find_service_instance_named(space.guid, "lock, 50%25") == lock
    assert client.find_service_instance(space.guid, "lock, 50%25").guid == lock.guid


def test_wrong_password_is_a_clear_401(landscape: Landscape) -> None:
    client = CfClient(landscape.api_url, _auth(landscape, password="wrong"))
    with client, pytest.raises(CfApiError) as caught:
        client.authenticate()
    assert caught.value.status == 401
    assert landscape.username in str(caught.value)
    assert landscape.password not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "strategy", "detail"),
    [
        ({"api_version": "3.200.0"}, "multiple", "Unknown field(s): 'strategy'"),
        ({"bindings_limit": 1}, "multiple", "The app is already bound to the service instance"),
        ({}, None, "The app is already bound to the service instance"),
    ],
)
def test_second_binding_refusals_are_the_documented_422s(
    options: dict[str, Any], strategy: str | None, detail: str
) -> None:
    with Landscape(instances=1, **options) as ls, CfClient(ls.api_url, _auth(ls)) as client:
        app_guid, si_guid = _ids(client, ls)
        (old,) = client.list_app_bindings(app_guid, si_guid)
        leaf = _leaf_pem(ls.mint("second"))
        with pytest.raises(CfApiError) as caught:
            client.create_app_binding(
                app_guid,
                si_guid,
                name=old.name,
                parameters={"key-type": "certificate_external", "X.509": leaf},
                strategy=strategy,
                deadline=_soon(),
            )
        assert (caught.value.status, caught.value.detail) == (422, detail)
        assert client.supports_binding_strategy() is ("api_version" not in options)


def test_broker_refusing_a_chain_fails_the_job_with_the_binding_guid(
    landscape: Landscape, client: CfClient
) -> None:
    app_guid, si_guid = _ids(client, landscape)
    (old,) = client.list_app_bindings(app_guid, si_guid)
    minted = landscape.mint("chain-not-leaf")
    with pytest.raises(CfJobFailed) as caught:
        client.create_app_binding(
            app_guid,
            si_guid,
            name=old.name,
            parameters={"key-type": "certificate_external", "X.509": minted.chain_pem},
            strategy="multiple",
            deadline=_soon(),
        )
    error = caught.value
    assert (error.code, error.title) == (10009, "CF-UnableToPerform")
    assert error.detail.startswith("bind could not be completed")
    assert error.binding_guid
    failed = client.get_binding(error.binding_guid)
    assert failed is not None
    assert failed.state == "failed"


def test_gateway_errors_rate_limits_and_drops_are_absorbed(
    landscape: Landscape, client: CfClient
) -> None:
    app_guid, _ = _ids(client, landscape)
    landscape.clear_calls()
    landscape.add_fault(
        {"method": "GET", "path": f"^/v3/apps/{app_guid}$", "status": 503, "times": 2}
    )
    landscape.add_fault(
        {
            "method": "POST",
            "path": "^/v3/deployments$",
            "status": 429,
            "headers": {"Retry-After": "1"},
            "times": 1,
        }
    )
    landscape.add_fault(
        {
            "method": "GET",
            "path": f"^/v3/apps/{app_guid}/environment_variables$",
            "drop_connection": True,
            "times": 1,
        }
    )
    started = time.monotonic()
    assert client.get_app(app_guid).guid == app_guid
    client.get_env_vars(app_guid)
    deployment = client.create_deployment(app_guid)
    assert time.monotonic() - started >= 1.0
    assert client.wait_deployment(deployment.guid, deadline=_soon()).succeeded
    calls = [(c["method"], c["path"], c["status"]) for c in landscape.calls()]
    assert calls.count(("GET", f"/v3/apps/{app_guid}", 503)) == 2
    assert calls.count(("POST", "/v3/deployments", 429)) == 1
    assert sum(1 for c in calls if c[:2] == ("POST", "/v3/deployments")) == 2


def test_short_lived_tokens_are_renewed(landscape: Landscape) -> None:
    landscape.set_options(token_ttl_s=2.0)
    with CfClient(landscape.api_url, _auth(landscape)) as client:
        app_guid, _ = _ids(client, landscape)
        for _ in range(6):
            client.get_env_vars(app_guid)
            time.sleep(0.5)
    statuses = [c["status"] for c in landscape.calls() if c["path"].startswith("/v3/")]
    assert 401 not in statuses
    grants = [c for c in landscape.calls() if c["path"] == "/oauth/token"]
    assert len(grants) >= 2


def test_stalled_deployment_times_out_and_is_canceled(
    landscape: Landscape, client: CfClient
) -> None:
    app_guid, _ = _ids(client, landscape)
    landscape.add_fault({"deployment": "stall"})
    deployment = client.create_deployment(app_guid)
    with pytest.raises(CfTimeout, match="rolling deployment"):
        client.wait_deployment(deployment.guid, deadline=_soon(1.5))
    client.cancel_deployment(deployment.guid)
    final = client.wait_deployment(deployment.guid, deadline=_soon())
    assert (final.state, final.reason) == ("FINALIZED", "CANCELED")
    client.cancel_deployment(deployment.guid)  # already finalized: quiet


def test_restage_stages_and_restarts_the_app(landscape: Landscape, client: CfClient) -> None:
    app_guid, _ = _ids(client, landscape)
    client.restage(app_guid, deadline=_soon())
    assert client.get_app(app_guid).state == "STARTED"
    paths = [(c["method"], c["path"]) for c in landscape.calls()]
    assert ("POST", "/v3/builds") in paths
    assert ("PATCH", f"/v3/apps/{app_guid}/relationships/current_droplet") in paths


def test_timeout_message_names_the_timeout_used_when_the_deadline_cut_it(
    landscape: Landscape,
) -> None:
    """The call's timeout is 30 s, but 1.5 s were left: the message must say 1.5 s."""
    from cpi_cert_rotate.cf import CfUnreachable

    with CfClient(landscape.api_url, _auth(landscape), timeout_s=30.0) as cf:
        cf.authenticate()
        landscape.add_fault({"method": "GET", "path": r"^/v3/apps$", "delay_s": 4})
        cf.set_deadline(time.monotonic() + 1.5)
        with pytest.raises(CfUnreachable) as caught:
            cf.find_app("any-space", landscape.app)
    message = str(caught.value)
    assert "no answer within 1." in message, message
    assert "within 30s" not in message
    assert "cut from 30s to what was left before the run's deadline" in message
