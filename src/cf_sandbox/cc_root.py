"""Discovery: `GET /`, `GET /v3`, `GET /v3/info` and `GET /v2/info` (no token needed).

Sources (cloud_controller_ng): `app/controllers/runtime/root_controller.rb` (the links;
`cloud_controller_v2` only with the operator's `temporary_enable_v2`),
`app/controllers/v3/root_controller.rb` (`/v3`), `app/controllers/v3/info_controller.rb`
and `app/presenters/v3/info_presenter.rb` (`/v3/info`; an unset rate limit shows as ""),
`app/controllers/runtime/info_controller.rb` (`/v2/info` always answers; with v2 off it
says so). Clients read `links.cloud_controller_v3.meta.version` to gate features (the cf
CLI: `api/cloudcontroller/ccversion/minimum_version.go`) and post tokens to
`links.login.href + /oauth/token` (cf CLI `actor/v7action/target.go`).
"""

from __future__ import annotations

from typing import Any

from .context import Ctx
from .web import Request, Response, Router

# v3/root_controller.rb, in CC's order.
_V3_RESOURCES = (
    "app_usage_events",
    "apps",
    "audit_events",
    "buildpacks",
    "builds",
    "deployments",
    "domains",
    "droplets",
    "environment_variable_groups",
    "feature_flags",
    "info",
    "isolation_segments",
    "organizations",
    "organization_quotas",
    "packages",
    "processes",
    "resource_matches",
    "roles",
    "routes",
    "security_groups",
    "service_brokers",
    "service_instances",
    "service_credential_bindings",
    "service_offerings",
    "service_plans",
    "service_route_bindings",
    "service_usage_events",
    "spaces",
    "space_quotas",
    "stacks",
    "tasks",
    "users",
)
# The v2 API version CC reports (lib/cloud_controller/constants.rb API_VERSION).
_V2_VERSION = "2.264.0"
_NAME, _BUILD, _DESCRIPTION = "cf-sandbox", "cf-sandbox", "Local Cloud Foundry sandbox"


class RootRoutes:
    """The discovery endpoints."""

    def __init__(self, ctx: Ctx, log_cache_url: str) -> None:
        self.ctx = ctx
        self.log_cache_url = log_cache_url

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.add("GET", "/", self.root, auth=False)
        router.add("GET", "/v3", self.v3, auth=False)
        router.add("GET", "/v3/info", self.info, auth=False)
        router.add("GET", "/v2/info", self.v2_info, auth=False)

    def root(self, req: Request) -> Response:
        """`GET /`: the links, with the v3 version."""
        base = req.base_url
        host = base.split("//", 1)[1]
        links: dict[str, Any] = {
            "self": {"href": base},
            "cloud_controller_v3": {
                "href": f"{base}/v3",
                "meta": {"version": self.ctx.store.options.api_version},
            },
            "network_policy_v0": {"href": f"{base}/networking/v0/external"},
            "network_policy_v1": {"href": f"{base}/networking/v1/external"},
            "login": {"href": self.ctx.login_url},
            "uaa": {"href": self.ctx.uaa_url},
            "credhub": None,
            "routing": {"href": f"{base}/routing"},
            "logging": {"href": f"wss://{host}/doppler"},
            "log_cache": {"href": self.log_cache_url},
            "log_stream": {"href": f"{base}/log-stream"},
            "app_ssh": {
                "href": f"{host.split(':')[0]}:2222",
                "meta": {"host_key_fingerprint": "sandbox", "oauth_client": "ssh-proxy"},
            },
        }
        if self.ctx.store.options.temporary_enable_v2:
            links["cloud_controller_v2"] = {"href": f"{base}/v2", "meta": {"version": _V2_VERSION}}
        return Response(200, {"links": links})

    def v3(self, req: Request) -> Response:
        """`GET /v3`: links to every resource collection."""
        links = {"self": {"href": f"{req.base_url}/v3"}}
        links.update({name: {"href": f"{req.base_url}/v3/{name}"} for name in _V3_RESOURCES})
        return Response(200, {"links": links})

    def info(self, req: Request) -> Response:
        """`GET /v3/info`, including whether rate limiting is on."""
        options = self.ctx.store.options
        limited = options.rate_limit is not None
        return Response(
            200,
            {
                "build": _BUILD,
                "cli_version": {"minimum": "", "recommended": ""},
                "custom": {},
                "description": _DESCRIPTION,
                "name": _NAME,
                "version": 0,
                "osbapi_version": "2.15",
                "rate_limits": {
                    "enabled": limited,
                    "general_limit": options.rate_limit if limited else "",
                    "reset_interval_in_minutes": round(options.rate_limit_window_s / 60, 2)
                    if limited
                    else "",
                },
                "links": {
                    "self": {"href": f"{req.base_url}/v3/info"},
                    "support": {"href": ""},
                },
            },
        )

    def v2_info(self, req: Request) -> Response:
        """`GET /v2/info`: present either way; with v2 off, `support` says so."""
        enabled = self.ctx.store.options.temporary_enable_v2
        host = req.base_url.split("//", 1)[1]
        return Response(
            200,
            {
                "name": _NAME,
                "build": _BUILD,
                "support": "" if enabled else "CF API v2 is disabled",
                "version": 0,
                "description": _DESCRIPTION,
                "authorization_endpoint": self.ctx.login_url,
                "token_endpoint": self.ctx.uaa_url,
                "min_cli_version": None,
                "min_recommended_cli_version": None,
                "app_ssh_endpoint": f"{host.split(':')[0]}:2222",
                "app_ssh_host_key_fingerprint": "sandbox",
                "app_ssh_oauth_client": "ssh-proxy",
                "doppler_logging_endpoint": f"wss://{host}/doppler",
                "api_version": _V2_VERSION if enabled else "",
                "osbapi_version": "2.15",
            },
        )
