"""What the CC route modules share: the store, the runtime and the URLs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .faults import Faults
from .instances import Runtime
from .jobs import JobRunner, Scheduler
from .rollout import Rollouts
from .state import App, Store
from .web import GUID, Request, Response, Router, bad_query, check_query, not_found

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
        query: list[str] | None = None,
    ) -> Response:
        """`GET /v3/<things>/:guid`: check the query, find it or 404, render it."""
        check_query(req, query or [])
        with self.store.lock:
            return Response(200, render(self.get_or_404(table, guid, kind)))

    def add_show(
        self,
        router: Router,
        collection: str,
        table: Mapping[str, T],
        kind: str,
        render: Callable[[T, str], dict[str, Any]],
        *,
        query: list[str] | None = None,
    ) -> None:
        """Register `GET <collection>/:guid` rendered by `render(resource, base_url)`."""

        def handler(req: Request, guid: str) -> Response:
            return self.show(req, table, guid, kind, lambda r: render(r, req.base_url), query=query)

        router.add("GET", f"{collection}/{GUID}", handler)


def include_values(req: Request, allowed: tuple[str, ...]) -> list[str]:
    """The `include` parameter, checked against the resources the endpoint can include."""
    raw = req.param("include")
    if raw is None:
        return []
    values = [v for v in raw.split(",") if v]
    for value in values:
        if value not in allowed:
            raise bad_query(f"Invalid included resource: '{value}'")
    return values
