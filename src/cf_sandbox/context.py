"""What the CC route modules share: the store, the runtime and the URLs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .faults import Faults
from .instances import Runtime
from .jobs import JobRunner, Scheduler
from .listing import Query, QuerySpec, parse
from .metadata import MetadataChange, apply_metadata
from .rollout import Rollouts
from .state import App, Resource, Store
from .web import GUID, Request, Response, Router, not_found

T = TypeVar("T")


@dataclass
class Ctx:
    """Handed to every CC route module."""

    store: Store
    runtime: Runtime
    jobs: JobRunner
    rollouts: Rollouts
    faults: Faults
    scheduler: Scheduler
    api_url: str
    uaa_url: str
    login_url: str

    def app_or_404(self, guid: str) -> App:
        """The app with this guid (caller holds the lock) or CC's 404 `App not found`."""
        app = self.store.apps.get(guid)
        if app is None:
            raise not_found("App")
        return app

    def get_or_404(self, table: Mapping[str, T], guid: str, kind: str) -> T:
        """`table[guid]` (caller holds the lock) or CC's 404 `<kind> not found`."""
        found = table.get(guid)
        if found is None:
            raise not_found(kind)
        return found

    def show(
        self,
        req: Request,
        table: Mapping[str, T],
        guid: str,
        kind: str,
        render: Callable[[T], dict[str, Any]],
        *,
        spec: QuerySpec | None = None,
        decorate: Callable[[T, Query], dict[str, Any]] | None = None,
    ) -> Response:
        """`GET /v3/<things>/:guid`: check the query, find it or 404, render it.

        `spec` None: CC's controller reads no query message there, so any query is ignored.
        `decorate` returns the `included` block (empty: none).
        """
        query = parse(req, spec) if spec is not None else None
        with self.store.lock:
            found = self.get_or_404(table, guid, kind)
            body = render(found)
            if decorate is not None and query is not None:
                extra = decorate(found, query)
                if extra:
                    body["included"] = extra
            return Response(200, body)

    def add_show(
        self,
        router: Router,
        collection: str,
        table: Mapping[str, T],
        kind: str,
        render: Callable[[T, str], dict[str, Any]],
        *,
        spec: QuerySpec | None = None,
        decorate: Callable[[T, Query, str], dict[str, Any]] | None = None,
    ) -> None:
        """Register `GET <collection>/:guid` rendered by `render(resource, base_url)`."""

        def handler(req: Request, guid: str) -> Response:
            base = req.base_url
            return self.show(
                req,
                table,
                guid,
                kind,
                lambda r: render(r, base),
                spec=spec,
                decorate=(lambda r, q: decorate(r, q, base)) if decorate else None,
            )

        router.add("GET", f"{collection}/{GUID}", handler)

    def set_metadata(self, resource: Resource, change: MetadataChange) -> None:
        """Apply a validated metadata change with the landscape's per-resource limits."""
        options = self.store.options
        apply_metadata(
            resource,
            change,
            max_labels=options.max_labels_per_resource,
            max_annotations=options.max_annotations_per_resource,
        )
