"""PyPI `cloudfoundry-client` (1.40.4, not ours) drives the sandbox end to end.

What the library does, read from its source (cloudfoundry-community/cf-python-client at
1.40.4 and its pinned `oauth2-client` 1.4.2):
- `cloudfoundry_client/client.py` `CloudFoundryClient.__init__` calls `GET /` with module
  `requests` and `verify=` (no token), resolves the token endpoint `links.login` ->
  `links.uaa` -> `links.self`, and builds v2 managers only if `cloud_controller_v2` is
  linked; `_grant_password_request` adds `login_hint` to the form body;
- `oauth2_client/credentials_manager.py` posts the grant with HTTP Basic `cf:` (secret
  "" is not None), `scope=` empty, and needs a `refresh_token` for the password grant; API
  calls go through a session with `verify=` and `trust_env=False`; a 401 whose v3 error has
  code 1000 and title `CF-InvalidAuthToken` refreshes the token once and replays;
- `cloudfoundry_client/v3/entities.py`: lists join values with commas, follow
  `pagination.next.href`, mix `included` into resources by relationship name; a 202's
  `Location` becomes a job link;
- `v3/service_credential_bindings.py` `create` always sends `"name"` (null here) and no
  `strategy`; `v3/jobs.py` polls `/v3/jobs/:guid` until COMPLETE or FAILED (returned, not
  raised); `v3/apps.py` `get_env` reads `/v3/apps/:guid/env`. Env var PATCH, binding
  delete and deployments have no manager, so they are raw `client.patch/delete/post`.
Trust: the sandbox CA goes to `verify=` as a file (public certificate only); verification
stays on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cloudfoundry_client.client import CloudFoundryClient
from cloudfoundry_client.errors import InvalidStatusCode

from cf_sandbox import Landscape

pytestmark = pytest.mark.e2e


def _job_guid(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


def _wait(client: CloudFoundryClient, job_guid: str) -> Any:
    # A short fixed step keeps the test fast; the library's default doubles from 1 s.
    return client.v3.jobs.wait_for_job_completion(
        job_guid, step=0.05, step_function=lambda step: step, timeout=20
    )


@pytest.fixture(scope="module")
def ls() -> Iterator[Landscape]:
    with Landscape(instances=2, token_ttl_s=2.0) as landscape:
        yield landscape


@pytest.fixture(scope="module")
def client(ls: Landscape, tmp_path_factory: pytest.TempPathFactory) -> CloudFoundryClient:
    ca = tmp_path_factory.mktemp("ca") / "sandbox-ca.pem"
    ca.write_text(ls.ca_pem)  # the server CA's certificate: public
    hint = quote(json.dumps({"origin": ls.origin}))
    cf = CloudFoundryClient(ls.api_url, verify=str(ca), login_hint=hint)
    cf.init_with_user_credentials(ls.username, ls.password)
    return cf


def test_login_resolves_the_token_endpoint_and_trusts_the_sandbox_ca(
    ls: Landscape, client: CloudFoundryClient, tmp_path: Path
) -> None:
    assert client.service_information.token_service == f"{ls.login_url}/oauth/token"
    assert client.info.api_v3_url == f"{ls.api_url}/v3"
    assert client.info.api_v2_url is None  # v2 is off unless the operator enables it
    assert client.refresh_token
    other_ca = tmp_path / "other.pem"
    other_ca.write_text(ls.trusted_root_pem)  # a CA that did not sign the API certificate
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        CloudFoundryClient(ls.api_url, verify=str(other_ca))


def test_a_wrong_origin_is_refused_by_uaa(ls: Landscape, tmp_path: Path) -> None:
    from oauth2_client.credentials_manager import OAuthError

    ca = tmp_path / "ca.pem"
    ca.write_text(ls.ca_pem)
    hint = quote(json.dumps({"origin": "elsewhere"}))
    cf = CloudFoundryClient(ls.api_url, verify=str(ca), login_hint=hint)
    with pytest.raises(OAuthError) as refused:
        cf.init_with_user_credentials(ls.username, ls.password)
    assert refused.value.status_code == 401


def test_lookups_by_name(ls: Landscape, client: CloudFoundryClient) -> None:
    org = client.v3.organizations.get_first(names=ls.org.upper())  # names: case-insensitive
    assert org is not None
    assert org["name"] == ls.org
    space = client.v3.spaces.get_first(names=ls.space, organization_guids=org["guid"])
    assert space is not None
    app = client.v3.apps.get_first(names=ls.app, space_guids=space["guid"])
    assert app is not None
    assert app["guid"] == ls.app_guid
    si = client.v3.service_instances.get_first(names=ls.service_instance, space_guids=space["guid"])
    assert si is not None
    assert si["guid"] == ls.service_instance_guid
    assert client.v3.service_instances.get_first(names=ls.service_instance.upper()) is None


def test_pagination_and_included_resources(ls: Landscape, client: CloudFoundryClient) -> None:
    names = [f"extra-{i}" for i in range(3)]
    for name in names:
        ls.add_app(name)
    apps = list(client.v3.apps.list(per_page=2, include="space"))
    assert {a["name"] for a in apps} >= {ls.app, *names}
    assert all(a.space()["guid"] == a["relationships"]["space"]["data"]["guid"] for a in apps)


def test_env_and_env_patch(ls: Landscape, client: CloudFoundryClient) -> None:
    env = client.v3.apps.get_env(ls.app_guid)
    assert "CLI_CHAIN" in env["environment_variables"]
    vcap_app = env["application_env_json"]["VCAP_APPLICATION"]
    assert vcap_app["limits"] == {"fds": 16384}
    assert list(env["system_env_json"]["VCAP_SERVICES"]) == ["it-rt"]
    url = f"{ls.api_url}/v3/apps/{ls.app_guid}/environment_variables"
    patched = client.patch(url, json={"var": {"EXTRA": "1"}}).json()
    assert patched["var"]["EXTRA"] == "1"
    assert "EXTRA" not in client.patch(url, json={"var": {"EXTRA": None}}).json()["var"]
    with pytest.raises(InvalidStatusCode) as refused:
        client.patch(url, json={"var": {"PORT": "8080"}})
    assert refused.value.status_code == 422
    assert refused.value.body["errors"][0]["detail"] == "Var cannot set PORT"


def test_bindings_list_create_delete_with_job_polling(
    ls: Landscape, client: CloudFoundryClient
) -> None:
    bindings = client.v3.service_credential_bindings
    filters = {"app_guids": [ls.app_guid], "service_instance_guids": [ls.service_instance_guid]}
    [old] = list(bindings.list(type="app", **filters))
    leaf = ls.mint("python-client").chain_pem.split("-----END CERTIFICATE-----")[0]
    parameters = {
        "key-type": "certificate_external",
        "X.509": leaf + "-----END CERTIFICATE-----\n",
    }

    def create() -> Any:
        return bindings.create(
            None, "app", ls.service_instance_guid, ls.app_guid, parameters, None, None
        )

    # No `strategy` (the library cannot send one): a second binding is "already bound".
    with pytest.raises(InvalidStatusCode) as refused:
        create()
    assert refused.value.status_code == 422
    assert refused.value.body["errors"][0]["detail"] == (
        "The app is already bound to the service instance"
    )
    deleted = client.delete(f"{ls.api_url}/v3/service_credential_bindings/{old['guid']}")
    assert deleted.status_code == 202
    assert _wait(client, _job_guid(deleted.headers["Location"]))["state"] == "COMPLETE"
    job = _wait(client, create())
    assert (job["state"], job["operation"]) == ("COMPLETE", "service_bindings.create")
    [new] = list(bindings.list(type="app", **filters))
    assert new["last_operation"]["state"] == "succeeded"
    details = bindings.get(new["guid"], "details")
    assert details["credentials"]["oauth"]["certificate"] == parameters["X.509"]
    with pytest.raises(InvalidStatusCode) as not_supported:
        bindings.get(new["guid"], "parameters")
    assert not_supported.value.status_code == 400
    assert not_supported.value.body["errors"][0]["code"] == 90007


def test_rolling_deployment_raw(ls: Landscape, client: CloudFoundryClient) -> None:
    body = {"strategy": "rolling", "relationships": {"app": {"data": {"guid": ls.app_guid}}}}
    dep = client.post(f"{ls.api_url}/v3/deployments", json=body).json()
    assert (dep["status"]["value"], dep["status"]["reason"]) == ("ACTIVE", "DEPLOYING")
    assert "cancel" in dep["links"]
    end = time.monotonic() + 20
    while dep["status"]["value"] != "FINALIZED":
        assert time.monotonic() < end
        time.sleep(0.05)
        dep = client.get(f"{ls.api_url}/v3/deployments/{dep['guid']}").json()
    assert dep["status"]["reason"] == "DEPLOYED"
    assert "cancel" not in dep["links"]  # deployment_presenter.rb: only while cancelable
    with pytest.raises(InvalidStatusCode) as refused:
        client.post(f"{ls.api_url}/v3/deployments/{dep['guid']}/actions/cancel")
    assert refused.value.body["errors"][0]["detail"] == (
        "Cannot cancel a deployment with status: FINALIZED and reason: DEPLOYED"
    )


def test_an_expired_token_is_refreshed_and_the_call_replayed(
    ls: Landscape, client: CloudFoundryClient
) -> None:
    """client.py `_is_token_expired` keys on code 1000 + `CF-InvalidAuthToken`; the sandbox's
    token lasts 2 s (UAA's `exp` is whole seconds)."""
    time.sleep(2.1)
    ls.clear_calls()
    org = client.v3.organizations.get_first(names=ls.org)
    assert org is not None
    calls = [(c["server"], c["method"], c["path"], c["status"]) for c in ls.calls()]
    assert calls == [
        ("cc", "GET", "/v3/organizations", 401),
        ("uaa", "POST", "/oauth/token", 200),
        ("cc", "GET", "/v3/organizations", 200),
    ]
