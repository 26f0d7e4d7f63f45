"""Apps: lookups, metadata, env vars, `/env`, start/stop/restart, current droplet, processes.

Env var and binding changes take effect only when instances are replaced (CC docs: "will
not take effect until the app is restarted"); the runtime's snapshots make that visible.
Sources (cloud_controller_ng): `app/controllers/v3/apps_controller.rb` (each action; the
`include` decorators), `app/messages/apps_list_message.rb`, `app_show_message.rb`,
`app_update_message.rb`, `update_environment_variables_message.rb`,
`processes_list_message.rb`, `app/presenters/v3/app_env_presenter.rb` (`/env`),
`app/controllers/v3/processes_controller.rb` and `process_stats_presenter.rb`.
"""

from __future__ import annotations

from typing import Any

from . import included, present
from .context import Ctx
from .envs import env_document
from .listing import list_spec, parse, show_spec
from .metadata import metadata_problems, parse_metadata
from .paging import by_attributes, list_response, names_match
from .state import App, Process
from .validate import env_var_changes
from .web import (
    GUID,
    Request,
    Response,
    Router,
    not_found,
    unprocessable,
)

_APP_INCLUDES = ("space", "org", "space.organization")
APPS = list_spec(  # apps_list_message.rb
    "names",
    "organization_guids",
    "space_guids",
    "stacks",
    "include",
    "lifecycle_type",
    arrays=("names", "organization_guids", "space_guids", "stacks", "include"),
    orders=("created_at", "updated_at", "name", "state"),
    includes=_APP_INCLUDES,
)
APP_SHOW = show_spec("include", includes=_APP_INCLUDES)  # app_show_message.rb
PROCESSES = list_spec(  # processes_list_message.rb
    "app_guid",
    "types",
    "space_guids",
    "organization_guids",
    "app_guids",
    "embed",
    arrays=("types", "space_guids", "organization_guids", "app_guids", "embed"),
)


def _update_problems(body: dict[str, Any]) -> list[str]:
    """`AppUpdateMessage`: metadata, unknown fields, name (string, at most 255)."""
    problems = metadata_problems(body["metadata"]) if "metadata" in body else []
    unknown = [k for k in body if k not in ("name", "lifecycle", "metadata")]
    if unknown:
        problems.append("Unknown field(s): '" + "', '".join(unknown) + "'")
    name = body.get("name")
    if name is not None:
        if not isinstance(name, str):
            problems.append("Name must be a string")
        elif len(name) > 255:
            problems.append("Name is too long (maximum is 255 characters)")
    return problems


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
        """`GET /v3/apps` (names case-insensitive; `include` fills `included`)."""
        query = parse(req, APPS)
        store = self.ctx.store
        names, spaces = query.many("names"), query.many("space_guids")
        orgs = query.many("organization_guids")

        def keep(a: App) -> bool:
            space = store.spaces.get(a.space_guid)
            return (
                names_match(names, a.name, case_sensitive=False)
                and (spaces is None or a.space_guid in spaces)
                and (orgs is None or (space is not None and space.org_guid in orgs))
            )

        with store.lock:
            resp = list_response(
                req, query, store.apps.values(), keep, lambda a: present.app(a, req.base_url)
            )
            if query.includes:
                shown = [store.apps[r["guid"]] for r in resp.body["resources"]]
                resp.body["included"] = included.for_apps(
                    store, shown, query.includes, req.base_url
                )
            return resp

    def show(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid` (`include=space|org|space.organization`)."""
        query = parse(req, APP_SHOW)
        store = self.ctx.store
        with store.lock:
            app = self.ctx.app_or_404(guid)
            body = present.app(app, req.base_url)
            if query.includes:
                body["included"] = included.for_apps(store, [app], query.includes, req.base_url)
            return Response(200, body)

    def update(self, req: Request, guid: str) -> Response:
        """`PATCH /v3/apps/:guid`: name and metadata (labels, annotations; null deletes).

        The message is validated before the app is looked up (apps_controller.rb `update`).
        """
        body = req.json_object()
        problems = _update_problems(body)
        if problems:
            raise unprocessable(", ".join(problems))
        change = parse_metadata(body)
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            self.ctx.set_metadata(app, change)
            if isinstance(body.get("name"), str):
                app.name = body["name"]
                app.touch()
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
        """`POST .../actions/stop`: every instance stops now.

        v3 stops even during a deployment (`StopDisabledDuringDeployment` is only raised by
        v2's `app/actions/v2/app_update.rb`); a rollout then makes no progress.
        """
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
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
        data = body.get("data")
        droplet_guid = data.get("guid") if isinstance(data, dict) else None
        if "data" in body and droplet_guid is None:
            raise unprocessable(
                "Current droplet cannot be removed. Replace it with a preferred droplet."
            )
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            if self.ctx.store.active_deployment(app.guid) is not None:
                raise unprocessable(
                    "Unable to assign current droplet while the app has a deployment in "
                    "progress. Wait for the deployment to complete or cancel it."
                )
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
        query = parse(req, PROCESSES, refused=("app_guids", "organization_guids", "space_guids"))
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(guid)
            return list_response(
                req,
                query,
                self.ctx.store.web_processes(app.guid),
                by_attributes(query, {"types": "type"}),
                lambda p: self._show_process(p, req.base_url),
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
        query = parse(req, PROCESSES)
        with self.ctx.store.lock:
            return list_response(
                req,
                query,
                self.ctx.store.processes.values(),
                by_attributes(query, {"app_guids": "app_guid", "types": "type"}),
                lambda p: self._show_process(p, req.base_url),
            )

    def process(self, req: Request, guid: str) -> Response:
        """`GET /v3/processes/:guid`."""
        return self.ctx.show(
            req,
            self.ctx.store.processes,
            guid,
            "Process",
            lambda found: self._show_process(found, req.base_url),
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
