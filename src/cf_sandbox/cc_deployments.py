"""Deployments: `POST /v3/deployments` (201 ACTIVE/DEPLOYING), show, list, cancel.

The rollout itself runs in `rollout.Rollouts`. A rolling deployment needs room for one
extra instance, so an org at its memory quota gets a 422 (the `{"deployment":"quota"}`
fault); the text is CC's process validation message [U: not in the reference].
"""

from __future__ import annotations

from typing import Any

from . import present
from .cc_lookups import app_scoped_list
from .context import Ctx
from .state import Deployment
from .validate import apply_metadata
from .web import (
    GUID,
    Request,
    Response,
    Router,
    check_fields,
    unprocessable,
)

_QUOTA_TEXT = "memory quota_exceeded"


def _guid_of(body: dict[str, Any], field: str) -> str | None:
    ref = body.get(field)
    guid = ref.get("guid") if isinstance(ref, dict) else None
    return guid if isinstance(guid, str) else None


class DeploymentRoutes:
    """Everything under /v3/deployments."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.add("POST", "/v3/deployments", self.create)
        router.add("GET", "/v3/deployments", self.list)
        self.ctx.add_show(
            router, "/v3/deployments", self.ctx.store.deployments, "Deployment", present.deployment
        )
        router.add("PATCH", f"/v3/deployments/{GUID}", self.update)
        router.add("POST", f"/v3/deployments/{GUID}/actions/cancel", self.cancel)
        router.add("POST", f"/v3/deployments/{GUID}/actions/continue", self.resume)

    def create(self, req: Request) -> Response:
        """`POST /v3/deployments` -> 201 with status ACTIVE/DEPLOYING."""
        body = req.json_object()
        check_fields(
            body, {"droplet", "revision", "strategy", "options", "relationships", "metadata"}
        )
        strategy = body.get("strategy", "rolling")
        if strategy not in ("rolling", "canary"):
            raise unprocessable(f"Strategy '{strategy}' is not a supported deployment strategy")
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise unprocessable("Options must be an object")
        check_fields(
            options,
            {
                "max_in_flight",
                "canary",
                "memory_in_mb",
                "disk_in_mb",
                "log_rate_limit_in_bytes_per_second",
                "web_instances",
            },
        )
        store = self.ctx.store
        max_in_flight = options.get("max_in_flight", store.options.max_in_flight_default)
        if (
            not isinstance(max_in_flight, int)
            or isinstance(max_in_flight, bool)
            or (max_in_flight < 1)
        ):
            raise unprocessable("Max in flight must be an integer greater than 0")
        droplet_guid = _guid_of(body, "droplet")
        revision_guid = _guid_of(body, "revision")
        if droplet_guid and revision_guid:
            raise unprocessable("Cannot set both fields 'droplet' and 'revision'")
        app_ref = (body.get("relationships") or {}).get("app")
        app_guid = _guid_of(app_ref, "data") if isinstance(app_ref, dict) else None
        with store.lock:
            app = store.apps.get(app_guid or "")
            if app is None:
                raise unprocessable(
                    "Unable to use app. Ensure that the app exists and you have access to it."
                )
            if droplet_guid is not None:
                droplet = store.droplets.get(droplet_guid)
                if droplet is None or droplet.app_guid != app.guid:
                    raise unprocessable(
                        "Unable to assign current droplet. Ensure the droplet "
                        "exists and belongs to this app."
                    )
            if revision_guid is not None:
                revision = store.revisions.get(revision_guid)
                if revision is None or revision.app_guid != app.guid:
                    raise unprocessable("The revision does not exist")
                droplet_guid = revision.droplet_guid
                app.env_vars = dict(revision.env_vars)
            if app.droplet_guid is None and droplet_guid is None:
                raise unprocessable(
                    "Invalid droplet. Please specify a droplet in the request "
                    "or set a current droplet for the app."
                )
            if self.ctx.faults.deployment("quota"):
                raise unprocessable(_QUOTA_TEXT)
            dep: Deployment = store.add(
                Deployment(
                    app_guid=app.guid,
                    strategy=strategy,
                    max_in_flight=max_in_flight,
                    droplet_guid=droplet_guid,
                )
            )
            apply_metadata(dep, body)
            self.ctx.rollouts.create(app, dep)
            return Response(201, present.deployment(dep, req.base_url))

    def list(self, req: Request) -> Response:
        """`GET /v3/deployments`."""
        with self.ctx.store.lock:
            return app_scoped_list(
                req,
                self.ctx.store.deployments.values(),
                {"status_values": "value", "status_reasons": "reason"},
                lambda d: present.deployment(d, req.base_url),
                extra=("states",),
            )

    def _get(self, guid: str) -> Deployment:
        return self.ctx.get_or_404(self.ctx.store.deployments, guid, "Deployment")

    def update(self, req: Request, guid: str) -> Response:
        """`PATCH /v3/deployments/:guid`: metadata."""
        body = req.json_object()
        check_fields(body, {"metadata"})
        with self.ctx.store.lock:
            dep = self._get(guid)
            apply_metadata(dep, body)
            return Response(200, present.deployment(dep, req.base_url))

    def cancel(self, req: Request, guid: str) -> Response:
        """`POST .../actions/cancel`: 200, empty body; the rollout reverts in the background."""
        with self.ctx.store.lock:
            dep = self._get(guid)
            if dep.value != "ACTIVE" or dep.reason == "CANCELING":
                raise unprocessable(f"Cannot cancel a {dep.reason} deployment")
            self.ctx.rollouts.cancel(dep)
            return Response(200)

    def resume(self, req: Request, guid: str) -> Response:
        """`POST .../actions/continue`: only a PAUSED (canary) deployment can continue."""
        with self.ctx.store.lock:
            dep = self._get(guid)
            if dep.reason != "PAUSED":
                raise unprocessable(
                    "Cannot continue a deployment with status: "
                    f"{dep.value} and reason: {dep.reason}"
                )
            return Response(200, present.deployment(dep, req.base_url))
