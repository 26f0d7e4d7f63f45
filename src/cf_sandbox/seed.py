"""Creating landscape contents directly (not through the API): the seed and test fixtures.

The seed is the landscape of the manual procedure this tool replaces (docs/rotation.md,
`restage`): org `demo-org`, space `dev`, app `ntifext` (STARTED, running), it-rt instance
`iflowext` (plan `integration-flow`), bound without a binding name like a plain
`cf bind-service`, with a certificate issued 61 days ago for 90 days (so `renew-before 33%`
says it is due) whose chain and key are the app's `CLI_CHAIN`/`CLI_KEY`: the probe
succeeds before any rotation.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from .broker import IT_RT, ItRtBroker
from .instances import Runtime
from .pki import Minted, Pki
from .state import (
    App,
    Binding,
    Droplet,
    LastOperation,
    Offering,
    Org,
    Package,
    Plan,
    ServiceInstance,
    Space,
    Store,
)

SEED_ORG = "demo-org"
SEED_SPACE = "dev"
SEED_APP = "ntifext"
SEED_INSTANCE = "iflowext"
SEED_PLAN = "integration-flow"
_SEED_CERT_DAYS = 90
_SEED_CERT_AGE_DAYS = 61


class Seeder:
    """Adds resources straight into the store (callers need not hold the lock)."""

    def __init__(self, store: Store, runtime: Runtime, broker: ItRtBroker, pki: Pki) -> None:
        self.store = store
        self.runtime = runtime
        self.broker = broker
        self.pki = pki

    def org(self, name: str) -> Org:
        """A new organization."""
        with self.store.lock:
            return self.store.add(Org(name=name))  # type: ignore[no-any-return]

    def space(self, name: str, org_guid: str) -> Space:
        """A new space."""
        with self.store.lock:
            return self.store.add(Space(name=name, org_guid=org_guid))  # type: ignore[no-any-return]

    def plan(self, label: str, plan_name: str, *, bindable: bool = True) -> Plan:
        """The plan `label`/`plan_name`, created (with its offering) if missing."""
        with self.store.lock:
            offering = next((o for o in self.store.offerings.values() if o.label == label), None)
            if offering is None:
                offering = self.store.add(Offering(label=label))
            assert offering is not None
            for plan in self.store.plans.values():
                if plan.offering_guid == offering.guid and plan.name == plan_name:
                    return plan
            return self.store.add(  # type: ignore[no-any-return]
                Plan(name=plan_name, offering_guid=offering.guid, bindable=bindable)
            )

    def service_instance(
        self,
        name: str,
        space_guid: str,
        *,
        label: str = IT_RT,
        plan: str = SEED_PLAN,
        bindable: bool = True,
        user_provided: bool = False,
        operation_state: str = "succeeded",
        credentials: dict[str, Any] | None = None,
    ) -> ServiceInstance:
        """A managed (default: it-rt integration-flow) or user-provided instance."""
        plan_guid = None if user_provided else self.plan(label, plan, bindable=bindable).guid
        with self.store.lock:
            return self.store.add(  # type: ignore[no-any-return]
                ServiceInstance(
                    name=name,
                    space_guid=space_guid,
                    plan_guid=plan_guid,
                    credentials=dict(credentials or {}),
                    last_operation=LastOperation(state=operation_state),
                )
            )

    def app(
        self, name: str, space_guid: str, *, instances: int = 1, env: dict[str, str] | None = None
    ) -> App:
        """A STOPPED app with a READY package and a STAGED current droplet."""
        with self.store.lock:
            app: App = self.store.add(
                App(name=name, space_guid=space_guid, instances=instances, env_vars=dict(env or {}))
            )
            package: Package = self.store.add(Package(app_guid=app.guid))
            droplet: Droplet = self.store.add(Droplet(app_guid=app.guid, package_guid=package.guid))
            app.droplet_guid = droplet.guid
            return app

    def start(self, app: App) -> None:
        """Start the app with its instances RUNNING at once (no health-check wait)."""
        with self.store.lock:
            self.runtime.start_app(app, start_s=0.0)

    def registered_binding(
        self, app: App, si: ServiceInstance, minted: Minted, name: str | None = None
    ) -> Binding:
        """A succeeded app binding whose certificate the broker already registered."""
        leaf_pem = minted.chain_pem.split("-----END CERTIFICATE-----")[0]
        leaf_pem += "-----END CERTIFICATE-----\n"
        with self.store.lock:
            binding: Binding = self.store.add(
                Binding(
                    type="app",
                    name=name,
                    service_instance_guid=si.guid,
                    app_guid=app.guid,
                    last_operation=LastOperation(type="create", state="succeeded"),
                    parameters={"key-type": "certificate_external", "X.509": leaf_pem},
                )
            )
            self.broker.bind(binding)
            binding.registered_at = time.monotonic() - 3600.0
            return binding

    def demo(self, instances: int) -> dict[str, str]:
        """The seed landscape; returns the guids tests need."""
        org = self.org(SEED_ORG)
        space = self.space(SEED_SPACE, org.guid)
        si = self.service_instance(SEED_INSTANCE, space.guid)
        issued = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=_SEED_CERT_AGE_DAYS)
        minted = self.pki.mint("ntifext-client", days=_SEED_CERT_DAYS, not_before=issued)
        app = self.app(
            SEED_APP,
            space.guid,
            instances=instances,
            env={"CLI_CHAIN": minted.chain_pem, "CLI_KEY": minted.key_pem},
        )
        binding = self.registered_binding(app, si, minted)
        self.start(app)
        return {
            "org_guid": org.guid,
            "space_guid": space.guid,
            "app_guid": app.guid,
            "service_instance_guid": si.guid,
            "binding_guid": binding.guid,
            "leaf_sha256": minted.leaf_sha256,
        }
