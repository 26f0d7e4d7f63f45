"""Apps: lookups, metadata, env vars, `/env`, start/stop/restart, current droplet, processes.

Env var and binding changes take effect only when instances are replaced (CC docs: "will
not take effect until the app is restarted"); the runtime's snapshots make that visible.
"""

from __future__ import annotations

from typing import Any

from . import present
from .cc_lookups import list_response, names_match
from .context import Ctx, include_values
from .envs import env_document
from .paging import PAGING_PARAMS, csv
from .state import App, Process
from .validate import apply_metadata, env_var_changes
from .web import (
    GUID,
    ApiError,
    Request,
    Response,
    Router,
    check_fields,
    check_query,
    not_found,
    unprocessable,
)

_APP_LIST_PARAMS = [
    *PAGING_PARAMS,
    "guids",
    "label_selector",
    "created_ats",
    "updated_ats",
    "names",
    "space_guids",
    "organization_guids",
    "stacks",
    "include",
    "lifecycle_type",
]


class AppRoutes:
    """Everything under /v3/apps and /v3/processes."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        """Add the routes."""
        r = router.add
        r("GET", "/v3/apps", self.list)
        r("GET", f"/v3/apps/{GUID}", self.show)
        r("PATCH", f"/v3/apps/{GUID}", self.update)
        r("GET", f"/v3/apps/{GUID}/environment_variables", self.env_vars)
        r("PATCH", f"/v3/apps/{GUID}/environment_variables", self.patch_env_vars)
        r("GET", f"/v3/apps/{GUID}/env", self.env)
        r("POST", f"/v3/apps/{GUID}/actions/start", self.start)
        r("POST", f"/v3/apps/{GUID}/actions/stop", self.stop)
        r("POST", f"/v3/apps/{GUID}/actions/restart", self.restart)
        r("GET", f"/v3/apps/{GUID}/relationships/current_droplet", self.current_droplet_rel)
        r("PATCH", f"/v3/apps/{GUID}/relationships/current_droplet", self.set_current_droplet)
        r("GET", f"/v3/apps/{GUID}/droplets/current", self.current_droplet)
        r("GET", f"/v3/apps/{GUID}/processes", self.app_processes)
        r("GET", f"/v3/apps/{GUID}/processes/(?P<ptype>[^/]+)", self.app_process)
        r("GET", f"/v3/apps/{GUID}/processes/(?P<ptype>[^/]+)/stats", self.app_process_stats)
        r("GET", "/v3/processes", self.processes)
        r("GET", f"/v3/processes/{GUID}", self.process)
        r("GET", f"/v3/processes/{GUID}/stats", self.process_stats)

    # -- apps ---------------------------------------------------------------------

    def list(self, req: Request) -> Response:
        """`GET /v3/apps` (names case-insensitive)."""
        store = self.ctx.store
        names = csv(req, "names")
        spaces = csv(req, "space_guids")
        orgs = csv(req, "organization_guids")
        include_values(req, ("space", "space.organization"))

        def keep(a: App) -> bool:
            space = store.spaces.get(a.space_guid)
            return (
                names_match(names, a.name, case_sensitive=False)
                and (spaces is None or a.space_guid in spaces)
                and (orgs is None or (space is not None and space.org_guid in orgs))
            )

        with store.lock:
            return list_response(
                req,
                _APP_LIST_PARAMS,
                store.apps.values(),
                keep,
                lambda a: present.app(a, req.base_url),
                orders=("created_at", "updated_at", "name", "state"),
            )

    def show(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid`."""
        check_query(req, ["include"])
        include_values(req, ("space", "space.organization"))
        with self.ctx.store.lock:
            return Response(200, present.app(self.ctx.app_or_404(guid), req.base_url))

    def update(self, req: Request, guid: str) -> Response:
        """`PATCH /v3/apps/:guid`: name and metadata (labels, annotations; null deletes)."""
        body = req.json_object()
        check_fields(body, {"name", "lifecycle", "metadata"})
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            apply_metadata(app, body)
            if "name" in body:
                if not isinstance(body["name"], str) or not body["name"]:
                    raise unprocessable("Name must be a string")
                app.name = body["name"]
            return Response(200, present.app(app, req.base_url))

    # -- env ----------------------------------------------------------------------

    def _env_vars_body(self, app: App, base: str) -> dict[str, Any]:
        return {
            "var": dict(app.env_vars),
            "links": {
                "self": {"href": f"{base}/v3/apps/{app.guid}/environment_variables"},
                "app": {"href": f"{base}/v3/apps/{app.guid}"},
            },
        }

    def env_vars(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/environment_variables`."""
        with self.ctx.store.lock:
            return Response(200, self._env_vars_body(self.ctx.app_or_404(guid), req.base_url))

    def patch_env_vars(self, req: Request, guid: str) -> Response:
        """`PATCH .../environment_variables`: merge; null deletes; 200 with the whole `var`."""
        changes = env_var_changes(req.json_object())
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            for key, value in changes.items():
                if value is None:
                    app.env_vars.pop(key, None)
                else:
                    app.env_vars[key] = value
            app.touch()
            return Response(200, self._env_vars_body(app, req.base_url))

    def env(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/env`: what a new container would get."""
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            return Response(200, env_document(self.ctx.store, app, self.ctx.api_url))

    # -- lifecycle ----------------------------------------------------------------

    def _startable(self, app: App) -> None:
        if app.droplet_guid is None:
            raise unprocessable("Assign a droplet before starting this app.")

    def start(self, req: Request, guid: str) -> Response:
        """`POST .../actions/start` (no-op when already started)."""
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            self._startable(app)
            if app.state != "STARTED":
                self.ctx.runtime.start_app(app)
            return Response(200, present.app(app, req.base_url))

    def stop(self, req: Request, guid: str) -> Response:
        """`POST .../actions/stop`: every instance stops now."""
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            if self.ctx.store.active_deployment(app.guid) is not None:
                raise ApiError(
                    422,
                    390024,
                    "CF-StopDisabledDuringDeployment",
                    "Cannot stop the app while it is deploying, please cancel the deployment "
                    "before stopping the app.",
                )
            self.ctx.runtime.stop_app(app)
            return Response(200, present.app(app, req.base_url))

    def restart(self, req: Request, guid: str) -> Response:
        """`POST .../actions/restart`: synchronous stop + start (downtime)."""
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            self._startable(app)
            self.ctx.runtime.stop_app(app)
            self.ctx.runtime.start_app(app)
            return Response(200, present.app(app, req.base_url))

    # -- droplets -----------------------------------------------------------------

    def _droplet_rel(self, app: App, base: str) -> dict[str, Any]:
        path = f"{base}/v3/apps/{app.guid}"
        return {
            "data": {"guid": app.droplet_guid} if app.droplet_guid else None,
            "links": {
                "self": {"href": f"{path}/relationships/current_droplet"},
                "related": {"href": f"{path}/droplets/current"},
            },
        }

    def current_droplet_rel(self, req: Request, guid: str) -> Response:
        """`GET .../relationships/current_droplet`."""
        with self.ctx.store.lock:
            return Response(200, self._droplet_rel(self.ctx.app_or_404(guid), req.base_url))

    def set_current_droplet(self, req: Request, guid: str) -> Response:
        """`PATCH .../relationships/current_droplet {"data":{"guid":D}}`."""
        body = req.json_object()
        check_fields(body, {"data"})
        data = body.get("data")
        droplet_guid = data.get("guid") if isinstance(data, dict) else None
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            droplet = self.ctx.store.droplets.get(str(droplet_guid))
            if droplet is None or droplet.app_guid != app.guid or droplet.state != "STAGED":
                raise unprocessable(
                    "Unable to assign current droplet. Ensure the droplet exists and belongs "
                    "to this app."
                )
            app.droplet_guid = droplet.guid
            app.touch()
            return Response(200, self._droplet_rel(app, req.base_url))

    def current_droplet(self, req: Request, guid: str) -> Response:
        """`GET .../droplets/current`."""
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            droplet = self.ctx.store.droplets.get(app.droplet_guid or "")
            if droplet is None:
                raise not_found("Droplet")
            return Response(200, present.droplet(droplet, req.base_url))

    # -- processes ----------------------------------------------------------------

    def _show_process(self, p: Process, base: str) -> dict[str, Any]:
        app = self.ctx.store.apps[p.app_guid]
        return present.process(p, base, app.space_guid)

    def _process_of_type(self, guid: str, ptype: str) -> Process:
        app = self.ctx.app_or_404(guid)
        processes = [p for p in self.ctx.store.web_processes(app.guid) if p.type == ptype]
        if not processes:
            raise not_found("Process")
        return processes[0]  # the oldest web process: what CC reports mid-deployment

    def app_processes(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/processes`."""
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            return list_response(
                req,
                [*PAGING_PARAMS, "guids", "types", "label_selector", "created_ats", "updated_ats"],
                self.ctx.store.web_processes(app.guid),
                lambda p: True,
                lambda p: self._show_process(p, req.base_url),
                orders=("created_at", "updated_at"),
            )

    def app_process(self, req: Request, guid: str, ptype: str) -> Response:
        """`GET /v3/apps/:guid/processes/:type`."""
        with self.ctx.store.lock:
            return Response(
                200, self._show_process(self._process_of_type(guid, ptype), req.base_url)
            )

    def app_process_stats(self, req: Request, guid: str, ptype: str) -> Response:
        """`GET /v3/apps/:guid/processes/:type/stats`."""
        with self.ctx.store.lock:
            process = self._process_of_type(guid, ptype)
            return Response(200, {"resources": self.ctx.runtime.stats(process)})

    def processes(self, req: Request) -> Response:
        """`GET /v3/processes`."""
        app_guids = csv(req, "app_guids")
        types = csv(req, "types")
        with self.ctx.store.lock:
            return list_response(
                req,
                [
                    *PAGING_PARAMS,
                    "guids",
                    "types",
                    "app_guids",
                    "space_guids",
                    "organization_guids",
                    "label_selector",
                    "created_ats",
                    "updated_ats",
                ],
                self.ctx.store.processes.values(),
                lambda p: (
                    (app_guids is None or p.app_guid in app_guids)
                    and (types is None or p.type in types)
                ),
                lambda p: self._show_process(p, req.base_url),
                orders=("created_at", "updated_at"),
            )

    def process(self, req: Request, guid: str) -> Response:
        """`GET /v3/processes/:guid`."""
        return self.ctx.show(
            req,
            self.ctx.store.processes,
            guid,
            "Process",
            lambda found: self._show_process(found, req.base_url),
            query=["embed"],
        )

    def process_stats(self, req: Request, guid: str) -> Response:
        """`GET /v3/processes/:guid/stats`."""
        return self.ctx.show(
            req,
            self.ctx.store.processes,
            guid,
            "Process",
            lambda found: {"resources": self.ctx.runtime.stats(found)},
        )
