"""How the new leaf is registered and promoted: one module per strategy, one Protocol.

`base.RotationStrategy` is what a strategy is; `registry.registry()` finds every module
here that defines `STRATEGY`; `auto.select` picks one for a request. The engine holds the
strategy it was given and never branches on which one it is.
"""

from __future__ import annotations

from ... import material
from ...cf import Binding
from ...models import Strategy
from ..context import RunContext
from .auto import select
from .base import PlanSteps, PlanWords, Registered, RotationStrategy, StrategyUnavailable
from .registry import registry

__all__ = [
    "PlanSteps",
    "PlanWords",
    "Registered",
    "RotationStrategy",
    "StrategyUnavailable",
    "register_new_leaf",
    "registry",
    "select",
]


def register_new_leaf(strategy: RotationStrategy, ctx: RunContext) -> Registered:
    """The set step by `strategy`, unless a binding already registers the new leaf.

    CPI accepts a certificate in one binding or service key only, so registering it again
    would fail; a run that stopped after its set step is finished instead, with the
    binding it made (as overlap: the older bindings are removed last).
    """
    resumed = _already_registered(ctx)
    if resumed is not None and strategy.resumes:
        ctx.warnings.append(
            f"binding {resumed.guid} already registers the new certificate (an earlier run "
            "stopped after registering it); it is reused and the older bindings are removed last"
        )
        return Registered(resumed, created=True, used=Strategy.OVERLAP)
    if strategy.warning and not ctx.obs.app.stopped:  # its cost is to running instances
        ctx.warnings.append(strategy.warning)
    return strategy.register(ctx)


def _already_registered(ctx: RunContext) -> Binding | None:
    """The live binding, if it already registers the new leaf."""
    live, registered = ctx.obs.live_binding, ctx.obs.registered.leaf
    if live is None or registered is None:
        return None
    if material.fingerprint(registered) != ctx.new_facts.fingerprint_sha256:
        return None
    return live
