"""`from_api()` on the documented v3 shapes (reference/cf-api-v3.md), and shape errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cpi_cert_rotate.cf import App, Binding, CfApiError, Deployment, Job, RootInfo
from cpi_cert_rotate.cf.resources import parse


def test_root_info_prefers_login_for_the_token_endpoint() -> None:
    root = RootInfo.from_api(
        {
            "links": {
                "self": {"href": "https://api.X"},
                "cloud_controller_v3": {"href": "https://api.X/v3", "meta": {"version": "3.205.0"}},
                "login": {"href": "https://login.X"},
                "uaa": {"href": "https://uaa.X"},
                "credhub": None,
            }
        }
    )
    assert root.v3_version == (3, 205, 0)
    assert root.token_url == "https://login.X/oauth/token"
    no_login = RootInfo.from_api(
        {
            "links": {
                "cloud_controller_v3": {"meta": {"version": "3.99"}},
                "uaa": {"href": "https://u/"},
            }
        },
        "https://api.Y",
    )
    assert (no_login.v3_version, no_login.api_url) == ((3, 99, 0), "https://api.Y")
    assert no_login.token_url == "https://u/oauth/token"


def test_binding_from_the_documented_object() -> None:
    binding = Binding.from_api(
        {
            "guid": "B",
            "name": None,
            "type": "app",
            "created_at": "2025-01-02T03:04:05Z",
            "updated_at": "2025-01-02T03:04:05Z",
            "last_operation": {"type": "create", "state": "in progress", "description": None},
            "metadata": {"labels": {}, "annotations": {}},
            "relationships": {
                "app": {"data": {"guid": "A"}},
                "service_instance": {"data": {"guid": "SI"}},
            },
            "links": {},
        }
    )
    assert binding == Binding(
        guid="B",
        name=None,
        state="in progress",
        operation="create",
        created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        app_guid="A",
        service_instance_guid="SI",
    )
    assert not binding.succeeded


def test_job_takes_the_resource_guid_from_its_link() -> None:
    job = Job.from_api(
        {
            "guid": "J",
            "operation": "service_bindings.create",
            "state": "POLLING",
            "errors": [],
            "warnings": [{"detail": "w1"}],
            "links": {
                "self": {"href": "https://api.X/v3/jobs/J"},
                "service_credential_binding": {
                    "href": "https://api.X/v3/service_credential_bindings/B"
                },
            },
        }
    )
    assert (job.resource_guid, job.warnings, job.finished) == ("B", ("w1",), False)


def test_deployment_status_and_error() -> None:
    deployment = Deployment.from_api(
        {
            "guid": "D",
            "status": {"value": "FINALIZED", "reason": "CANCELED", "details": {"error": "quota"}},
            "droplet": {"guid": "DR"},
            "relationships": {"app": {"data": {"guid": "A"}}},
        }
    )
    assert (deployment.finalized, deployment.succeeded, deployment.error) == (True, False, "quota")


def test_app_metadata_drops_null_values() -> None:
    app = App.from_api(
        {
            "guid": "A",
            "name": "n",
            "state": "STOPPED",
            "metadata": {"annotations": {"k": "v", "gone": None}, "labels": None},
        }
    )
    assert (app.annotations, app.labels, app.space_guid) == ({"k": "v"}, {}, None)


@pytest.mark.parametrize("data", [{"name": "x"}, ["not", "an", "object"], None])
def test_unexpected_shape_is_a_cf_api_error(data: object) -> None:
    with pytest.raises(CfApiError, match="unexpected shape for an app"):
        parse(App.from_api, data, "an app", status=200)
