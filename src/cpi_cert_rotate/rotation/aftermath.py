"""After a failed run: the state the app is really in, read fresh, and what is left to do.

An undo step that fails does not mean its change is still there (an env PATCH answered 500
every time never changed the env, so restoring it "fails" too), and an undo that succeeds
does not prove the app works. So once the rollback has run, the app is read again: the
env's chain and key (do they pair? which certificate?), every binding and what it
registers, and the deployments still ACTIVE (waited for within the rollback budget, as CC
finishes them by itself). The report's "state left" and "what to do by hand" come from
that read alone; what could not be read is said to be unknown, never assumed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

from cryptography import x509

from .. import material
from ..cf import Binding, CfClient, Deployment
from ..cf.polling import wait_for
from ..errors import CfTimeout, RotationError
from ..models import RotationRequest
from .observe import Observation, RegisteredCert, credentials_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FreshState:
    """The app as read after the run: env, bindings, deployments, and what was unreadable."""

    env_read: bool
    """False when the env vars could not be read (then `env_leaf` says nothing)."""
    env_leaf: x509.Certificate | None
    env_pair: bool | None
    """The env's key belongs to its chain's leaf (None: no chain or no key there)."""
    bindings: tuple[tuple[Binding, RegisteredCert | None], ...]
    active_deployments: tuple[str, ...]
    unreadable: tuple[str, ...]

    def registering(self, leaf: x509.Certificate) -> list[Binding]:
        """Live bindings whose registered certificate is exactly `leaf`."""
        return [
            b for b, reg in self.bindings if b.succeeded and reg is not None and reg.leaf == leaf
        ]


def read_fresh(
    client: CfClient, obs: Observation, request: RotationRequest, deadline: float
) -> FreshState:
    """Read the app again; wait (until `deadline`) for ACTIVE deployments to end first."""
    unreadable: list[str] = []
    active: tuple[str, ...] = ()
    try:
        active = _settled_deployments(client, obs.app.guid, deadline)
    except RotationError as error:
        unreadable.append(f"the app's deployments ({error})")
    env_leaf: x509.Certificate | None = None
    pair: bool | None = None
    env_read = False
    try:
        env = client.get_env_vars(obs.app.guid)
        env_leaf, pair = _env_certificate(env, request)
        env_read = True
    except RotationError as error:
        unreadable.append(f"the app's env vars ({error})")
    bindings: list[tuple[Binding, RegisteredCert | None]] = []
    try:
        for binding in client.list_app_bindings(obs.app.guid, obs.instance.guid):
            registered = None
            if binding.succeeded:
                try:
                    registered = credentials_of(client.binding_credentials(binding.guid))
                except RotationError as error:
                    unreadable.append(f"the credentials of binding {binding.guid} ({error})")
            bindings.append((binding, registered))
    except RotationError as error:
        unreadable.append(f"the app's bindings ({error})")
    return FreshState(env_read, env_leaf, pair, tuple(bindings), active, tuple(unreadable))


def _settled_deployments(client: CfClient, app_guid: str, deadline: float) -> tuple[str, ...]:
    seen = [client.list_active_deployments(app_guid)]

    def active() -> list[Deployment]:
        seen[0] = client.list_active_deployments(app_guid)
        return seen[0]

    if seen[0] and time.monotonic() < deadline:
        with contextlib.suppress(CfTimeout):  # the last reading says what is still active
            wait_for(active, lambda found: not found, deadline=deadline, what="deployments")
    return tuple(d.guid for d in seen[0])


def _env_certificate(
    env: dict[str, str], request: RotationRequest
) -> tuple[x509.Certificate | None, bool | None]:
    chain_pem, key_pem = env.get(request.chain_env_var), env.get(request.key_env_var)
    if not chain_pem:
        return None, None
    try:
        leaf = material.load_chain(chain_pem)[0]
    except RotationError:
        return None, False
    if not key_pem:
        return leaf, None
    try:
        return leaf, material.key_matches(material.load_key(key_pem), leaf)
    except RotationError:
        return leaf, False


@dataclass(frozen=True)
class Verdict:
    """Whether the app is back where the run found it, and if not, what is where."""

    restored: bool
    state_left: tuple[str, ...]
    manual_actions: tuple[str, ...]


def judge_rollback(
    fresh: FreshState,
    obs: Observation,
    request: RotationRequest,
    new_leaf: x509.Certificate,
) -> Verdict:
    """Compare the fresh state with the state the run found (`obs`)."""
    app, si = obs.app.name, obs.instance.name
    chain_var, key_var = request.chain_env_var, request.key_env_var
    old_leaf = obs.env_leaf
    state = [f"could not read {what}: the state there is unknown" for what in fresh.unreadable]
    manual: list[str] = []
    new_fp = material.fingerprint(new_leaf)[:16]
    restore_env = (
        f"set {chain_var} and {key_var} of {app} back to the previous chain and key "
        f"(`cf set-env`), then `cf restart {app} --strategy rolling`"
    )
    if fresh.env_read and fresh.env_leaf is not None and fresh.env_leaf == new_leaf != old_leaf:
        state.append(f"{app}'s env holds the new certificate ({new_fp}...) in {chain_var}")
        manual.append(restore_env)
    elif fresh.env_read and fresh.env_leaf != old_leaf:
        state.append(f"{app}'s {chain_var} holds neither the previous nor the new certificate")
        manual.append(restore_env)
    if fresh.env_leaf is not None and fresh.env_pair is False:
        state.append(f"{app}'s {key_var} does not belong to the leaf in {chain_var}")
    registered_before = {reg.leaf for reg in obs.registered_by.values() if reg.leaf is not None}
    if new_leaf not in registered_before:
        for binding in fresh.registering(new_leaf):
            state.append(f"binding {binding.guid} registers the new certificate ({new_fp}...)")
            manual.append(f"cf curl -X DELETE /v3/service_credential_bindings/{binding.guid}")
    if (
        old_leaf is not None
        and not fresh.registering(old_leaf)
        and not _unpinned_serves(fresh, old_leaf)
    ):
        state.append(
            f"no binding of {app} to {si} registers the previous certificate: instances "
            "still on it cannot call CPI"
        )
        manual.append(
            f"cf bind-service {app} {si} -c <bind.json with the previous leaf> "
            "(`cpi-cert-rotate format --chain <previous chain> --for bind-json` makes it)"
        )
    for guid in fresh.active_deployments:
        state.append(f"deployment {guid} is still ACTIVE")
        manual.append(f"cf cancel-deployment {app} (deployment {guid})")
    return Verdict(not state, tuple(state), tuple(dict.fromkeys(manual)))


def _unpinned_serves(fresh: FreshState, leaf: x509.Certificate) -> bool:
    """An unpinned binding with the same DNs serves `leaf` too (in-place renewals)."""
    return any(
        binding.succeeded
        and reg is not None
        and reg.leaf is not None
        and reg.pinning is False
        and (reg.leaf.subject, reg.leaf.issuer) == (leaf.subject, leaf.issuer)
        for binding, reg in fresh.bindings
    )
