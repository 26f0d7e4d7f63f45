"""Discovery: `GET /`, `GET /v3` and `GET /v3/info` (no token needed).

Clients read `links.cloud_controller_v3.meta.version` to gate features (multiple
bindings need 3.205.0) and post tokens to `links.login.href + /oauth/token`.
"""

from __future__ import annotations

from typing import Any

from .context import Ctx
from .web import Request, Response, Router, check_query

_V3_RESOURCES = (
    "apps",
    "builds",
    "buildpacks",
    "deployments",
    "domains",
    "droplets",
    "feature_flags",
    "info",
    "isolation_segments",
    "organizations",
    "organization_quotas",
    "packages",
    "processes",
    "resource_matches",
    "revisions",
    "roles",
    "routes",
    "security_groups",
    "service_brokers",
    "service_credential_bindings",
    "service_instances",
    "service_offerings",
    "service_plans",
    "service_route_bindings",
    "spaces",
    "stacks",
    "tasks",
    "users",
)


class RootRoutes:
    """The discovery endpoints."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.add("GET", "/", self.root, auth=False)
        router.add("GET", "/v3", self.v3, auth=False)
        router.add("GET", "/v3/info", self.info, auth=False)

    def root(self, req: Request) -> Response:
        """`GET /`: the links, with the v3 version."""
        base = req.base_url
        host = base.split("//", 1)[1]
        body: dict[str, Any] = {
            "links": {
                "self": {"href": base},
                "bits_service": None,
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
                "log_cache": {"href": f"{base}/log-cache"},
                "log_stream": {"href": f"{base}/log-stream"},
                "app_ssh": {
                    "href": f"{host}:2222",
                    "meta": {"host_key_fingerprint": "sandbox", "oauth_client": "ssh-proxy"},
                },
            }
        }
        return Response(200, body)

    def v3(self, req: Request) -> Response:
        """`GET /v3`: links to every resource collection."""
        links = {"self": {"href": f"{req.base_url}/v3"}}
        links.update({name: {"href": f"{req.base_url}/v3/{name}"} for name in _V3_RESOURCES})
        return Response(200, {"links": links})

    def info(self, req: Request) -> Response:
        """`GET /v3/info`, including whether rate limiting is on."""
        check_query(req, [])
        options = self.ctx.store.options
        return Response(
            200,
            {
                "build": "cf-sandbox",
                "cli_version": {"minimum": "8.0.0", "recommended": "8.9.0"},
                "custom": {},
                "description": "Local Cloud Foundry sandbox (cf_sandbox)",
                "name": "cf-sandbox",
                "version": 0,
                "osbapi_version": "2.15",
                "rate_limits": {
                    "enabled": options.rate_limit is not None,
                    "general_limit": options.rate_limit,
                    "reset_interval_in_minutes": round(options.rate_limit_window_s / 60, 2),
                },
                "links": {
                    "self": {"href": f"{req.base_url}/v3/info"},
                    "support": {"href": ""},
                },
            },
        )
