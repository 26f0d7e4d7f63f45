"""App parts the cf CLI reads that a rotation never changes: routes, tasks, features, sidecars.

The cf CLI's app summary (`actor/v7action/application_summary.go`,
`process_summary.go`, `route.go`) reads `/v3/apps/:guid/routes` and
`/v3/processes/:guid/sidecars` after every `cf restart`/`cf restage`; the app links point at
`tasks` and `features`. The sandbox's apps have no routes, tasks or sidecars, so the lists
are empty, but the endpoints validate their queries as CC does. Sources (cloud_controller_ng):
`config/routes.rb`, `app/controllers/v3/routes_controller.rb` (`index_by_app`),
`tasks_controller.rb`, `sidecars_controller.rb` (`index_by_process`: 404 `Process not
found`), `app_features_controller.rb` (an unpaginated list; 404 `Feature not found`),
the `app_*_feature_presenter.rb` files, and the list messages
(`routes_list_message.rb`, `tasks_list_message.rb`, `sidecars_list_message.rb`).
"""

from __future__ import annotations

from typing import Any

from .context import Ctx
from .listing import list_spec, parse
from .paging import list_response
from .web import GUID, Request, Response, Router, not_found

ROUTES = list_spec(  # routes_list_message.rb
    "hosts",
    "space_guids",
    "organization_guids",
    "domain_guids",
    "paths",
    "app_guids",
    "include",
    "label_selector",
    "ports",
    "service_instance_guids",
    metadata=False,
    includes=("domain", "space", "space.organization", "route_policies"),
)
TASKS = list_spec(  # tasks_list_message.rb
    "names", "states", "app_guids", "organization_guids", "space_guids", "app_guid", "sequence_ids"
)
SIDECARS = list_spec(metadata=False)  # sidecars_list_message.rb
# app_features_controller.rb presented_app_features, in order; the sandbox's app flags.
_FEATURES = (
    ("ssh", "Enable SSHing into the app.", True),
    ("revisions", "Enable versioning of an application", True),
    ("service-binding-k8s", "Enable k8s service bindings for the app", False),
    ("file-based-vcap-services", "Enable file-based VCAP service bindings for the app", False),
)


def _feature(name: str, description: str, enabled: bool) -> dict[str, Any]:
    return {"name": name, "description": description, "enabled": enabled}


class AppPartRoutes:
    """Routes, tasks, features and sidecars of an app."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        """Add the routes."""
        router.add("GET", f"/v3/apps/{GUID}/routes", self.routes)
        router.add("GET", f"/v3/apps/{GUID}/tasks", self.tasks)
        router.add("GET", f"/v3/apps/{GUID}/features", self.features)
        router.add("GET", f"/v3/apps/{GUID}/features/(?P<name>[^/]+)", self.feature)
        router.add("GET", f"/v3/processes/{GUID}/sidecars", self.sidecars)

    def _empty(self, req: Request, spec: Any, guid: str) -> Response:
        query = parse(req, spec)
        with self.ctx.store.lock:
            self.ctx.app_or_404(guid)
            return list_response(req, query, [], lambda _: True, lambda _: {})

    def routes(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/routes`: the app has no routes."""
        return self._empty(req, ROUTES, guid)

    def tasks(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/tasks`: the app has run no tasks."""
        return self._empty(req, TASKS, guid)

    def features(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/features`: an unpaginated list of all four."""
        with self.ctx.store.lock:
            self.ctx.app_or_404(guid)
        path = f"{req.base_url}/v3/apps/{guid}/features"
        resources = [_feature(*f) for f in _FEATURES]
        pagination = {
            "total_results": len(resources),
            "total_pages": 1,
            "first": {"href": path},
            "last": {"href": path},
            "next": None,
            "previous": None,
        }
        return Response(200, {"resources": resources, "pagination": pagination})

    def feature(self, req: Request, guid: str, name: str) -> Response:
        """`GET /v3/apps/:guid/features/:name`."""
        with self.ctx.store.lock:
            self.ctx.app_or_404(guid)
        for found in _FEATURES:
            if found[0] == name:
                return Response(200, _feature(*found))
        raise not_found("Feature")

    def sidecars(self, req: Request, guid: str) -> Response:
        """`GET /v3/processes/:guid/sidecars`: no sidecars; 404 for an unknown process."""
        query = parse(req, SIDECARS)
        with self.ctx.store.lock:
            if guid not in self.ctx.store.processes:
                raise not_found("Process")
            return list_response(req, query, [], lambda _: True, lambda _: {})
