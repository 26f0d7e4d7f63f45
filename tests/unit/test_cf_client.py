"""CfClient's calls against the stateful loopback Cloud Controller fake."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import trustme
from cf_fake import FakeCf, user_auth

from cpi_cert_rotate.cf import (
    App,
    Binding,
    CfApiError,
    CfClient,
    CfJobFailed,
    CfTimeout,
    Deployment,
)
from cpi_cert_rotate.cf import base as base_module

LEAF = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def client(fake: FakeCf, ca: trustme.CA) -> Iterator[CfClient]:
    with CfClient(fake.url, user_auth(ca), timeout_s=5, poll_cap_s=0.2) as cf:
        yield cf


def _soon(seconds: float = 10) -> float:
    return time.monotonic() + seconds


def _posted(fake: FakeCf, path: str) -> dict[str, object]:
    (call,) = [c for c in fake.calls if c.method == "POST" and c.path == path]
    body: dict[str, object] = json.loads(call.body)
    return body


# -- discovery and lookups ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "supported"), [("3.204.9", False), ("3.205.0", True), ("3.228.0", True)]
)
def test_binding_strategy_is_gated_on_the_v3_version(
    ca: trustme.CA, version: str, supported: bool
) -> None:
    fake = FakeCf(ca, version=version)
    try:
        with CfClient(fake.url, user_auth(ca)) as client:
            assert client.supports_binding_strategy() is supported
            client.root()
        assert fake.count("GET", "/") == 1  # cached
        assert not any(c.path == "/oauth/token" for c in fake.calls)  # GET / needs no token
    finally:
        fake.close()


def test_root_reads_links_and_version(fake: FakeCf, client: CfClient) -> None:
    root = client.root()
    assert root.v3_version == (3, 205, 0)
    assert root.token_url == f"{fake.url}/oauth/token"


def test_lookups_resolve_org_space_app_and_instance(client: CfClient) -> None:
    org = client.find_org("ACME")  # org, space and app names are case-insensitive in CC
    space = client.find_space(org.guid, "Prod")
    app = client.find_app(space.guid, "orders")
    instance = client.find_service_instance(space.guid, "CPI-Runtime")
    assert (org.guid, space.guid, space.org_guid) == ("org-1", "space-1", "org-1")
    assert app == App(guid="app-1", name="orders", state="STARTED", space_guid="space-1")
    assert (instance.guid, instance.type, instance.plan_guid) == ("si-1", "managed", "plan-1")


def test_not_found_names_what_is_missing_and_where(client: CfClient) -> None:
    org = client.find_org("acme")
    space = client.find_space(org.guid, "prod")
    with pytest.raises(CfApiError) as caught:
        client.find_app(space.guid, "billing")
    assert caught.value.status == 404
    assert str(caught.value) == "App 'billing' not found in org 'acme' / space 'prod'"
    with pytest.raises(CfApiError, match="case-sensitive") as caught:
        client.find_service_instance(space.guid, "cpi-runtime")
    assert "org 'acme' / space 'prod'" in str(caught.value)
    with pytest.raises(CfApiError, match="Space 'dev' not found in org 'acme'"):
        client.find_space(org.guid, "dev")
    with pytest.raises(CfApiError, match="Org 'nope' not found"):
        client.find_org("nope")


def test_every_page_is_followed_on_the_api_origin(
    fake: FakeCf, client: CfClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base_module, "_PER_PAGE", 2)
    guids = [fake.add_binding() for _ in range(5)]
    fake.add_binding(app="app-2")  # another app's binding is not listed
    bindings = client.list_app_bindings("app-1", "si-1")
    assert [b.guid for b in bindings] == guids
    assert fake.count("GET", "/v3/service_credential_bindings") == 3
    pages = [c.query for c in fake.calls if c.path == "/v3/service_credential_bindings"]
    assert [p.get("page") for p in pages] == [None, "2", "3"]
    assert pages[0] == {
        "app_guids": "app-1",
        "service_instance_guids": "si-1",
        "type": "app",
        "per_page": "2",
    }


# -- bindings -----------------------------------------------------------------------------


def test_create_binding_polls_the_job_to_complete(fake: FakeCf, client: CfClient) -> None:
    old = fake.add_binding(name="cpi")
    binding = client.create_app_binding(
        "app-1",
        "si-1",
        name="cpi",
        parameters={"key-type": "certificate_external", "X.509": LEAF},
        strategy="multiple",
        deadline=_soon(),
    )
    assert isinstance(binding, Binding)
    assert binding.succeeded
    assert binding.guid != old
    assert binding.name == "cpi"
    body = _posted(fake, "/v3/service_credential_bindings")
    assert body == {
        "type": "app",
        "name": "cpi",
        "strategy": "multiple",
        "relationships": {
            "app": {"data": {"guid": "app-1"}},
            "service_instance": {"data": {"guid": "si-1"}},
        },
        "parameters": {"key-type": "certificate_external", "X.509": LEAF},
    }
    job_polls = [c for c in fake.calls if c.path.startswith("/v3/jobs/")]
    assert len(job_polls) == 3  # PROCESSING -> POLLING -> COMPLETE


def test_unnamed_binding_omits_name_and_strategy(fake: FakeCf, client: CfClient) -> None:
    binding = client.create_app_binding(
        "app-1", "si-1", name=None, parameters={}, strategy=None, deadline=_soon()
    )
    assert binding.name is None
    assert set(_posted(fake, "/v3/service_credential_bindings")) == {
        "type",
        "relationships",
        "parameters",
    }


def test_old_api_refuses_strategy_with_the_documented_422(ca: trustme.CA) -> None:
    fake = FakeCf(ca, version="3.200.0")
    try:
        with CfClient(fake.url, user_auth(ca)) as client, pytest.raises(CfApiError) as caught:
            client.create_app_binding(
                "app-1", "si-1", name=None, parameters={}, strategy="multiple", deadline=_soon()
            )
    finally:
        fake.close()
    assert (caught.value.status, caught.value.detail) == (422, "Unknown field(s): 'strategy'")


def test_failed_bind_job_raises_with_broker_error_and_binding_guid(
    fake: FakeCf, client: CfClient
) -> None:
    fake.bind_failure = "certificate already in use"
    with pytest.raises(CfJobFailed) as caught:
        client.create_app_binding(
            "app-1", "si-1", name=None, parameters={}, strategy=None, deadline=_soon()
        )
    error = caught.value
    assert (error.code, error.title) == (10009, "CF-UnableToPerform")
    assert error.detail == (
        "bind could not be completed: Service broker error: certificate already in use"
    )
    assert error.binding_guid in fake.bindings
    assert fake.bindings[error.binding_guid]["state"] == "failed"
    assert error.job_guid.startswith("job-")
    assert isinstance(error, CfApiError)


def test_job_past_the_deadline_raises_cf_timeout(ca: trustme.CA) -> None:
    fake = FakeCf(ca, job_states=("PROCESSING",))
    try:
        with CfClient(fake.url, user_auth(ca), poll_cap_s=0.1) as client:
            started = time.monotonic()
            with pytest.raises(CfTimeout) as caught:
                client.create_app_binding(
                    "app-1", "si-1", name=None, parameters={}, strategy=None, deadline=_soon(0.6)
                )
            took = time.monotonic() - started
    finally:
        fake.close()
    assert isinstance(caught.value, TimeoutError)
    assert 0.6 <= took < 3
    assert caught.value.resource_guid
    assert caught.value.resource_guid.startswith("job-")
    assert "creating the binding" in str(caught.value)


def test_job_warnings_are_collected(fake: FakeCf, client: CfClient) -> None:
    fake.job_warnings = ["broker says: deprecated plan"]
    client.create_app_binding(
        "app-1", "si-1", name=None, parameters={}, strategy=None, deadline=_soon()
    )
    assert client.warnings == ["broker says: deprecated plan"]


def test_delete_binding_waits_for_the_job(fake: FakeCf, client: CfClient) -> None:
    guid = fake.add_binding()
    client.delete_binding(guid, deadline=_soon())
    assert guid not in fake.bindings
    assert client.get_binding(guid) is None


def test_delete_of_a_missing_binding_counts_as_done(fake: FakeCf, client: CfClient) -> None:
    client.delete_binding("binding-gone", deadline=_soon())
    assert fake.count("DELETE", "/v3/service_credential_bindings/binding-gone") == 1


def test_delete_during_a_running_operation_waits_then_deletes(
    fake: FakeCf, client: CfClient
) -> None:
    guid = fake.add_binding()
    fake.bindings[guid]["state"] = "in progress"

    def settle() -> None:
        time.sleep(0.3)
        with fake.lock:
            fake.bindings[guid]["state"] = "succeeded"

    threading.Thread(target=settle).start()
    client.delete_binding(guid, deadline=_soon())
    assert guid not in fake.bindings
    assert fake.count("DELETE", f"/v3/service_credential_bindings/{guid}") == 2


def test_binding_credentials_are_the_broker_dict(fake: FakeCf, client: CfClient) -> None:
    guid = fake.add_binding()
    assert client.binding_credentials(guid) == {
        "oauth": {"url": "https://cpi.example", "clientid": guid}
    }


# -- env vars, annotations ---------------------------------------------------------------


def test_env_vars_patch_merges_and_null_deletes(fake: FakeCf, client: CfClient) -> None:
    assert client.get_env_vars("app-1") == {"CLI_CHAIN": "old-chain"}
    merged = client.patch_env_vars("app-1", {"CLI_CHAIN": None, "CLI_KEY": "k", "X": "y"})
    assert merged == {"CLI_KEY": "k", "X": "y"}
    assert fake.env["app-1"] == merged


def test_annotations_patch_returns_the_app(fake: FakeCf, client: CfClient) -> None:
    fake.apps["app-1"]["annotations"]["old"] = "1"
    app = client.patch_app_annotations("app-1", {"cpi-cert-rotate/fingerprint": "ab", "old": None})
    assert app.annotations == {"cpi-cert-rotate/fingerprint": "ab"}
    assert client.get_app("app-1").annotations == app.annotations


# -- deployments and restage -------------------------------------------------------------


def test_rolling_deployment_is_created_and_waited_to_deployed(
    fake: FakeCf, client: CfClient
) -> None:
    deployment = client.create_deployment("app-1", max_in_flight=2)
    assert deployment == Deployment(
        guid=deployment.guid,
        state="ACTIVE",
        reason="DEPLOYING",
        app_guid="app-1",
        droplet_guid="droplet-1",
    )
    assert fake.deployments[deployment.guid]["body"] == {
        "strategy": "rolling",
        "relationships": {"app": {"data": {"guid": "app-1"}}},
        "options": {"max_in_flight": 2},
    }
    done = client.wait_deployment(deployment.guid, deadline=_soon())
    assert done.succeeded
    assert (done.state, done.reason) == ("FINALIZED", "DEPLOYED")


def test_default_deployment_sends_no_options(fake: FakeCf, client: CfClient) -> None:
    deployment = client.create_deployment("app-1")
    assert "options" not in fake.deployments[deployment.guid]["body"]


def test_cancel_deployment_and_cancel_after_finalized_is_quiet(
    fake: FakeCf, client: CfClient
) -> None:
    deployment = client.create_deployment("app-1")
    client.cancel_deployment(deployment.guid)
    canceled = client.get_deployment(deployment.guid)
    assert (canceled.state, canceled.reason, canceled.succeeded) == ("FINALIZED", "CANCELED", False)
    client.cancel_deployment(deployment.guid)  # 422 on a finalized deployment: nothing to do


def test_wait_deployment_times_out(ca: trustme.CA) -> None:
    fake = FakeCf(ca, deployment_polls=10_000)
    try:
        with CfClient(fake.url, user_auth(ca), poll_cap_s=0.1) as client:
            deployment = client.create_deployment("app-1")
            with pytest.raises(CfTimeout, match="rolling deployment"):
                client.wait_deployment(deployment.guid, deadline=_soon(0.4))
    finally:
        fake.close()


def test_restage_runs_the_cf_cli_sequence(fake: FakeCf, client: CfClient) -> None:
    client.restage("app-1", deadline=_soon())
    sequence = [f"{c.method} {c.path}" for c in fake.calls if c.path not in ("/", "/oauth/token")]
    assert sequence == [
        "GET /v3/packages",
        "POST /v3/builds",
        "GET /v3/builds/build-1",
        "GET /v3/builds/build-1",
        "POST /v3/apps/app-1/actions/stop",
        "PATCH /v3/apps/app-1/relationships/current_droplet",
        "POST /v3/apps/app-1/actions/start",
        "GET /v3/apps/app-1/processes/web/stats",
    ]
    assert fake.apps["app-1"]["droplet"] == "droplet-2"
    assert fake.apps["app-1"]["state"] == "STARTED"
