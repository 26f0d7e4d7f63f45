"""The Cloud Controller requests the engine sends, held to cloud_controller_ng's rules.

The audit of issues 11 and 14 (docs/sandbox-conformance.md, "The engine's requests"):
every request shape the engine and the fleet scan send is in `ENGINE_REQUESTS` with the
CC file that decides whether it is accepted; the sandbox must accept each one, and must
refuse the near misses CC refuses, with CC's texts. Sources are cloud_controller_ng
(`config/routes.rb`, `app/messages/*_message.rb`, `app/messages/base_message.rb`,
`list_message.rb`) unless another repository is named.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conformance_kit import Api

from cf_sandbox import Landscape

pytestmark = pytest.mark.e2e


def _bad_query(api: Api, path: str) -> str:
    error = api.error(api.get(path), 400)
    assert (error["code"], error["title"]) == (10005, "CF-BadQueryParameter")
    detail = str(error["detail"])
    prefix = "The query parameter is invalid: "
    assert detail.startswith(prefix)
    return detail[len(prefix) :]


_BASE = "'page', 'per_page', 'order_by', 'created_ats', 'updated_ats', 'guids'"


# -- near misses of the engine's queries: refused as CC refuses them ---------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (  # apps_list_message.rb: IncludeParamValidator valid_values
            "/v3/apps?names=x&include=organization",
            "Invalid included resource: 'organization'. Valid included resources are: "
            "'space', 'org', 'space.organization'",
        ),
        (  # spaces_list_message.rb
            "/v3/spaces?guids=x&include=space.organization",
            "Invalid included resource: 'space.organization'. Valid included resources "
            "are: 'org', 'organization'",
        ),
        (  # service_credential_binding_list_message.rb
            "/v3/service_credential_bindings?type=app&include=apps",
            "Invalid included resource: 'apps'. Valid included resources are: 'app', "
            "'service_instance'",
        ),
        (
            "/v3/service_credential_bindings?type=app&include=app,app",
            "Duplicate included resource: 'app'",
        ),
        (  # list_message.rb: PaginationPageValidator
            "/v3/service_credential_bindings?type=app&per_page=5001",
            "Per page must be between 1 and 5000",
        ),
        (  # service_instances_list_message.rb: no `include` (only `fields`)
            "/v3/service_instances?type=user-provided&include=space",
            "Unknown query parameter(s): 'include'. Valid parameters are: "
            f"{_BASE}, 'type', 'fields', 'names', 'space_guids', 'organization_guids', "
            "'service_plan_guids', 'service_plan_names', 'label_selector'",
        ),
        (  # orgs_list_message.rb: no `include`
            "/v3/organizations?names=x&include=spaces",
            "Unknown query parameter(s): 'include'. Valid parameters are: "
            f"{_BASE}, 'names', 'isolation_segment_guid', 'label_selector'",
        ),
        (  # deployments_list_message.rb: the keys are plural
            "/v3/deployments?app_guids=x&status_value=ACTIVE",
            "Unknown query parameter(s): 'status_value'. Valid parameters are: "
            f"{_BASE}, 'app_guids', 'states', 'status_reasons', 'status_values', "
            "'label_selector'",
        ),
        (  # processes_list_message.rb
            "/v3/processes?app_guids=x&type=web",
            "Unknown query parameter(s): 'type'. Valid parameters are: "
            f"{_BASE}, 'app_guid', 'types', 'space_guids', 'organization_guids', "
            "'app_guids', 'embed', 'label_selector'",
        ),
        (  # service_credential_binding_list_message.rb: `type` is app or key
            "/v3/service_credential_bindings?type=user-provided",
            "Type must be one of 'app', 'key'",
        ),
        (  # packages_list_message.rb: ListMessage#valid_order_by_values
            "/v3/packages?app_guids=x&order_by=-created",
            "Order by can only be: 'created_at', 'updated_at'",
        ),
    ],
)
def test_near_misses_of_the_engines_queries_get_ccs_400(api: Api, query: str, message: str) -> None:
    assert _bad_query(api, query) == message


# -- deployment `options` exist from CC API 3.173.0 ---------------------------------------------


@pytest.fixture
def api_version(landscape: Landscape) -> Iterator[None]:
    """Restores the module landscape's API version after a test that changes it."""
    before = landscape.options()["api_version"]
    yield
    landscape.set_options(api_version=before)


def _deploy(api: Api, **extra: object) -> tuple[int, str]:
    body = {
        "strategy": "rolling",
        "relationships": {"app": {"data": {"guid": api.ls.app_guid}}},
        **extra,
    }
    resp = api.call("POST", "/v3/deployments", json=body)
    if resp.status_code == 201:
        api.ok(api.call("POST", f"/v3/deployments/{resp.json()['guid']}/actions/cancel"))
        return 201, ""
    return resp.status_code, str(resp.json()["errors"][0]["detail"])


@pytest.mark.usefixtures("api_version")
def test_deployment_options_are_an_unknown_field_before_3_173(
    api: Api, landscape: Landscape
) -> None:
    """deployment_create_message.rb before commits d66f46a60d ("Add Canary deployments")
    and 2329550f2d ("Max in flight"), both at config/version 3.173.0: the allowed keys
    were relationships, droplet, revision and strategy, and strategy only `rolling`."""
    landscape.set_options(api_version="3.172.0")
    assert _deploy(api, options={"max_in_flight": 2}) == (422, "Unknown field(s): 'options'")
    assert _deploy(api, strategy="canary") == (
        422,
        "Strategy 'canary' is not a supported deployment strategy",
    )
    assert _deploy(api) == (201, "")
    landscape.set_options(api_version="3.173.0")
    assert _deploy(api, options={"max_in_flight": 2}) == (201, "")
