"""`swap`: the seed's order (delete the old binding, create the new one), then a rolling
deployment.

Works wherever one binding per app and instance is the limit. Between the delete and the
end of the deployment, instances still on the old certificate cannot call CPI: the run
says so in a warning.
"""

from __future__ import annotations

from cryptography import x509

from ...cf import Binding
from ...models import Strategy
from ..context import RunContext
from ..observe import Observation
from ..register import create_binding, delete_old_binding
from .base import Defaults, PlanSteps, PlanWords, Registered, rolling_plan

GAP_WARNING = (
    "swap deletes the old binding before the new one exists: instances on the old "
    "certificate cannot call CPI until the rolling deployment replaces them"
)


def delete_then_create(ctx: RunContext) -> Binding:
    """Delete every old binding (the live one's undo binds its leaf again), then create."""
    for old in ctx.obs.bindings:
        ctx.check_cancel()
        delete_old_binding(ctx, old)
    return create_binding(ctx, strategy=None)


class Swap(Defaults):
    """Delete, create, roll out; an auth gap for instances still on the old certificate."""

    name = Strategy.SWAP
    preference = 3
    warning = GAP_WARNING

    def suits(self, obs: Observation, leaf: x509.Certificate | None) -> bool:
        """Everywhere: one binding per app and instance is enough."""
        return True

    def plan(self, words: PlanWords) -> PlanSteps:
        """The old binding(s) go in the set step; finish has nothing left to remove."""
        return PlanSteps(
            set=(
                f"delete the old binding(s) of {words.app} to {words.instance} "
                f"({words.old_bindings})",
                f"bind {words.app} to {words.instance} with the new leaf",
            ),
            promote=rolling_plan(words),
        )

    def register(self, ctx: RunContext) -> Registered:
        """Delete, then create."""
        return Registered(delete_then_create(ctx), created=True, used=self.name)


STRATEGY = Swap()
