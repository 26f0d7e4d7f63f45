"""Which apps are bound to an it-rt instance, and where they live: list calls only.

The number of calls does not grow with the number of apps (cloud_controller_ng's list
messages, app/messages/*_list_message.rb):

  (1) with places given: `GET /v3/organizations?names=...`, then
      `GET /v3/spaces?organization_guids=...&include=organization`: a misspelt org or
      space fails here, before anything else is read;
  (2) `GET /v3/service_credential_bindings?type=app&service_offering_names=it-rt
      &service_plan_names=integration-flow&include=app,service_instance`: every app
      binding to an it-rt instance the user can see, with the apps (and their
      annotations) and the instances in the same pages;
  (3) without places: `GET /v3/spaces?guids=...&include=organization` for the spaces of
      the apps found, to name them and their orgs.
All lists ask for 5000 resources a page, the most Cloud Controller gives. The binding
list has no space or org filter, so places are applied to its result.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from ..cf import App, Binding, CfClient, Org, ServiceInstance, Space
from ..cf.base import not_found
from .models import Place, ScanRequest

OUTSIDE_SCOPE = "outside-scope"
NOT_VISIBLE = "app-or-space-not-visible"
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Candidate:
    """One app bound to one instance of the plan: what the lists said, nothing read yet."""

    org: str
    space: str
    app: App
    instance: ServiceInstance
    bindings: tuple[Binding, ...]
    """Every `type=app` binding of the app to the instance, oldest first."""
    sibling_instances: tuple[str, ...] = ()
    """Other instances of the plan the same app is bound to (their names)."""

    @property
    def live(self) -> Binding | None:
        """The newest succeeded binding: the one VCAP_SERVICES gives new containers
        (cloud_controller_ng app/models/services/service_binding.rb, active_per_instance)."""
        succeeded = [b for b in self.bindings if b.succeeded]
        return succeeded[-1] if succeeded else None


@dataclass(frozen=True)
class Discovery:
    """The candidates, in a stable order, and how many bindings were set aside why."""

    candidates: tuple[Candidate, ...]
    skipped: dict[str, int]
    """App and instance pairs set aside, by reason."""


def _places_spaces(client: CfClient, places: tuple[Place, ...]) -> dict[str, tuple[Space, Org]]:
    """The spaces the places name (every space of an org given alone), or a 404 error."""
    orgs = client.list_orgs(sorted({p.org for p in places}))
    by_name = {o.name.lower(): o for o in orgs}
    for place in places:
        if place.org.lower() not in by_name:
            raise not_found(
                f"Org {place.org!r} not found, or the user cannot see it", "/v3/organizations"
            )
    listing = client.list_spaces(org_guids=[o.guid for o in orgs])
    chosen: dict[str, tuple[Space, Org]] = {}
    for place in places:
        org = by_name[place.org.lower()]
        matches = [
            s
            for s in listing.spaces
            if s.org_guid == org.guid
            and (place.space is None or s.name.lower() == place.space.lower())
        ]
        if place.space is not None and not matches:
            raise not_found(
                f"Space {place.space!r} not found in org {org.name!r}, or the user cannot see it",
                "/v3/spaces",
            )
        chosen.update({s.guid: (s, org) for s in matches})
    return chosen


def _named_spaces(client: CfClient, space_guids: list[str]) -> dict[str, tuple[Space, Org]]:
    listing = client.list_spaces(guids=space_guids)
    named: dict[str, tuple[Space, Org]] = {}
    for space in listing.spaces:
        org = listing.orgs.get(space.org_guid or "")
        if org is not None:
            named[space.guid] = (space, org)
    return named


def discover(client: CfClient, request: ScanRequest) -> Discovery:
    """List the candidates (see the module docstring for the calls)."""
    chosen = _places_spaces(client, request.places) if request.places else None
    listing = client.list_app_bindings_of_plan(request.offering, request.plan)
    groups: dict[tuple[str, str], list[Binding]] = defaultdict(list)
    for binding in listing.bindings:
        if binding.app_guid and binding.service_instance_guid:
            groups[(binding.app_guid, binding.service_instance_guid)].append(binding)
    skipped: dict[str, int] = defaultdict(int)
    apps = {g: listing.apps[g] for g, _ in groups if g in listing.apps}
    if chosen is None:
        chosen = _named_spaces(
            client, sorted({a.space_guid for a in apps.values() if a.space_guid})
        )
    instances_of_app: dict[str, list[str]] = defaultdict(list)
    for app_guid, si_guid in groups:
        if si_guid in listing.instances:
            instances_of_app[app_guid].append(listing.instances[si_guid].name)
    candidates: list[Candidate] = []
    for (app_guid, si_guid), bindings in groups.items():
        app, instance = apps.get(app_guid), listing.instances.get(si_guid)
        place = chosen.get(app.space_guid or "") if app else None
        if app is None or instance is None or place is None:
            reason = OUTSIDE_SCOPE if request.places and app and instance else NOT_VISIBLE
            skipped[reason] += 1
            continue
        space, org = place
        ordered = tuple(sorted(bindings, key=_created))
        siblings = tuple(sorted(n for n in instances_of_app[app_guid] if n != instance.name))
        candidates.append(Candidate(org.name, space.name, app, instance, ordered, siblings))
    candidates.sort(
        key=lambda c: (c.org.lower(), c.space.lower(), c.app.name.lower(), c.instance.name)
    )
    return Discovery(tuple(candidates), dict(skipped))


def _created(binding: Binding) -> datetime:
    """Sort key that keeps the list's own order (created_at, then CC's row id) on ties."""
    return binding.created_at or _EARLIEST
