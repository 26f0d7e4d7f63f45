"""A fleet for the scan: `--apps N` apps spread over orgs and spaces, of every kind.

Each space (at most `APPS_PER_SPACE` apps; `SPACES_PER_ORG` spaces an org) holds an it-rt
`integration-flow` instance shared by its apps, an it-rt `api` instance (OData, no iFlow:
not the scan's business), a user-provided instance and a managed non-it-rt instance.
App number i (from 0) is, by `i % 10`, deterministically:

  0  no it-rt at all: bound to the user-provided and the other managed instance only
  1  bound to it-rt and to the user-provided instance; certificate fresh
  2, 5, 8  due: a 90-day certificate with `DUE_DAYS_LEFT` days left
  3  bound only to the it-rt `api` plan (not an iFlow sender)
  4  fresh, with the annotations a previous rotation wrote
  6, 7  fresh
  9  two succeeded bindings to the instance (a rotation left the old one behind);
     the app presents the newer certificate, which is due when i % 20 == 9

and every app with i % 25 == 12 is also bound to a second it-rt instance, whose
certificate it holds in `CLI2_CHAIN`/`CLI2_KEY`. Every certificated app is started
(one instance, healthy at once) with `CLI_CHAIN`/`CLI_KEY`, so a probe succeeds through
it before any rotation, exactly like the seed app. Keys are EC P-256 (fast to make; CPI
and the rotation accept them).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from .pki import Minted, load_pem_certs
from .seed import Seeder
from .state import App, Binding, LastOperation, ServiceInstance

APPS_PER_SPACE = 10
SPACES_PER_ORG = 3
CERT_DAYS = 90
DUE_DAYS_LEFT = 10
FRESH_DAYS_LEFT = 80
ANNOTATION_PREFIX = "cpi-cert-rotate.local"
"""The rotation's default prefix (cpi_cert_rotate.rotation.annotations.DEFAULT_PREFIX);
repeated here because the sandbox does not import the product."""
_KEY = "ec-p256"


@dataclass
class SeededApp:
    """What the seed made for one app (tests compare the scan with the store, not this)."""

    org: str
    space: str
    name: str
    guid: str
    kind: str
    instances: list[str] = field(default_factory=list)
    """The it-rt integration-flow instances it is bound to."""
    leaf_sha256: str | None = None
    """The certificate in CLI_CHAIN (the live one)."""


@dataclass
class _Space:
    org: str
    name: str
    guid: str
    iflow: ServiceInstance
    iflow_second: ServiceInstance
    odata: ServiceInstance
    user_provided: ServiceInstance
    other: ServiceInstance


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class FleetSeeder:
    """Adds a fleet to a landscape's store (through the landscape's `Seeder`)."""

    def __init__(self, seeder: Seeder) -> None:
        self.seeder = seeder

    def _space(self, org_name: str, org_guid: str, name: str) -> _Space:
        s = self.seeder
        space = s.space(name, org_guid)
        return _Space(
            org=org_name,
            name=name,
            guid=space.guid,
            iflow=s.service_instance("cpi-rt", space.guid),
            iflow_second=s.service_instance("cpi-rt-2", space.guid),
            odata=s.service_instance("cpi-odata", space.guid, plan="api"),
            user_provided=s.service_instance(
                "logdrain", space.guid, user_provided=True, credentials={"url": "https://logs"}
            ),
            other=s.service_instance("uaa", space.guid, label="xsuaa", plan="application"),
        )

    def _mint(self, cn: str, days_left: int) -> Minted:
        issued = _now() - datetime.timedelta(days=CERT_DAYS - days_left)
        return self.seeder.pki.mint(cn, days=CERT_DAYS, key=_KEY, not_before=issued)

    def _bind_plain(self, app: App, si: ServiceInstance) -> None:
        """A succeeded binding to a non-it-rt instance (no certificate)."""
        with self.seeder.store.lock:
            binding = self.seeder.store.add(
                Binding(
                    type="app",
                    name=None,
                    service_instance_guid=si.guid,
                    app_guid=app.guid,
                    last_operation=LastOperation(type="create", state="succeeded"),
                )
            )
            if si.managed:
                self.seeder.broker.bind(binding)

    def add(self, apps: int) -> list[SeededApp]:
        """Seed `apps` apps (see the module docstring); returns what was made."""
        spaces: list[_Space] = []
        made: list[SeededApp] = []
        for i in range(apps):
            if i % APPS_PER_SPACE == 0:
                index = len(spaces)
                if index % SPACES_PER_ORG == 0:
                    org_name = f"fleet-org-{index // SPACES_PER_ORG + 1:02d}"
                    org = self.seeder.org(org_name)
                spaces.append(
                    self._space(org_name, org.guid, f"space-{index % SPACES_PER_ORG + 1}")
                )
            made.append(self._app(i, spaces[-1]))
        return made

    def _app(self, i: int, space: _Space) -> SeededApp:
        name = f"app-{i:03d}"
        kind = {0: "no-it-rt", 3: "odata-only", 9: "two-bindings"}.get(
            i % 10, "due" if i % 10 in (2, 5, 8) else "fresh"
        )
        app = self.seeder.app(name, space.guid)
        seeded = SeededApp(space.org, space.name, name, app.guid, kind)
        if kind == "no-it-rt":
            self._bind_plain(app, space.user_provided)
            self._bind_plain(app, space.other)
            return seeded
        if kind == "odata-only":
            minted = self._mint(f"{name}-odata", FRESH_DAYS_LEFT)
            self.seeder.registered_binding(app, space.odata, minted)
            self._set_env(app, {"CLI_CHAIN": minted.chain_pem, "CLI_KEY": minted.key_pem})
            self.seeder.start(app)
            return seeded
        days_left = DUE_DAYS_LEFT if kind == "due" else FRESH_DAYS_LEFT
        if kind == "two-bindings":
            old = self._mint(f"{name}-client", DUE_DAYS_LEFT)
            self.seeder.registered_binding(app, space.iflow, old)
            days_left = DUE_DAYS_LEFT if i % 20 == 9 else FRESH_DAYS_LEFT
        minted = self._mint(f"{name}-client", days_left)
        self.seeder.registered_binding(app, space.iflow, minted)
        env = {"CLI_CHAIN": minted.chain_pem, "CLI_KEY": minted.key_pem}
        seeded.instances.append(space.iflow.name)
        seeded.leaf_sha256 = minted.leaf_sha256
        if i % 10 == 1:
            self._bind_plain(app, space.user_provided)
        if i % 10 == 4:
            self._annotate(app, minted, run=4000 + i)
        if i % 25 == 12:
            second = self._mint(f"{name}-second", FRESH_DAYS_LEFT)
            self.seeder.registered_binding(app, space.iflow_second, second)
            env |= {"CLI2_CHAIN": second.chain_pem, "CLI2_KEY": second.key_pem}
            seeded.instances.append(space.iflow_second.name)
        self._set_env(app, env)
        self.seeder.start(app)
        return seeded

    def _set_env(self, app: App, env: dict[str, str]) -> None:
        with self.seeder.store.lock:
            app.env_vars.update(env)

    def _annotate(self, app: App, minted: Minted, *, run: int) -> None:
        """What the rotation that set this certificate wrote (rotation/annotations.py)."""
        leaf = load_pem_certs(minted.chain_pem)[0]
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        with self.seeder.store.lock:
            app.annotations.update(
                {
                    f"{ANNOTATION_PREFIX}/fingerprint-sha256": minted.leaf_sha256,
                    f"{ANNOTATION_PREFIX}/not-before": leaf.not_valid_before_utc.strftime(stamp),
                    f"{ANNOTATION_PREFIX}/not-after": leaf.not_valid_after_utc.strftime(stamp),
                    f"{ANNOTATION_PREFIX}/rotated-at": leaf.not_valid_before_utc.strftime(stamp),
                    f"{ANNOTATION_PREFIX}/run-id": f"gha:acme/cpi-ops/{run}/1",
                }
            )
