"""`auto`: not a way of registering but a choice among the registry's strategies.

It takes the first strategy, by `preference`, that `suits` the landscape as observed (no
write needed to know it): in-place where pinning is off, else overlap where the Cloud
Controller knows `multiple`, else swap. What shows only when trying (an operator limit of
one binding) makes the run fall back to the next that suits, with a warning.
"""

from __future__ import annotations

from cryptography import x509

from ...models import RotationRequest, Strategy
from ..context import RunContext
from ..observe import Observation
from .base import PlanSteps, PlanWords, Registered, RotationStrategy, StrategyUnavailable
from .registry import by_preference, registry


class WithFallback:
    """`first`, and when it reports itself unavailable while registering, the next one."""

    def __init__(self, first: RotationStrategy, rest: tuple[RotationStrategy, ...]) -> None:
        self.first, self.rest = first, rest
        self.name = first.name
        self.resumes = first.resumes
        self.preference = first.preference
        self.warning = first.warning

    def suits(self, obs: Observation, leaf: x509.Certificate | None) -> bool:
        """As `first`."""
        return self.first.suits(obs, leaf)

    def check(
        self, request: RotationRequest, obs: Observation, leaf: x509.Certificate | None
    ) -> None:
        """As `first`."""
        self.first.check(request, obs, leaf)

    def plan(self, words: PlanWords) -> PlanSteps:
        """`first`'s plan: the fallback is the exception."""
        return self.first.plan(words)

    def register(self, ctx: RunContext) -> Registered:
        """`first`; on `StrategyUnavailable`, the next (its cost said in the warning)."""
        try:
            return self.first.register(ctx)
        except StrategyUnavailable as unavailable:
            then = self.rest[0]
            cost = f": {then.warning}" if then.warning else ""
            ctx.warnings.append(
                f"{self.first.name} not available ({unavailable.refusal}); used {then.name}{cost}"
            )
            if len(self.rest) > 1:
                return WithFallback(then, self.rest[1:]).register(ctx)
            return then.register(ctx)

    def promote(self, ctx: RunContext) -> None:
        """As `first` (the engine promotes by the strategy that registered)."""
        self.first.promote(ctx)


def select(
    request: RotationRequest, obs: Observation, leaf: x509.Certificate | None
) -> RotationStrategy:
    """The strategy for `request`: the one asked for, or for `auto` the best that suits.

    `leaf` is None while an issuer has not made the certificate yet (a dry run, or the
    decision before issuing); the choice is made again once it exists.
    """
    if request.strategy is not Strategy.AUTO:
        return registry()[request.strategy]
    suitable = tuple(s for s in by_preference() if s.suits(obs, leaf))
    first, rest = suitable[0], suitable[1:]
    return WithFallback(first, rest) if rest else first
