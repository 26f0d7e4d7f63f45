"""What every strategy is: the `RotationStrategy` Protocol, and the promote most share.

A strategy owns the part of a rotation that differs between ways of registering a
certificate: its preconditions (refusals known before any write), its plan in words, the
set step (which bindings change, each with its compensation), the promote step, and which
bindings the finish step still has to remove. The engine holds one strategy and calls
these; it never asks which one it holds (the shape of certbot's `Installer`: the undo is
part of the interface).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography import x509

from ...cf import Binding
from ...errors import InputError
from ...models import RotationRequest, Strategy
from ..context import RunContext
from ..observe import Observation
from ..promote import check_max_in_flight, roll_out, set_env


@dataclass(frozen=True)
class PlanWords:
    """The names a plan line uses (no secret, no certificate)."""

    app: str
    instance: str
    old_bindings: str
    """The guids of the bindings found, comma-separated, or `none`."""
    chain_var: str
    key_var: str
    max_in_flight: int

    @classmethod
    def of(cls, request: RotationRequest, obs: Observation) -> PlanWords:
        """The words for `request` on the landscape `obs`."""
        return cls(
            app=obs.app.name,
            instance=obs.instance.name,
            old_bindings=", ".join(b.guid for b in obs.bindings) or "none",
            chain_var=request.chain_env_var,
            key_var=request.key_env_var,
            max_in_flight=request.max_in_flight,
        )


@dataclass(frozen=True)
class PlanSteps:
    """A strategy's lines of the plan: set, promote, and what finish removes."""

    set: tuple[str, ...]
    promote: tuple[str, ...]
    finish: tuple[str, ...] = ()
    """The bindings the finish step removes, in words (empty: the set step did)."""


class StrategyUnavailable(InputError):
    """The landscape refused what the strategy needs when it tried; nothing of it is left.

    `auto` then registers with the next strategy that suits (`auto.WithFallback`).
    """

    def __init__(self, message: str, refusal: Exception, *, code: str, fix: str) -> None:
        super().__init__(message, code=code, fix=fix)
        self.refusal = refusal


@dataclass(frozen=True)
class Registered:
    """The set step's result: the binding that serves the new leaf, and by which strategy."""

    binding: Binding
    """The binding the finish step keeps; every other one of the app to the instance goes."""
    created: bool
    """True when this run made (or adopted) `binding`; False for in-place."""
    used: Strategy
    """The strategy that registered it (auto's fallback and a resumed run differ)."""


class RotationStrategy(Protocol):
    """One way of registering the new leaf and bringing it to the instances."""

    name: Strategy
    resumes: bool
    """Whether a binding that already registers the new leaf is reused (resume a run that
    stopped after its set step); False where the set step creates no binding."""
    preference: int | None
    """Where `auto` tries it (lower first); None: `auto` never picks it."""
    warning: str | None
    """What using it costs, said in the report of every run that registers with it."""

    def suits(self, obs: Observation, leaf: x509.Certificate | None) -> bool:
        """Whether `auto` may pick it here, judged without a write (`leaf` None: the
        certificate is not issued yet)."""
        ...

    def check(
        self, request: RotationRequest, obs: Observation, leaf: x509.Certificate | None
    ) -> None:
        """Raise `InputError` when the strategy cannot work here; nothing is written yet.

        `leaf` is None while an issuer has not made the certificate (a dry run, or before
        issuing): what can be refused without it is refused then, before the issuer is
        asked; the check runs again once the certificate exists.
        """
        ...

    def plan(self, words: PlanWords) -> PlanSteps:
        """The strategy's steps in words, for dry runs and the report."""
        ...

    def register(self, ctx: RunContext) -> Registered:
        """The set step: make a binding serve the new leaf; every change pushes its undo."""
        ...

    def promote(self, ctx: RunContext) -> None:
        """The promote step(s): bring the new chain and key to every instance."""
        ...


class Defaults:
    """What most strategies share, to inherit and override: a strategy `auto` never picks,
    that works everywhere, costs nothing worth a warning, resumes a stopped run, and
    promotes with one PATCH and a rolling deployment. Not part of the Protocol: a
    strategy need not inherit it."""

    resumes = True
    preference: int | None = None
    warning: str | None = None

    def suits(self, obs: Observation, leaf: x509.Certificate | None) -> bool:
        """Never picked by `auto` unless a strategy says otherwise."""
        return False

    def check(
        self, request: RotationRequest, obs: Observation, leaf: x509.Certificate | None
    ) -> None:
        """What the rolling deployment needs (`check_max_in_flight`); a strategy that
        checks more calls this too."""
        check_max_in_flight(request, obs.api_version)

    def promote(self, ctx: RunContext) -> None:
        """One PATCH of chain and key, one rolling deployment (`rolling_promote`)."""
        rolling_promote(ctx)


def rolling_plan(words: PlanWords) -> tuple[str, ...]:
    """The plan lines of `rolling_promote`."""
    return (
        f"set {words.chain_var} and {words.key_var} in one call",
        f"rolling deployment of {words.app} (max in flight {words.max_in_flight})",
    )


def rolling_promote(ctx: RunContext) -> None:
    """Chain and key in one PATCH, then a rolling deployment to DEPLOYED (`promote`)."""
    with ctx.journal.step("promote", "chain and key in one call"):
        set_env(ctx)
    with ctx.journal.step("deploy") as notes:
        deployment = roll_out(ctx)
        notes.append(f"deployment {deployment.guid} {deployment.state}/{deployment.reason}")
