"""Packages, builds, droplets and revisions: what `cf restage` drives (reference 5).

`cf restage` = newest READY package -> `POST /v3/builds` (STAGING, `staging_s` later
STAGED with a new droplet) -> stop -> set current droplet -> start. Staging itself does
not touch running instances; the stop does.
"""

from __future__ import annotations

from . import present
from .cc_lookups import app_scoped_list, list_response
from .context import Ctx
from .paging import PAGING_PARAMS
from .state import Build, Droplet, Package
from .validate import apply_metadata
from .web import (
    GUID,
    Request,
    Response,
    Router,
    check_fields,
    unprocessable,
)

_COMMON = [*PAGING_PARAMS, "guids", "label_selector", "created_ats", "updated_ats"]


class BuildRoutes:
    """Packages, builds, droplets, revisions."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        """Add the routes."""
        r = router.add
        r("GET", "/v3/packages", self.packages)
        r("GET", f"/v3/apps/{GUID}/packages", self.app_packages)
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

    def _package_list(self, req: Request, app_guids: list[str] | None) -> Response:
        with self.ctx.store.lock:
            return app_scoped_list(
                req,
                self.ctx.store.packages.values(),
                {"states": "state", "types": "type"},
                lambda p: present.package(p, req.base_url),
                app_guids=app_guids,
                extra=("space_guids", "organization_guids"),
            )

    def packages(self, req: Request) -> Response:
        """`GET /v3/packages?app_guids=&states=READY&order_by=-created_at&per_page=1`."""
        return self._package_list(req, None)

    def app_packages(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/packages`."""
        with self.ctx.store.lock:
            self.ctx.app_or_404(guid)
        return self._package_list(req, [guid])

    # -- builds -------------------------------------------------------------------

    def create_build(self, req: Request) -> Response:
        """`POST /v3/builds {"package":{"guid":P}}` -> 201 STAGING."""
        body = req.json_object()
        check_fields(
            body,
            {
                "package",
                "lifecycle",
                "staging_memory_in_mb",
                "staging_disk_in_mb",
                "staging_log_rate_limit_bytes_per_second",
                "metadata",
            },
        )
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
            build: Build = store.add(Build(app_guid=package.app_guid, package_guid=package.guid))
            apply_metadata(build, body)
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

    def _build_list(self, req: Request, app_guids: list[str] | None) -> Response:
        with self.ctx.store.lock:
            return app_scoped_list(
                req,
                self.ctx.store.builds.values(),
                {"states": "state", "package_guids": "package_guid"},
                lambda b: present.build(b, req.base_url),
                app_guids=app_guids,
            )

    def builds(self, req: Request) -> Response:
        """`GET /v3/builds`."""
        return self._build_list(req, None)

    def app_builds(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/builds`."""
        with self.ctx.store.lock:
            self.ctx.app_or_404(guid)
        return self._build_list(req, [guid])

    # -- droplets -----------------------------------------------------------------

    def _droplet_list(self, req: Request, app_guids: list[str] | None) -> Response:
        with self.ctx.store.lock:
            return app_scoped_list(
                req,
                self.ctx.store.droplets.values(),
                {"states": "state"},
                lambda d: present.droplet(d, req.base_url),
                app_guids=app_guids,
                extra=("space_guids", "organization_guids", "current"),
            )

    def droplets(self, req: Request) -> Response:
        """`GET /v3/droplets`."""
        return self._droplet_list(req, None)

    def app_droplets(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/droplets`."""
        with self.ctx.store.lock:
            self.ctx.app_or_404(guid)
        return self._droplet_list(req, [guid])

    # -- revisions ----------------------------------------------------------------

    def app_revisions(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/revisions`."""
        with self.ctx.store.lock:
            self.ctx.app_or_404(guid)
            return list_response(
                req,
                [*_COMMON, "versions", "deployable"],
                self.ctx.store.revisions.values(),
                lambda r: r.app_guid == guid,
                lambda r: present.revision(r, req.base_url),
                orders=("created_at", "updated_at"),
            )

    def deployed_revisions(self, req: Request, guid: str) -> Response:
        """`GET /v3/apps/:guid/revisions/deployed`: revisions with running instances."""
        with self.ctx.store.lock:
            self.ctx.app_or_404(guid)
            deployed = {
                p.revision_guid
                for p in self.ctx.store.web_processes(guid)
                if self.ctx.runtime.live(p.guid)
            }
            return list_response(
                req,
                _COMMON,
                self.ctx.store.revisions.values(),
                lambda r: r.guid in deployed,
                lambda r: present.revision(r, req.base_url),
                orders=("created_at", "updated_at"),
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
