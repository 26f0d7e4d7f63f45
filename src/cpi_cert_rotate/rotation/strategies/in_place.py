"""`in-place`: no binding change; the new chain and key in the env, a rolling deployment.

Relies on CPI's unpinned mode: with certificate pinning off only subject and issuer DN are
compared, and a later-issued certificate with the same DNs is accepted through the binding
that registered the earlier one. Two live bindings with the same DNs are refused as clones
(SAP KBA 3364579), which is why `auto` prefers this over overlap when pinning is off.
"""

from __future__ import annotations

from cryptography import x509

from ...errors import InputError
from ...models import RotationRequest, Strategy
from ..context import RunContext
from ..observe import Observation
from .base import Defaults, PlanSteps, PlanWords, Registered, rolling_plan

UNPINNED_WARNING = (
    "in-place relies on CPI's unpinned mode: once the new certificate is used, CPI refuses "
    "the older one, so instances not yet replaced fail until the rolling deployment ends"
)


def blockers(obs: Observation, new_leaf: x509.Certificate) -> list[str]:
    """Why `in-place` cannot work here (empty list: it can)."""
    reasons: list[str] = []
    old = obs.registered.leaf or obs.env_leaf
    if obs.live_binding is None:
        reasons.append("the app has no binding to the service instance")
    if obs.registered.pinning is True:
        reasons.append("the binding has certificate pinning on (the exact certificate must match)")
    if old is None:
        reasons.append("the registered certificate is unknown, so its DNs cannot be compared")
    else:
        if old.subject != new_leaf.subject:
            reasons.append("the new subject DN differs from the registered one")
        if old.issuer != new_leaf.issuer:
            reasons.append("the new issuer DN differs from the registered one")
        if new_leaf.not_valid_before_utc <= old.not_valid_before_utc:
            reasons.append("the new certificate is not issued later than the registered one")
    return reasons


class InPlace(Defaults):
    """Keep the binding; only the env changes."""

    name = Strategy.IN_PLACE
    resumes = False
    preference = 1
    warning = UNPINNED_WARNING

    def suits(self, obs: Observation, leaf: x509.Certificate | None) -> bool:
        """Pinning off and, once the certificate is known, nothing in the way: two live
        bindings with the same DNs would be refused as clones, so overlap cannot work."""
        return obs.registered.pinning is False and (leaf is None or not blockers(obs, leaf))

    def check(
        self, request: RotationRequest, obs: Observation, leaf: x509.Certificate | None
    ) -> None:
        """Pinning off, same DNs, issued later, and a binding to keep (known with the leaf)."""
        super().check(request, obs, leaf)
        found = blockers(obs, leaf) if leaf is not None else []
        if found:
            raise InputError(
                "strategy in-place is not possible: " + "; ".join(found),
                code="in-place-unavailable",
                fix="Use `strategy: auto`. In-place needs certificate pinning off on the "
                "binding and a renewal with the same subject and issuer DN, issued later.",
            )

    def plan(self, words: PlanWords) -> PlanSteps:
        """No binding changes."""
        return PlanSteps(
            set=("keep the binding (pinning off, same subject and issuer)",),
            promote=rolling_plan(words),
        )

    def register(self, ctx: RunContext) -> Registered:
        """Nothing to write: the live binding serves the new leaf once it is in the env."""
        self.check(ctx.request, ctx.obs, ctx.new_leaf)
        live = ctx.obs.live_binding
        assert live is not None
        return Registered(live, created=False, used=self.name)


STRATEGY = InPlace()
