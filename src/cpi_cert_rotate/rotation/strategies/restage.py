"""`restage`: exactly the seed's sequence, kept only as the baseline to measure against.

Delete the old binding, bind the new leaf, set the chain and then the key in two calls,
and restage: every instance stops, so the app is down until the restage ends. A stopped
app is neither restaged nor restarted (its stop and start would start it): the engine
promotes it with `promote.promote_stopped` whatever the strategy.
"""

from __future__ import annotations

from ...cf import CfClient
from ...models import Strategy
from ..context import RunContext
from ..journal import Compensation
from .base import Defaults, PlanSteps, PlanWords, Registered
from .swap import delete_then_create


def set_env_like_the_seed(ctx: RunContext) -> None:
    """Chain and key in two calls, exactly as the seed script does."""
    request, obs = ctx.request, ctx.obs
    names = (request.chain_env_var, request.key_env_var)
    previous: dict[str, str | None] = {name: obs.env.get(name) for name in names}

    def restore() -> None:
        ctx.client.patch_env_vars(obs.app.guid, previous)

    ctx.journal.push(
        Compensation(
            description=f"restore {' and '.join(names)} of {obs.app.name}",
            undo=restore,
            state_if_failed=f"{obs.app.name}'s env holds the new chain and/or key",
            manual_action=f"set {names[0]} and {names[1]} back with `cf set-env`",
        )
    )
    ctx.client.patch_env_vars(obs.app.guid, {names[0]: ctx.env_chain})
    ctx.client.patch_env_vars(obs.app.guid, {names[1]: ctx.key_pem})


def _restart(client: CfClient, app_guid: str) -> None:
    """Stop and start: every instance takes the app's current env (the seed's downtime)."""
    client.stop_app(app_guid)
    client.start_app(app_guid)


class Restage(Defaults):
    """The seed's flow: swap's bindings, env in two calls, a restage (an outage; `auto`
    never picks it)."""

    name = Strategy.RESTAGE

    def plan(self, words: PlanWords) -> PlanSteps:
        """The seed's steps, in its order."""
        return PlanSteps(
            set=(
                f"delete the old binding(s) ({words.old_bindings})",
                f"bind {words.app} to {words.instance} with the new leaf",
            ),
            promote=(
                f"set {words.chain_var}, then {words.key_var}, in two calls",
                f"restage {words.app} (downtime)",
            ),
        )

    def register(self, ctx: RunContext) -> Registered:
        """Delete the old binding(s), then create, as swap does (without its warning)."""
        return Registered(delete_then_create(ctx), created=True, used=self.name)

    def promote(self, ctx: RunContext) -> None:
        """Env in two calls, then a restage."""
        with ctx.journal.step("promote", "two env calls and a restage, as the seed"):
            app_guid, app = ctx.obs.app.guid, ctx.obs.app.name
            # Pushed first so that it runs last: instances start with the restored env.
            ctx.journal.push(
                Compensation(
                    description=f"restart {app} (a failed restage may stop it)",
                    undo=lambda: _restart(ctx.client, app_guid),
                    state_if_failed=f"{app} may be stopped",
                    manual_action=f"cf restart {app}",
                )
            )
            set_env_like_the_seed(ctx)
            ctx.client.restage(app_guid, deadline=ctx.deadline)


STRATEGY = Restage()
