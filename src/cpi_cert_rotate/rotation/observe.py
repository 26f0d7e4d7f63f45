"""Step (2), observe: read everything the decision and a rollback need, change nothing.

The observation holds the app's current env values (including the *old* private key) so
that a rollback can restore them without asking anyone; it is kept in memory only and
excluded from `repr`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from .. import material
from ..cf import App, Binding, CfClient, ServiceInstance
from ..cf.together import together
from ..errors import CfApiError, RotationError
from ..models import CfTarget

log = logging.getLogger(__name__)

WARM_CONNECTIONS = 4
"""Connections open once the login ran (the root's included): observe then sends four
calls at once."""


@dataclass(frozen=True)
class RegisteredCert:
    """What a binding's credentials say: the leaf CPI knows, its URL and pinning mode."""

    leaf: x509.Certificate | None
    url: str | None
    pinning: bool | None


@dataclass(frozen=True)
class Observation:
    """The landscape as found, before any change."""

    api_version: tuple[int, ...]
    supports_strategy: bool
    org_guid: str
    space_guid: str
    app: App
    instance: ServiceInstance
    bindings: tuple[Binding, ...]
    """Every type=app binding of app and instance, oldest first."""
    live_binding: Binding | None
    """The newest succeeded binding: the one VCAP_SERVICES shows to new containers."""
    registered: RegisteredCert
    env: dict[str, str] = field(repr=False)
    """The app's user-provided env vars, old key included: memory only, for rollback."""
    env_leaf: x509.Certificate | None = None
    """The leaf of the chain env var as the app uses it now, if it parses."""
    warnings: tuple[str, ...] = ()
    registered_by: dict[str, RegisteredCert] = field(default_factory=dict)
    """What each succeeded binding registers, by binding guid (unreadable ones absent)."""
    active_deployments: tuple[str, ...] = ()
    """Guids of the app's deployments still ACTIVE (an earlier run's, or a person's)."""
    web_instances: int | None = None
    """How many web instances the app runs (None: unknown): a deployment's batches."""

    def serves(self, binding: Binding, leaf: x509.Certificate) -> bool | None:
        """Whether CPI accepts `leaf` through `binding`; None when its certificate is unknown.

        Pinning on: the exact certificate; off: the same subject and issuer DN, issued no
        earlier (CPI's unpinned rule, reference sap-and-rotation-anchors 3.1).
        """
        if not (binding.succeeded and binding.operation == "create"):
            return False
        registered = self.registered_by.get(binding.guid)
        if registered is None or registered.leaf is None:
            return None
        return accepts(registered.leaf, registered.pinning, leaf)


def accepts(registered: x509.Certificate, pinning: bool | None, leaf: x509.Certificate) -> bool:
    """Whether CPI accepts `leaf` through a binding that registered `registered`.

    Pinning on: the exact certificate; off: the same subject and issuer DN, issued no
    earlier (CPI's unpinned rule, reference sap-and-rotation-anchors 3.1).
    """
    if registered == leaf:
        return True
    return (
        pinning is False
        and registered.subject == leaf.subject
        and registered.issuer == leaf.issuer
        and leaf.not_valid_before_utc >= registered.not_valid_before_utc
    )


def credentials_of(raw: dict[str, Any]) -> RegisteredCert:
    """Read an it-rt binding's credentials (`oauth.{certificate,url,certificate-pinning}`).

    SAP nests it-rt credentials under `oauth`; some brokers return them flat, so both
    shapes are read.
    """
    oauth = raw.get("oauth") if isinstance(raw.get("oauth"), dict) else raw
    assert isinstance(oauth, dict)
    pem = oauth.get("certificate")
    leaf: x509.Certificate | None = None
    if isinstance(pem, str) and pem.strip():
        try:
            leaf = material.load_chain(pem)[0]
        except RotationError:
            log.warning("the binding's certificate could not be parsed")
    url = oauth.get("url")
    pinning = oauth.get("certificate-pinning")
    if isinstance(pinning, str):
        pinning = pinning.lower() == "true"
    return RegisteredCert(
        leaf=leaf,
        url=url if isinstance(url, str) else None,
        pinning=pinning if isinstance(pinning, bool) else None,
    )


def leaf_of_chain(pem: str | None, now: datetime) -> x509.Certificate | None:
    """The leaf of a chain env value, or None when absent or unparseable."""
    if not pem:
        return None
    try:
        chain = material.load_chain(pem)
        return material.validate(chain, None, now=now).leaf
    except RotationError:
        return None


def observe(
    client: CfClient,
    target: CfTarget,
    *,
    chain_env_var: str,
    now: datetime,
    previous: Observation | None = None,
) -> Observation:
    """Resolve org, space, app, service instance, bindings, env vars; make no change.

    In as few round trips as Cloud Controller allows: the API root; the login (while more
    connections open); org, space and app in one call (`CfClient.locate_app`) and, at the
    same time, the bindings of apps of that name to instances of that name, with those
    instances; then the succeeded bindings' credentials, the env vars, the active
    deployments and the web instance count, all at once. With `previous` (the reading under the
    lock) what cannot change is taken from it (org, space, instance, instance count); the
    app, bindings, env vars and deployments are read again, in one round trip, and a
    binding's credentials are read once per run (they never change).
    """
    if previous is None:
        root = client.root()
        together(client.authenticate, lambda: client.warm(WARM_CONNECTIONS))
        (org, space, app), (all_bindings, named) = together(
            lambda: client.locate_app(target.org, target.space, target.app),
            lambda: client.bindings_of_app_named(target.app, target.service_instance),
        )
        bound = {b.service_instance_guid for b in all_bindings if b.app_guid == app.guid}
        mine = [si for si in named if si.guid in bound]
        if len(mine) == 1 and app.name == target.app:
            instance = mine[0]  # the app binds only to its space's (or shared) instances
        else:  # no binding yet, or the name matched only case-folded: by guid, to be sure
            instance = client.find_service_instance(space.guid, target.service_instance)
            if app.name != target.app:
                all_bindings = client.list_app_bindings(app.guid, instance.guid)
        bindings = tuple(
            b
            for b in all_bindings
            if b.service_instance_guid == instance.guid and b.app_guid == app.guid
        )
        _, env, deployments, web_instances = together(
            lambda: _read_credentials(client, bindings),
            lambda: client.get_env_vars(app.guid),
            lambda: client.list_active_deployments(app.guid),
            lambda: client.web_instances(app.guid),
        )
        org_guid, space_guid = org.guid, space.guid
        api_version: tuple[int, ...] = root.v3_version
    else:
        (listed, app), env, deployments = together(
            lambda: client.app_bindings_and_app(previous.app.guid, previous.instance.guid),
            lambda: client.get_env_vars(previous.app.guid),
            lambda: client.list_active_deployments(previous.app.guid),
        )
        bindings, instance = tuple(listed), previous.instance
        org_guid, space_guid = previous.org_guid, previous.space_guid
        api_version, web_instances = previous.api_version, previous.web_instances
    succeeded = [b for b in bindings if b.state == "succeeded" and b.operation == "create"]
    live = succeeded[-1] if succeeded else None
    warnings: list[str] = []
    registered_by: dict[str, RegisteredCert] = {}
    answers = together(*(_credentials_or_error(client, b.guid) for b in succeeded))
    for binding, answer in zip(succeeded, answers, strict=True):
        if isinstance(answer, CfApiError):
            warnings.append(
                f"could not read the credentials of binding {binding.guid} "
                f"({answer.title or answer.status})"
                + ("; the old certificate is taken from the env var" if binding is live else "")
            )
        else:
            registered_by[binding.guid] = credentials_of(answer)
    registered = RegisteredCert(None, None, None)
    if live is not None:
        registered = registered_by.get(live.guid, registered)
    return Observation(
        api_version=api_version,
        supports_strategy=client.supports_binding_strategy(),
        org_guid=org_guid,
        space_guid=space_guid,
        app=app,
        instance=instance,
        bindings=bindings,
        live_binding=live,
        registered=registered,
        env=env,
        env_leaf=leaf_of_chain(env.get(chain_env_var), now),
        warnings=tuple(warnings),
        registered_by=registered_by,
        active_deployments=tuple(d.guid for d in deployments),
        web_instances=web_instances,
    )


def _read_credentials(client: CfClient, bindings: tuple[Binding, ...]) -> None:
    """Read the succeeded bindings' credentials into the client (errors are seen later)."""
    succeeded = [b for b in bindings if b.succeeded]
    together(*(_credentials_or_error(client, b.guid) for b in succeeded))


def _credentials_or_error(client: CfClient, guid: str) -> Callable[[], dict[str, Any] | CfApiError]:
    def read() -> dict[str, Any] | CfApiError:
        try:
            return client.binding_credentials(guid)
        except CfApiError as error:
            return error

    return read
