"""Step (4), set: the binding changes every strategy is made of, each with its undo.

Each binding change pushes its compensation first. A create whose answer was lost (a
dropped connection, a 5xx after the server acted) is reconciled by listing the bindings
again, so a binding the engine never saw acknowledged is still undone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from .. import material
from ..cf import Binding, CfClient
from ..cf.polling import wait_for
from ..errors import CfApiError, CfJobFailed, CfTimeout, CfUnreachable, RotationError
from .context import RunContext
from .journal import Compensation
from .observe import credentials_of
from .promote import confirm_new_binding_unneeded

log = logging.getLogger(__name__)

OVERLAP_REFUSALS = (
    "The app is already bound to the service instance",
    "The app has too many bindings to this service instance",
    "Unknown field(s): 'strategy'",
)
"""422 details that mean "no second binding here" (cloud_controller_ng
`app/actions/service_credential_binding_app_create.rb`; an older CC refuses the unknown
`strategy` field in `app/messages/service_credential_app_binding_create_message.rb`)."""


class OverlapRefused(RotationError):
    """The landscape does not accept a second binding (limit 1, or CC < 3.205)."""


def delete_binding_when_settled(
    client: CfClient,
    guid: str,
    deadline: float,
    *,
    attempts: int = 1,
    listed: Binding | None = None,
) -> None:
    """Delete a binding, first waiting out an operation still in flight on it.

    CC refuses to delete a binding whose create is in progress (422), and a lost answer
    can leave exactly that; so wait for it to settle, then delete. A binding already
    gone counts as deleted. A failed broker job is often transient: `attempts` > 1
    tries the delete again before giving up. `listed`: the binding as a listing just
    showed it (its first reading then costs no call).
    """
    for attempt in range(1, attempts + 1):
        readings = iter((listed,) if attempt == 1 and listed is not None else ())

        def reading(readings: Iterator[Binding] = readings) -> Binding | None:
            return next(readings, None) or client.get_binding(guid)

        try:
            binding = wait_for(
                reading,
                lambda b: b is None or b.state not in ("initial", "in progress"),
                deadline=deadline,
                what="the binding's running operation",
                guid=guid,
            )
        except CfTimeout:  # still running: the delete below says what CC thinks of it
            binding = client.get_binding(guid)
        if binding is None:
            return
        try:
            client.delete_binding(guid, deadline=deadline)
            return
        except (CfJobFailed, CfApiError, CfUnreachable) as error:
            if attempt == attempts:
                raise
            log.warning("deleting binding %s, attempt %d failed: %s", guid, attempt, error)


def _binding_name(ctx: RunContext) -> str | None:
    """CC requires every binding of one app and instance to share a name (null included)."""
    live = ctx.obs.live_binding or (ctx.obs.bindings[-1] if ctx.obs.bindings else None)
    return live.name if live else None


def create_binding(ctx: RunContext, *, strategy: str | None) -> Binding:
    """Create a binding of the app to the instance with the new leaf; push its undo first.

    `strategy` is CC's binding strategy (`multiple` for a second binding, None for the
    only one). A 422 refusal of `multiple` raises `OverlapRefused`, nothing created.
    """
    client, obs = ctx.client, ctx.obs
    known = {b.guid for b in obs.bindings}  # read under the lock just before: no call
    params = material.binding_parameters(ctx.new_leaf)
    try:
        binding = client.create_app_binding(
            obs.app.guid,
            obs.instance.guid,
            name=_binding_name(ctx),
            parameters=params,
            strategy=strategy,
            deadline=ctx.deadline,
        )
    except CfJobFailed as failure:
        _adopt_unknown_bindings(ctx, known)
        earlier = _registering_new_leaf(ctx, exclude=failure.binding_guid)
        if earlier is None:
            raise
        # CPI takes a certificate once: a binding that already registers it (a create an
        # earlier run sent, applied after that run gave up) made this one fail. It is
        # this app's binding for this very certificate: use it.
        ctx.warnings.append(
            f"binding {earlier.guid} already registers the new certificate (a create of an "
            "earlier run, applied after its answer was lost); it is used instead"
        )
        _push_delete_new(ctx, earlier.guid)
        return earlier
    except CfApiError as error:
        if error.status == 422 and strategy == "multiple" and _is_overlap_refusal(error):
            raise OverlapRefused(error.detail or str(error)) from error
        if error.status >= 500 or error.status in (408, 429):
            _adopt_unknown_bindings(ctx, known)
        raise
    except (CfUnreachable, TimeoutError):
        _adopt_unknown_bindings(ctx, known)
        raise
    _push_delete_new(ctx, binding.guid)
    return binding


def _registering_new_leaf(ctx: RunContext, *, exclude: str | None) -> Binding | None:
    """A succeeded binding of the app to the instance that registers exactly the new leaf."""
    for binding in ctx.client.list_app_bindings(ctx.obs.app.guid, ctx.obs.instance.guid):
        if binding.guid == exclude or not binding.succeeded:
            continue
        try:
            registered = credentials_of(ctx.client.binding_credentials(binding.guid)).leaf
        except CfApiError:
            continue
        if registered == ctx.new_leaf:
            return binding
    return None


def _is_overlap_refusal(error: CfApiError) -> bool:
    text = error.detail or str(error)
    return any(text.startswith(refusal) for refusal in OVERLAP_REFUSALS)


def _adopt_unknown_bindings(ctx: RunContext, known: set[str]) -> None:
    """After a create whose outcome is unknown, take responsibility for any new binding.

    The bindings are listed when the undo runs, not now: a create still in flight may
    only show up later, and listing now could fail for the same reason the create did.
    Cloud Controller may apply a create after the client gave up on it (the request was
    slow, not lost), so the undo keeps watching for one client call timeout (within the
    rollback budget) until the binding shows up; only then is the rollback done. A create
    applied even later is a leftover the next run removes (`leftovers`).
    """
    app_guid, si_guid = ctx.obs.app.guid, ctx.obs.instance.guid

    def delete_unknown() -> None:
        watch_until = min(time.monotonic() + ctx.client.call_timeout_s, ctx.rollback_deadline())

        def unknown() -> list[Binding]:
            listed = ctx.client.list_app_bindings(app_guid, si_guid)
            return [b for b in listed if b.guid not in known]

        try:
            strays = wait_for(
                unknown, bool, deadline=watch_until, what="a binding of the failed create"
            )
        except CfTimeout:
            strays = []
        for binding in strays:
            log.warning("deleting binding %s left by a create that failed", binding.guid)
            delete_binding_when_settled(
                ctx.client, binding.guid, ctx.rollback_deadline(), listed=binding
            )
        if not strays:
            ctx.warnings.append(
                "a binding create whose answer was lost did not show up within "
                f"{ctx.client.call_timeout_s:g}s; if Cloud Controller applies it later, the "
                "next run removes it"
            )

    ctx.journal.push(
        Compensation(
            description="delete any binding left by the failed create",
            undo=delete_unknown,
            state_if_failed=f"a binding of app {app_guid} created by the failed call may remain",
            manual_action=(
                f"cf curl '/v3/service_credential_bindings?app_guids={app_guid}"
                f"&service_instance_guids={si_guid}' and delete bindings newer than the run"
            ),
        )
    )


def _push_delete_new(ctx: RunContext, guid: str) -> None:
    def delete_new() -> None:
        confirm_new_binding_unneeded(ctx)  # until then an instance may need this binding
        delete_binding_when_settled(ctx.client, guid, ctx.rollback_deadline())

    ctx.journal.push(
        Compensation(
            description=f"delete the new binding {guid}",
            undo=delete_new,
            state_if_failed=f"binding {guid} with the new certificate still exists",
            manual_action=(
                f"once {ctx.obs.app.name}'s env holds the previous chain and key and every "
                "instance restarted since (`cf restart --strategy rolling`): "
                f"cf curl -X DELETE /v3/service_credential_bindings/{guid}"
            ),
        )
    )


def delete_old_binding(ctx: RunContext, old: Binding) -> None:
    """Delete an old binding; its compensation binds the old leaf again.

    The binding that serves the env's certificate is the one instances rely on, so only
    its deletion is undone; others (failed, stray, superseded) are leftovers.
    """
    obs = ctx.obs
    registered = obs.registered_by.get(old.guid)
    if obs.env_leaf is not None:
        is_live = obs.serves(old, obs.env_leaf) is not False
    else:
        is_live = obs.live_binding is not None and old.guid == obs.live_binding.guid
    old_leaf = ((registered.leaf if registered else None) or obs.env_leaf) if is_live else None

    def rebind_old() -> None:
        current = ctx.client.get_binding(old.guid)
        if current is not None and current.operation == "create" and current.state == "succeeded":
            return  # the delete never happened: the old binding still registers the old leaf
        if current is not None:
            # A delete that failed or still runs blocks a new binding (422): finish it first.
            delete_binding_when_settled(ctx.client, old.guid, ctx.rollback_deadline(), attempts=2)
        if old_leaf is None:
            raise RotationError(f"the certificate of the deleted binding {old.guid} is unknown")
        ctx.client.create_app_binding(
            ctx.obs.app.guid,
            ctx.obs.instance.guid,
            name=old.name,
            parameters=material.binding_parameters(old_leaf),
            strategy=None,
            deadline=ctx.rollback_deadline(),
        )

    if old.state == "failed" or not is_live:
        # Leftovers (failed or superseded bindings) are removed without a way back:
        # they authorise nothing the app relies on.
        delete_binding_when_settled(ctx.client, old.guid, ctx.deadline, attempts=2)
        return
    app, si = ctx.obs.app.name, ctx.obs.instance.name
    ctx.journal.push(
        Compensation(
            description=f"bind {app} to {si} again with the old certificate",
            undo=rebind_old,
            state_if_failed=(
                f"{app} has no binding with its old certificate to {si}: instances still on the "
                "old certificate cannot call CPI"
            ),
            manual_action=(
                f"cf bind-service {app} {si} -c <bind.json with the old leaf> "
                "(`cpi-cert-rotate format --for bind-json --chain <old chain>` makes it)"
            ),
        )
    )
    delete_binding_when_settled(ctx.client, old.guid, ctx.deadline, attempts=2)
