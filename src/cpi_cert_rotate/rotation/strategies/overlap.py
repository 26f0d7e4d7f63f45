"""`overlap`: the new binding beside the old one; the old one goes last, in the finish step.

Needs binding strategy `multiple` (Cloud Controller API 3.205.0 or later) and an operator
limit of at least two bindings of one app to one instance. No moment exists in which a
running instance holds a certificate CPI does not know.
"""

from __future__ import annotations

from cryptography import x509

from ...cf import Binding
from ...errors import InputError
from ...models import RotationRequest, Strategy
from ..context import RunContext
from ..observe import Observation
from ..register import OverlapRefused, create_binding
from .base import (
    Defaults,
    PlanSteps,
    PlanWords,
    Registered,
    StrategyUnavailable,
    rolling_plan,
)

CC_TOO_OLD_FIX = (
    "Use `strategy: auto` (falls back to swap) or ask the platform team for a Cloud "
    "Controller of 3.205.0 or later."
)


class Overlap(Defaults):
    """A second binding with the new leaf (`"strategy":"multiple"`), the old one removed last."""

    name = Strategy.OVERLAP
    preference = 2

    def suits(self, obs: Observation, leaf: x509.Certificate | None) -> bool:
        """Where the Cloud Controller knows `multiple` (the binding limit shows on create)."""
        return obs.supports_strategy

    def check(
        self, request: RotationRequest, obs: Observation, leaf: x509.Certificate | None
    ) -> None:
        """A Cloud Controller too old for `multiple` is known from its version alone."""
        super().check(request, obs, leaf)
        if not obs.supports_strategy:
            version = ".".join(map(str, obs.api_version))
            raise InputError(
                f"strategy overlap is not possible here: the Cloud Controller API is {version}; "
                "binding strategy `multiple` needs 3.205.0 or later",
                code="overlap-unavailable",
                fix=CC_TOO_OLD_FIX,
            )

    def plan(self, words: PlanWords) -> PlanSteps:
        """Create beside, promote, then remove the old binding(s)."""
        return PlanSteps(
            set=(
                f"create a second binding of {words.app} to {words.instance} with the new leaf "
                "(strategy multiple)",
            ),
            promote=rolling_plan(words),
            finish=(f"delete the old binding(s) ({words.old_bindings})",),
        )

    def register(self, ctx: RunContext) -> Registered:
        """Raises `StrategyUnavailable` (nothing changed) when a second binding is refused."""
        try:
            return Registered(self._create(ctx), created=True, used=self.name)
        except OverlapRefused as refusal:
            raise StrategyUnavailable(
                f"strategy overlap is not possible here: {refusal}",
                refusal,
                code="overlap-unavailable",
                fix="Use `strategy: auto` (falls back to swap) or ask the platform team for "
                "`cc.max_service_credential_bindings_per_app_service_instance` >= 2.",
            ) from refusal

    @staticmethod
    def _create(ctx: RunContext) -> Binding:
        if not ctx.obs.supports_strategy:
            raise OverlapRefused(
                f"the Cloud Controller API is {'.'.join(map(str, ctx.obs.api_version))}; "
                "binding strategy `multiple` needs 3.205.0 or later"
            )
        return create_binding(ctx, strategy="multiple")


STRATEGY = Overlap()
