"""Step (7), finish: remove every binding that does not serve the live certificate, record it.

Used twice: after a rotation (the new certificate is live), and by a run that finds what an
earlier run left (`leftovers`) with the certificate it was asked for already live. In both,
the bindings to remove come from a fresh listing, not from what was observed at the start,
and what is still there afterwards is read again: the report's "state left" is what Cloud
Controller says, not what the deletes were expected to achieve.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .. import material
from ..cf import Binding, CfClient
from ..cf.polling import wait_for
from ..cf.together import together
from ..errors import CfTimeout, RotationError
from ..models import CertFacts, Outcome, Report, RotationRequest
from .annotations import AnnotationKeys
from .context import ROLLBACK_BUDGET_S, RunContext
from .leftovers import Leftovers
from .observe import Observation
from .promote import redeploy
from .record import RunRecord
from .register import delete_binding_when_settled
from .strategies import Registered

log = logging.getLogger(__name__)

MIN_COMPLETION_S = 60.0
"""Completing an earlier run's leftovers gets at least this long (it waits for deployments)."""
CLEANUP_ATTEMPTS = 2
"""An old binding's delete is tried twice: a failed broker job is often transient."""


@dataclass
class Cleanup:
    """What a finish did and what it could not do."""

    notes: list[str] = field(default_factory=list)
    state_left: list[str] = field(default_factory=list)
    manual_actions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def remove_other_bindings(
    client: CfClient,
    app_guid: str,
    si_guid: str,
    *,
    keep: str,
    deadline: float,
    cleanup: Cleanup,
    meanwhile: Callable[[], None] | None = None,
    known: Sequence[Binding] | None = None,
) -> None:
    """Delete every binding of the app to the instance but `keep`; then list again.

    `known`: the bindings as read under the lock (deleted without listing them first).
    `meanwhile` runs once the deletes ended, together with that listing (the rotation
    record: written only after the deletes, so a run killed while they run leaves no
    record, and the next run finishes its work and takes its lock over)."""

    def delete(binding: Binding) -> None:
        try:
            delete_binding_when_settled(
                client, binding.guid, deadline, attempts=CLEANUP_ATTEMPTS, listed=binding
            )
            cleanup.notes.append(f"deleted binding {binding.guid}")
        except RotationError as error:
            log.error("binding %s could not be deleted: %s", binding.guid, error)

    def final_list() -> list[Binding] | RotationError:
        try:
            return [b for b in client.list_app_bindings(app_guid, si_guid) if b.guid != keep]
        except RotationError as error:
            return error

    # `known` (read under the lock) go without a listing first; the listing after them
    # finds any other (a create applied late, a person's), which then goes too.
    first = client.list_app_bindings(app_guid, si_guid) if known is None else known
    for binding in first:
        if binding.guid != keep:  # one at a time: a run has one write in flight
            delete(binding)
    remaining, _ = together(final_list, meanwhile or (lambda: None))
    if known is not None and isinstance(remaining, list) and remaining:
        for binding in remaining:
            delete(binding)
        remaining = final_list()
    if isinstance(remaining, RotationError):
        cleanup.state_left.append(
            f"whether the old binding(s) are gone is unknown: listing them failed ({remaining})"
        )
        cleanup.manual_actions.append(
            f"cf curl '/v3/service_credential_bindings?app_guids={app_guid}"
            f"&service_instance_guids={si_guid}' and delete every binding but {keep}"
        )
        return
    for binding in remaining:
        cleanup.state_left.append(
            f"binding {binding.guid} ({binding.operation} {binding.state}) still exists, so "
            "CPI still accepts the certificate it registers"
        )
        cleanup.manual_actions.append(
            f"cf curl -X DELETE /v3/service_credential_bindings/{binding.guid}"
        )


def wait_for_deployments(client: CfClient, guids: tuple[str, ...], deadline: float) -> list[str]:
    """Wait until the deployments are FINALIZED; returns those still ACTIVE at `deadline`."""
    pending = list(guids)

    def still_active() -> list[str]:
        nonlocal pending
        pending = [g for g in pending if not client.get_deployment(g).finalized]
        return pending

    if pending:
        with contextlib.suppress(CfTimeout):
            wait_for(still_active, lambda p: not p, deadline=deadline, what="the deployments")
    return pending


def record(
    client: CfClient,
    app_guid: str,
    keys: AnnotationKeys,
    facts: CertFacts,
    *,
    run_id: str,
    cleanup: Cleanup,
) -> None:
    """Write the rotation record; a failure is a warning (the certificate is live)."""
    stamp = keys.record(facts, run_id=run_id, rotated_at=datetime.now(UTC))
    try:
        client.patch_app_annotations(app_guid, stamp)
        cleanup.notes.append("rotation record written")
    except RotationError as error:
        cleanup.warnings.append(f"the app's annotations could not be written: {error}")


def finish_rotation(
    ctx: RunContext, registered: Registered, run: RunRecord, keys: AnnotationKeys, *, run_id: str
) -> Report:
    """Step (7) of a rotation: the new certificate is live; remove the other bindings (all
    but the one that serves it), record it."""
    ctx.client.set_deadline(ctx.rollback_deadline())  # finishing beats leaving a mess
    cleanup = Cleanup()
    new = run.new
    assert new is not None
    with run.journal.step("finish") as notes:
        remove_other_bindings(
            ctx.client,
            ctx.obs.app.guid,
            ctx.obs.instance.guid,
            keep=registered.binding.guid,
            deadline=ctx.rollback_deadline(),
            cleanup=cleanup,
            meanwhile=lambda: record(
                ctx.client, ctx.obs.app.guid, keys, new, run_id=run_id, cleanup=cleanup
            ),
            known=ctx.obs.bindings,
        )
        notes.extend(cleanup.notes)
    run.warnings += cleanup.warnings
    new_guid = registered.binding.guid if registered.created else None
    if cleanup.state_left:
        return run.report(
            Outcome.CLEANUP_INCOMPLETE,
            binding_guid=new_guid,
            deployment_guid=ctx.deployment_guid,
            error="the new certificate is live, but an old binding could not be deleted",
            state_left=tuple(cleanup.state_left),
            manual_actions=tuple(cleanup.manual_actions),
        )
    return run.report(Outcome.ROTATED, binding_guid=new_guid, deployment_guid=ctx.deployment_guid)


def complete_earlier_run(
    client: CfClient,
    obs: Observation,
    leftovers: Leftovers,
    run: RunRecord,
    keys: AnnotationKeys,
    *,
    outcome: Outcome,
    run_id: str,
    deadline: float,
) -> Report:
    """The certificate asked for is live, but an earlier run left things: finish them.

    Gets at least `MIN_COMPLETION_S` (it waits for deployments) and the rollback budget
    beyond for its calls. The report is `outcome` when all is done.
    """
    deadline = max(deadline, time.monotonic() + MIN_COMPLETION_S)
    client.set_deadline(deadline + ROLLBACK_BUDGET_S)
    cleanup = Cleanup()
    run.earlier_run_left(leftovers.describe())
    try:
        why = "completing what an earlier run left" if leftovers else "recording it"
        with run.journal.step("finish", why) as notes:
            _complete(
                client, obs, leftovers, run.request, keys, run_id=run_id, deadline=deadline,
                cleanup=cleanup,
            )  # fmt: skip
            notes.extend(cleanup.notes)
    except RotationError as error:
        return run.failure(
            Outcome.CLEANUP_INCOMPLETE,
            error,
            state_left=(*leftovers.describe(), *cleanup.state_left),
            manual_actions=tuple(cleanup.manual_actions),
        )
    run.warnings += cleanup.warnings
    if cleanup.state_left:
        return run.report(
            Outcome.CLEANUP_INCOMPLETE,
            error="the live certificate is right, but what an earlier run left could not "
            "all be removed",
            state_left=tuple(cleanup.state_left),
            manual_actions=tuple(cleanup.manual_actions),
        )
    if leftovers:
        run.warnings.append("what an earlier run left was completed (see the finish step)")
    return run.report(outcome)


def _complete(
    client: CfClient,
    obs: Observation,
    leftovers: Leftovers,
    request: RotationRequest,
    keys: AnnotationKeys,
    *,
    run_id: str,
    deadline: float,
    cleanup: Cleanup,
) -> None:
    """Finish what an earlier run left, with the certificate in the env live.

    Active deployments are waited for and, unless a rotation record names the live
    certificate (its run reached the finish step, so after its deployment), the env is
    deployed first: an old binding may go only once no instance can still use it (a
    stopped app is not: no instance runs, and a deployment would start it). Raises
    `RotationError` when a deployment does not end (then nothing is deleted).
    """
    leaf = obs.env_leaf
    assert leaf is not None
    keep = next(b.guid for b in obs.bindings if obs.serves(b, leaf))
    still = wait_for_deployments(client, leftovers.active_deployments, deadline)
    if still:
        raise RotationError(
            f"deployment(s) {', '.join(still)} did not finish; no binding was deleted while "
            "instances may still use the certificate it registers"
        )
    if obs.app.stopped:  # no instance runs; a deployment would start the app
        cleanup.notes.append("the app is stopped: no deployment (it would start the app)")
    elif leftovers.unfinished or leftovers.unrecorded:
        deployment = redeploy(client, obs, request, deadline)
        cleanup.notes.append(f"deployment {deployment.guid} brought the env to every instance")
    facts = material.facts(leaf)
    remove_other_bindings(
        client, obs.app.guid, obs.instance.guid, keep=keep, deadline=deadline, cleanup=cleanup,
        meanwhile=lambda: record(client, obs.app.guid, keys, facts, run_id=run_id,
                                 cleanup=cleanup),
    )  # fmt: skip
