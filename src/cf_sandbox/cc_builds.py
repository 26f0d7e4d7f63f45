"""Packages, builds, droplets and revisions: what `cf restage` drives.

`cf restage` (cf CLI `command/v7/restage_command.go`, `app_stager.go` of its `command/v7/shared`
package, `actor/v7action/build.go`) = newest READY package -> `POST /v3/builds` (STAGING,
`staging_s` later STAGED with a new droplet) -> stop -> set current droplet -> start;
`cf restart` first asks `/v3/packages/:guid/droplets?states=STAGED` whether the newest
package is staged. Staging itself does not touch running instances; the stop does. While a
build stages, its lines go to Log Cache (source type STG), where the CLI reads them.
Sources (cloud_controller_ng): `app/controllers/v3/packages_controller.rb`,
`builds_controller.rb`, `droplets_controller.rb` (`index` for an app, a package or all),
`revisions_controller.rb`, and the list messages `packages_list_message.rb`,
`builds_list_message.rb`, `droplets_list_message.rb` (nested routes refuse the filters
they imply), `app_revisions_list_message.rb`, `app_builds_list_message.rb`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from . import present
from .context import Ctx
from .listing import Query, list_spec, parse
from .logcache import LogStore
from .metadata import parse_metadata
from .paging import by_attributes, list_response
from .state import Build, Droplet, Package
from .web import GUID, Request, Response, Router, check_fields, not_found, unprocessable

_Owned = TypeVar("_Owned", Package, Build)

PACKAGES = list_spec(
    "states", "types", "app_guids", "app_guid", "space_guids", "organization_guids"
)
BUILDS = list_spec("app_guids", "package_guids", "states")
APP_BUILDS = list_spec("states")
DROPLETS = list_spec(
    "app_guid",
    "app_guids",
    "current",
    "organization_guids",
    "package_guid",
    "space_guids",
    "states",
    arrays=("space_guids", "states", "app_guids", "organization_guids"),
)
REVISIONS = list_spec("versions", "deployable", arrays=("versions",))
DEPLOYED_REVISIONS = list_spec(metadata=False)
_APP_NESTED = ("app_guids", "organization_guids", "space_guids")


class BuildRoutes:
    """Packages, builds, droplets, revisions."""

    def __init__(self, ctx: Ctx, logs: LogStore) -> None:
        self.ctx = ctx
        self.logs = logs

    def register(self, router: Router) -> None:
        """Add the routes."""
        r = router.add
        r("GET", "/v3/packages", self.packages)
        r("GET", f"/v3/apps/{GUID}/packages", self.app_packages)
        r("GET", f"/v3/packages/{GUID}/droplets", self.package_droplets)
        r("POST", "/v3/builds", self.create_build)
        r("GET", "/v3/builds", self.builds)
        r("GET", f"/v3/apps/{GUID}/builds", self.app_builds)
        r("GET", "/v3/droplets", self.droplets)
        r("GET", f"/v3/apps/{GUID}/droplets", self.app_droplets)
        r("GET", f"/v3/apps/{GUID}/revisions", self.app_revisions)
        r("GET", f"/v3/apps/{GUID}/revisions/deployed", self.deployed_revisions)
        store, show = self.ctx.store, self.ctx.add_show
        show(router, "/v3/packages", store.packages, "Package", present.package)
        show(router, "/v3/builds", store.builds, "Build", present.build)
        show(router, "/v3/droplets", store.droplets, "Droplet", present.droplet)
        show(router, "/v3/revisions", store.revisions, "Revision", present.revision)
        r("GET", f"/v3/revisions/{GUID}/environment_variables", self.revision_env)

    # -- packages -----------------------------------------------------------------

    def _app_list(  # noqa: PLR0917
        self,
        req: Request,
        query: Query,
        app_guid: str | None,
        items: Callable[[], Mapping[str, _Owned]],
        attributes: dict[str, str],
        render: Callable[[_Owned, str], dict[str, Any]],
    ) -> Response:
        """A list of an app's resources, nested (`/v3/apps/:guid/...`: the app must exist)
        or not (`app_guids=`), filtered by `attributes` (query key -> attribute)."""
        with self.ctx.store.lock:
            if app_guid is not None:
                self.ctx.app_or_404(app_guid)
            wanted = [app_guid] if app_guid else query.many("app_guids")
            matches = by_attributes(query, attributes)
            return list_response(
                req,
                query,
                items().values(),
                lambda r: (wanted is None or r.app_guid in wanted) and matches(r),
                lambda r: render(r, req.base_url),
            )

    def _package_list(self, req: Request, app_guid: str | None) -> Response:
        query = parse(req, PACKAGES, refused=_APP_NESTED if app_guid else ())
        by = {"states": "state", "types": "type"}
        return self._app_list(
            req, query, app_guid, lambda: self.ctx.store.packages, by, present.package
        )

    def packages(self, req: Request) -> Response:
        """`GET /v3/packages?app_guids=&states=READY&order_by=-created_at&per_page=1`."""
        return self._package_list(req, None)

    def app_packages(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/packages`."""
        return self._package_list(req, guid)

    def package_droplets(self, req: Request, guid: str) -> Response:
        """`GET /v3/packages/:guid/droplets` (404 `Package not found`)."""
        query = parse(req, DROPLETS, refused=("current",))
        with self.ctx.store.lock:
            if guid not in self.ctx.store.packages:
                raise not_found("Package")
            by_state = by_attributes(query, {"states": "state"})
            return list_response(
                req,
                query,
                self.ctx.store.droplets.values(),
                lambda d: d.package_guid == guid and by_state(d),
                lambda d: present.droplet(d, req.base_url),
            )

    # -- builds -------------------------------------------------------------------

    def create_build(self, req: Request) -> Response:
        """`POST /v3/builds {"package":{"guid":P}}` -> 201 STAGING."""
        body = req.json_object()
        check_fields(
            body,
            {
                "staging_memory_in_mb",
                "staging_disk_in_mb",
                "staging_log_rate_limit_bytes_per_second",
                "environment_variables",
                "lifecycle",
                "package",
                "metadata",
            },
        )
        change = parse_metadata(body)
        package_ref = body.get("package")
        package_guid = package_ref.get("guid") if isinstance(package_ref, dict) else None
        store = self.ctx.store
        with store.lock:
            package = store.packages.get(str(package_guid))
            if package is None:
                raise unprocessable(
                    "Unable to use package. Ensure that the package exists and you have "
                    "access to it."
                )
            if package.state != "READY":
                raise unprocessable("Package must be in READY state.")
            build = Build(app_guid=package.app_guid, package_guid=package.guid)
            self.ctx.set_metadata(build, change)
            store.add(build)
        self.logs.emit(build.app_guid, "Staging app and tracing logs...", source_type="STG")
        self.ctx.scheduler.call_later(store.options.staging_s, lambda: self._staged(build, package))
        return Response(201, present.build(build, req.base_url))

    def _staged(self, build: Build, package: Package) -> None:
        with self.ctx.store.lock:
            droplet: Droplet = self.ctx.store.add(
                Droplet(app_guid=build.app_guid, package_guid=package.guid)
            )
            build.droplet_guid = droplet.guid
            build.state = "STAGED"
            build.touch()
        self.logs.emit(build.app_guid, "Uploading droplet...", source_type="STG")

    def _build_list(self, req: Request, app_guid: str | None) -> Response:
        query = parse(req, APP_BUILDS if app_guid else BUILDS)
        by = {"states": "state", "package_guids": "package_guid"}
        return self._app_list(
            req, query, app_guid, lambda: self.ctx.store.builds, by, present.build
        )

    def builds(self, req: Request) -> Response:
        """`GET /v3/builds`."""
        return self._build_list(req, None)

    def app_builds(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/builds`."""
        return self._build_list(req, guid)

    # -- droplets -----------------------------------------------------------------

    def _droplet_list(self, req: Request, app_guid: str | None) -> Response:
        query = parse(req, DROPLETS, refused=_APP_NESTED if app_guid else ("current",))
        with self.ctx.store.lock:
            app = self.ctx.app_or_404(app_guid) if app_guid is not None else None
            wanted = [app_guid] if app_guid else query.many("app_guids")
            current_only = query.single("current") == "true" and app is not None
            by_state = by_attributes(query, {"states": "state"})
            return list_response(
                req,
                query,
                self.ctx.store.droplets.values(),
                lambda d: (
                    (wanted is None or d.app_guid in wanted)
                    and by_state(d)
                    and (not current_only or (app is not None and d.guid == app.droplet_guid))
                ),
                lambda d: present.droplet(d, req.base_url),
            )

    def droplets(self, req: Request) -> Response:
        """`GET /v3/droplets`."""
        return self._droplet_list(req, None)

    def app_droplets(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/droplets`."""
        return self._droplet_list(req, guid)

    # -- revisions ----------------------------------------------------------------

    def app_revisions(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/revisions`."""
        query = parse(req, REVISIONS)
        with self.ctx.store.lock:
            self.ctx.app_or_404(guid)
            versions = query.many("versions")
            return list_response(
                req,
                query,
                self.ctx.store.revisions.values(),
                lambda r: r.app_guid == guid and (versions is None or str(r.version) in versions),
                lambda r: present.revision(r, req.base_url),
            )

    def deployed_revisions(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/revisions/deployed`: revisions with running instances."""
        query = parse(req, DEPLOYED_REVISIONS)
        with self.ctx.store.lock:
            self.ctx.app_or_404(guid)
            deployed = {
                p.revision_guid
                for p in self.ctx.store.web_processes(guid)
                if self.ctx.runtime.live(p.guid)
            }
            return list_response(
                req,
                query,
                self.ctx.store.revisions.values(),
                lambda r: r.guid in deployed,
                lambda r: present.revision(r, req.base_url),
            )

    def revision_env(self, req: Request, guid: str) -> Response:
        """`GET /v3/revisions/:guid/environment_variables`."""
        with self.ctx.store.lock:
            found = self.ctx.get_or_404(self.ctx.store.revisions, guid, "Revision")
            base = f"{req.base_url}/v3/revisions/{guid}"
            return Response(
                200,
                {
                    "var": dict(found.env_vars),
                    "links": {
                        "self": {"href": f"{base}/environment_variables"},
                        "revision": {"href": base},
                        "app": {"href": f"{req.base_url}/v3/apps/{found.app_guid}"},
                    },
                },
            )
