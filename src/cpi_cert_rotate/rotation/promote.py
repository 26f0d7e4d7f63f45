"""Step (6), promote: the new chain and key into the app's env, then a rolling deployment.

Chain and key go in one PATCH, never one without the other: an instance started between
two calls would present a chain its key cannot sign for. Env vars take effect on
restart, so a rolling deployment of the current droplet (no restage, no outage) brings
them to every instance, `max_in_flight` at a time.

A stopped app gets the PATCH only (`promote_stopped`): Cloud Controller starts a stopped
app when a deployment is created for it (cloud_controller_ng
app/actions/deployment_create.rb, `AppStart.start` when `app.stopped?`), and a restage
or restart starts it too. A platform team may have stopped it on purpose; its instances
take the env when someone starts it.
"""

from __future__ import annotations

import contextlib
import logging
import time

from ..cf import MIN_VERSION_DEPLOYMENT_OPTIONS, CfClient, Deployment
from ..cf.polling import wait_for
from ..errors import CfTimeout, InputError, RotationError
from ..models import RotationRequest
from .context import RunContext
from .journal import Compensation
from .observe import Observation

log = logging.getLogger(__name__)


STOPPED_NOTE = (
    "the app is stopped and was left stopped (no deployment, restage or restart: each "
    "would start it): the new certificate is registered, in its env and, if the test "
    "step ran, tested with the tool's own call, but no instance of the app presents it "
    "yet; the app will present the new certificate when it is started"
)
"""The warning of a rotation of a stopped app (the report also says `app_stopped: true`)."""

STARTED_MEANWHILE = (
    "the app was stopped when the rotation read it but was started while it ran: a "
    "rolling deployment brought the new chain and key to its instances"
)


class DeploymentFailed(RotationError):
    """The rolling deployment ended other than FINALIZED/DEPLOYED."""


def stopped_plan(chain_var: str, key_var: str) -> tuple[str, ...]:
    """The promote lines of a plan for a stopped app (`promote_stopped`)."""
    return (
        f"set {chain_var} and {key_var} in one call",
        "no deployment, restage or restart: the app is stopped and would be started by "
        "any of them; it is left stopped and presents the new certificate when it is started",
    )


def promote_stopped(ctx: RunContext) -> bool:
    """Promote for an app found stopped: one PATCH of chain and key, nothing that starts it.

    Whatever the strategy (its own promote deploys or restages), only the env changes: no
    instance runs, so no instance presents the old certificate, and the old binding may go
    as after any rotation. The app is read again after the PATCH: if someone started it
    meanwhile, an instance may have started with the old env, so a rolling deployment
    (which cannot start what already runs) brings the new env to every instance. Returns
    True when the app was still stopped (no deployment made).
    """
    with ctx.journal.step("promote", "chain and key in one call") as notes:
        set_env(ctx)
        still_stopped = ctx.client.get_app(ctx.obs.app.guid).stopped
        notes.append("app stopped: left stopped" if still_stopped else "app started meanwhile")
    if still_stopped:
        ctx.journal.skip("deploy", "the app is stopped: no deployment (it would start the app)")
        ctx.warnings.append(STOPPED_NOTE)
        return True
    ctx.warnings.append(STARTED_MEANWHILE)
    with ctx.journal.step("deploy") as notes:
        deployment = roll_out(ctx)
        notes.append(f"deployment {deployment.guid} {deployment.state}/{deployment.reason}")
    return False


def check_max_in_flight(request: RotationRequest, api_version: tuple[int, ...]) -> None:
    """Raise `InputError` when `max-in-flight` cannot be sent to this Cloud Controller.

    A `max_in_flight` other than 1 is the deployment's `options`, which Cloud Controller
    takes from API 3.173.0 (`MIN_VERSION_DEPLOYMENT_OPTIONS`); an older one answers 422
    "Unknown field(s): 'options'" only at the promote step, after the binding is made.
    Known from `GET /`, so refused before any write.
    """
    if request.max_in_flight != 1 and tuple(api_version) < MIN_VERSION_DEPLOYMENT_OPTIONS:
        version = ".".join(map(str, api_version))
        needed = ".".join(map(str, MIN_VERSION_DEPLOYMENT_OPTIONS))
        raise InputError(
            f"max-in-flight {request.max_in_flight} is not possible here: the Cloud "
            f"Controller API is {version}; a deployment's `options.max_in_flight` needs "
            f"{needed} or later",
            code="max-in-flight-unavailable",
            fix=f"Use `max-in-flight: 1` (the default) or ask the platform team for a Cloud "
            f"Controller of {needed} or later.",
        )


def set_env(ctx: RunContext) -> None:
    """PATCH chain and key together; the compensation restores the previous values."""
    request, obs = ctx.request, ctx.obs
    names = (request.chain_env_var, request.key_env_var)
    previous: dict[str, str | None] = {name: obs.env.get(name) for name in names}
    app = obs.app.name

    def restore() -> None:
        ctx.client.patch_env_vars(obs.app.guid, previous)
        ctx.env_may_hold_new = False
        if ctx.instances_may_hold_new_env:
            _deploy_and_wait(ctx, ctx.rollback_deadline(), purpose="restore")
            ctx.instances_may_hold_new_env = False

    ctx.journal.push(
        Compensation(
            description=f"restore {' and '.join(names)} of {app} (and roll instances back)",
            undo=restore,
            state_if_failed=f"{app}'s env holds the new chain and key",
            manual_action=(
                f"set {names[0]} and {names[1]} of {app} back to the previous chain and key "
                f"(`cf set-env`), then `cf restart {app} --strategy rolling`"
            ),
        )
    )
    ctx.env_may_hold_new = True
    ctx.client.patch_env_vars(obs.app.guid, {names[0]: ctx.env_chain, names[1]: ctx.key_pem})


def roll_out(ctx: RunContext) -> Deployment:
    """Start a rolling deployment of the current droplet and wait until it is DEPLOYED.

    On CANCELED, SUPERSEDED or the deadline, a still-active deployment is cancelled
    (CC then brings the old instances back) and `DeploymentFailed` is raised.
    """
    ctx.check_cancel()
    ctx.journal.push(
        Compensation(
            description="cancel the rolling deployment",
            undo=lambda: _cancel_if_active(ctx),
            state_if_failed="a rolling deployment with the new env may still be running",
            manual_action=f"cf cancel-deployment {ctx.obs.app.name}",
        )
    )
    ctx.instances_may_hold_new_env = True
    return _deploy_and_wait(ctx, ctx.deadline, purpose="promote")


def redeploy(
    client: CfClient, obs: Observation, request: RotationRequest, deadline: float
) -> Deployment:
    """A rolling deployment of the current droplet, waited to DEPLOYED (no compensation:
    it changes no setting, it only brings the app's env to every instance)."""
    check_max_in_flight(request, obs.api_version)
    sent = time.monotonic()
    deployment = client.create_deployment(obs.app.guid, max_in_flight=request.max_in_flight)
    deployment = client.wait_deployment(
        deployment.guid,
        deadline=deadline,
        instances=obs.web_instances,
        max_in_flight=request.max_in_flight,
        process_guid=deployment.new_process_guid,
        started=sent,
    )
    if not deployment.succeeded:
        error = f": {deployment.error}" if deployment.error else ""
        raise DeploymentFailed(
            f"deployment {deployment.guid} ended {deployment.state}/{deployment.reason}{error}"
        )
    return deployment


def _deploy_and_wait(ctx: RunContext, deadline: float, *, purpose: str) -> Deployment:
    sent = time.monotonic()
    deployment = ctx.client.create_deployment(
        ctx.obs.app.guid, max_in_flight=ctx.request.max_in_flight
    )
    if purpose == "promote":
        ctx.deployment_guid = deployment.guid
    else:
        ctx.restore_deployment_guid = deployment.guid
    log.info("deployment %s (%s) started", deployment.guid, purpose)
    if deployment.state != "FINALIZED":
        try:
            deployment = ctx.client.wait_deployment(
                deployment.guid,
                deadline=deadline,
                instances=ctx.obs.web_instances,
                max_in_flight=ctx.request.max_in_flight,
                process_guid=deployment.new_process_guid,
                started=sent,
                check=ctx.check_cancel if purpose == "promote" else None,
            )
        except CfTimeout as timeout:
            raise DeploymentFailed(
                f"deployment {deployment.guid} did not finish before the deadline"
            ) from timeout
    if deployment.reason != "DEPLOYED":
        error = f": {deployment.error}" if deployment.error else ""
        raise DeploymentFailed(
            f"deployment {deployment.guid} ended {deployment.state}/{deployment.reason}{error}"
        )
    return deployment


def _cancel_if_active(ctx: RunContext) -> None:
    """Cancel the promote deployment if it still runs; a clean cancel restores old instances."""
    guid = ctx.deployment_guid
    if guid is None:
        return
    deployment = ctx.client.get_deployment(guid)
    if deployment.state == "ACTIVE":
        ctx.client.cancel_deployment(guid)
        with contextlib.suppress(CfTimeout):  # still cancelling: said by the state below
            deployment = ctx.client.wait_deployment(guid, deadline=ctx.rollback_deadline())
    if deployment.state == "FINALIZED" and deployment.reason == "CANCELED":
        # CC scaled the old process back up: no instance runs with the new env.
        ctx.instances_may_hold_new_env = False


def confirm_new_binding_unneeded(ctx: RunContext) -> None:
    """Return once nothing can present the new certificate any more; raise if not seen.

    An instance with the new env presents the new certificate, which only the new binding
    registers at CPI: deleting that binding first would break every call such an instance
    makes, now (instances the rollout restarted) or at its next restart (the env still
    holding the new values). So: the env is read back when its restore failed, and when
    the restore's own deployment wait failed (its deployment could not be read), the
    app's deployment list is asked instead: the restore's deployment no longer ACTIVE,
    and among those that ended DEPLOYED. Without a promote deployment (its create was
    refused) no instance was restarted, so there is nothing to wait for.
    """
    app = ctx.obs.app
    if ctx.env_may_hold_new:
        try:
            env = ctx.client.get_env_vars(app.guid)
        except RotationError as error:
            raise RotationError(
                f"kept: {app.name}'s env could not be read back ({error}); it may still hold "
                "the new certificate, which an instance takes when it restarts"
            ) from error
        if env.get(ctx.request.chain_env_var) == ctx.env_chain:
            raise RotationError(
                f"kept: {app.name}'s env still holds the new certificate, which an instance "
                "takes when it restarts"
            )
        ctx.env_may_hold_new = False
    if not ctx.instances_may_hold_new_env:
        return
    guid = ctx.restore_deployment_guid
    if guid is None:
        if ctx.deployment_guid is None:
            return
        raise RotationError(
            f"kept: instances of {app.name} may still run with the new certificate "
            f"(deployment {ctx.deployment_guid} rolled the new env out; no deployment "
            "brought the old values back)"
        )
    with contextlib.suppress(CfTimeout):  # the list below says whether it ended well
        wait_for(
            lambda: ctx.client.list_active_deployments(app.guid),
            lambda active: all(d.guid != guid for d in active),
            deadline=ctx.rollback_deadline(),
            what=f"deployment {guid}",
        )
    if all(d.guid != guid for d in ctx.client.list_deployed(app.guid)):
        raise RotationError(
            f"kept: deployment {guid}, which brings the old env values back to the "
            f"instances of {app.name}, was not seen DEPLOYED; an instance may still "
            "present the new certificate"
        )
    ctx.instances_may_hold_new_env = False
