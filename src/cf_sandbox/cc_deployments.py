"""Deployments: `POST /v3/deployments` (201 ACTIVE/DEPLOYING), show, list, cancel.

The rollout itself runs in `rollout.Rollouts`. Sources (cloud_controller_ng):
`app/controllers/v3/deployments_controller.rb` (create, cancel and continue answer 200 with
an empty body), `app/messages/deployment_create_message.rb` (the body's texts),
`app/actions/deployment_create.rb` and `lib/cloud_controller/deployments/
deployment_target_state.rb` (droplet and revision texts; a quota error is the process
validation message, e.g. "memory quota_exceeded", plus CC's hint for the org),
`app/actions/deployment_cancel.rb` and `deployment_continue.rb` ("Cannot cancel a deployment
with status: FINALIZED and reason: DEPLOYED"; CANCELING may be cancelled again),
`app/messages/deployments_list_message.rb`. Below CC API 3.173.0 the create message has no
`options` and knows only the `rolling` strategy (`deployment_create_message.rb` before
cloud_controller_ng commits d66f46a60d and 2329550f2d), so `options` is an unknown field
there. A rolling deployment needs room for one extra
instance, so an org at its memory quota gets the 422 (the `{"deployment":"quota"}` fault).
"""

from __future__ import annotations

from typing import Any

from . import present
from .context import Ctx
from .listing import list_spec, parse
from .metadata import metadata_problems, parse_metadata
from .paging import by_attributes, list_response
from .state import Deployment
from .web import GUID, Request, Response, Router, unprocessable

_QUOTA_TEXT = (
    "memory quota_exceeded for organization {org}. This organization's quota may not be large "
    "enough to support rolling deployments or your configured max-in-flight."
)
_OPTION_KEYS = (
    "canary",
    "max_in_flight",
    "web_instances",
    "memory_in_mb",
    "disk_in_mb",
    "log_rate_limit_in_bytes_per_second",
)
LIST = list_spec("app_guids", "states", "status_reasons", "status_values")


def _create_problems(body: dict[str, Any], *, options_known: bool = True) -> list[str]:
    """`DeploymentCreateMessage` validations, in CC's order; `options_known`: CC >= 3.173.0."""
    problems = metadata_problems(body["metadata"]) if "metadata" in body else []
    allowed: tuple[str, ...] = ("relationships", "droplet", "revision", "strategy", "metadata")
    allowed += ("options",) if options_known else ()
    unknown = [k for k in body if k not in allowed]
    if unknown:
        problems.append("Unknown field(s): '" + "', '".join(unknown) + "'")
    strategy = body.get("strategy")
    strategies = ("rolling", "canary") if options_known else ("rolling",)
    if strategy is not None and strategy not in strategies:
        problems.append(f"Strategy '{strategy}' is not a supported deployment strategy")
    if body.get("revision") and body.get("droplet"):
        problems.append("Droplet Cannot set both fields 'droplet' and 'revision'")
    options = body.get("options") if options_known else None
    if options:
        if not isinstance(options, dict):
            problems.append("Options must be an object")
        else:
            unsupported = [k for k in options if k not in _OPTION_KEYS]
            if unsupported:
                problems.append(f"Options has unsupported key(s): {', '.join(unsupported)}")
            value = options.get("max_in_flight")
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                problems.append("Max in flight must be an integer greater than 0")
    return problems


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
        problems = _create_problems(
            body, options_known=self.ctx.store.options.supports_deployment_options
        )
        if problems:
            raise unprocessable(", ".join(problems))
        strategy = body.get("strategy") or "rolling"
        options = body.get("options") or {}
        store = self.ctx.store
        max_in_flight = options.get("max_in_flight") or 1
        droplet_guid = _guid_of(body, "droplet")
        revision_guid = _guid_of(body, "revision")
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
                org = store.orgs[store.spaces[app.space_guid].org_guid]
                raise unprocessable(_QUOTA_TEXT.format(org=org.name))
            dep = Deployment(
                app_guid=app.guid,
                strategy=strategy,
                max_in_flight=max_in_flight,
                droplet_guid=droplet_guid,
            )
            self.ctx.set_metadata(dep, parse_metadata(body))  # may refuse: nothing stored yet
            store.add(dep)
            self.ctx.rollouts.create(app, dep)
            return Response(201, present.deployment(dep, req.base_url))

    def list(self, req: Request) -> Response:
        """`GET /v3/deployments`."""
        query = parse(req, LIST)
        with self.ctx.store.lock:
            return list_response(
                req,
                query,
                self.ctx.store.deployments.values(),
                by_attributes(
                    query,
                    {"app_guids": "app_guid", "status_values": "value", "status_reasons": "reason"},
                ),
                lambda d: present.deployment(d, req.base_url),
            )

    def _get(self, guid: str) -> Deployment:
        return self.ctx.get_or_404(self.ctx.store.deployments, guid, "Deployment")

    def update(self, req: Request, guid: str) -> Response:
        """`PATCH /v3/deployments/:guid`: metadata."""
        body = req.json_object()
        problems = metadata_problems(body["metadata"]) if "metadata" in body else []
        unknown = [k for k in body if k != "metadata"]
        if unknown:
            problems.append("Unknown field(s): '" + "', '".join(unknown) + "'")
        with self.ctx.store.lock:
            dep = self._get(guid)
            if problems:
                raise unprocessable(", ".join(problems))
            self.ctx.set_metadata(dep, parse_metadata(body))
            return Response(200, present.deployment(dep, req.base_url))

    def cancel(self, req: Request, guid: str) -> Response:
        """`POST .../actions/cancel`: 200, empty body; the rollout reverts in the background."""
        with self.ctx.store.lock:
            dep = self._get(guid)
            if dep.value != "ACTIVE":  # cancelable?: DEPLOYING, PAUSED and CANCELING
                raise unprocessable(
                    f"Cannot cancel a deployment with status: {dep.value} and reason: {dep.reason}"
                )
            if dep.reason != "CANCELING":
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
            return Response(200)
