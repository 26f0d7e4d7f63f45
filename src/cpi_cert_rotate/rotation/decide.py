"""Step (3), decide: not due, already current, or rotate; and the plan of a rotation in words.

certbot's rule ("no-op unless due") and cert-manager's percentage trigger, with one
addition: a certificate that is already live is never registered again, because CPI
refuses a certificate that any binding or service key already uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .. import material
from ..models import CertFacts, Outcome, RenewBefore, RotationRequest, parse_iso
from .annotations import AnnotationKeys, keys_of
from .observe import Observation
from .promote import stopped_plan
from .strategies import PlanWords, RotationStrategy

ISSUER_RENEW_BEFORE = RenewBefore.parse("33%")
"""With an issuer and no `renew-before`, renew in the last third of the lifetime
(cert-manager's default): otherwise every scheduled run would issue a new certificate."""


@dataclass(frozen=True)
class LiveCert:
    """The certificate the app uses now, as far as it can be known."""

    fingerprint: str
    not_before: datetime | None
    not_after: datetime | None
    facts: CertFacts | None
    source: str
    """`env` (the chain env var's leaf) or `annotation` (written by an earlier rotation)."""


@dataclass(frozen=True)
class Decision:
    """`outcome` is None when a rotation must run; otherwise the no-op outcome and why."""

    outcome: Outcome | None
    why: str
    live: LiveCert | None
    warnings: tuple[str, ...] = ()


def live_certificate(
    obs: Observation, keys: AnnotationKeys
) -> tuple[LiveCert | None, tuple[str, ...]]:
    """The live certificate: the chain env var's leaf, else the app's annotations.

    The env var is what every new instance will present, so it wins; the annotations
    (written by the previous rotation) only fill in when the env var is missing or
    unreadable. A disagreement between the two is reported, not resolved silently.
    """
    notes = obs.app.annotations
    annotated = notes.get(keys.fingerprint)
    if obs.env_leaf is not None:
        facts = material.facts(obs.env_leaf)
        warnings: tuple[str, ...] = ()
        if annotated and annotated != facts.fingerprint_sha256:
            warnings = (
                "the app's annotation names another certificate than its chain env var "
                "(changed by hand?); the env var is taken as the live certificate",
            )
        live = LiveCert(facts.fingerprint_sha256, facts.not_before, facts.not_after, facts, "env")
        return live, warnings
    if annotated:
        return (
            LiveCert(
                annotated,
                parse_iso(notes.get(keys.not_before)),
                parse_iso(notes.get(keys.not_after)),
                None,
                "annotation",
            ),
            (),
        )
    return None, ()


def decide(
    request: RotationRequest, obs: Observation, new: CertFacts | None, now: datetime
) -> Decision:
    """Decide whether to rotate: same certificate -> no-op; not due -> no-op; else rotate.

    `new` is None when an issuer will make the certificate: then only "due" is decided.
    """
    live, warnings = live_certificate(obs, keys_of(request))
    if live is None:
        return Decision(
            None, "no live certificate found on the app: first rotation", None, warnings
        )
    if (
        new is not None
        and live.fingerprint == new.fingerprint_sha256
        and _registered(obs, new.fingerprint_sha256)
    ):
        return Decision(
            Outcome.ALREADY_CURRENT,
            f"certificate {new.fingerprint_sha256[:16]}... is already live",
            live,
            warnings,
        )
    renew_before = request.renew_before
    if renew_before is None and request.issuer is not None:
        renew_before = ISSUER_RENEW_BEFORE
    if renew_before is not None and not request.force:
        if live.not_after is None:
            warnings += ("the live certificate's expiry is unknown; rotating",)
        else:
            not_before = live.not_before or live.not_after
            if not renew_before.is_due(not_before, live.not_after, now):
                days = int((live.not_after - now).total_seconds() // 86400)
                return Decision(
                    Outcome.NOT_DUE,
                    f"{days} days remain, renew-before is {renew_before}",
                    live,
                    warnings,
                )
    why = "forced" if request.force else "due"
    return Decision(None, why, live, warnings)


def _registered(obs: Observation, fingerprint: str) -> bool:
    """Whether a binding lets CPI accept the live certificate (or nothing says otherwise).

    Any binding counts, not only the newest: a stray binding a lost create left must not
    turn "already live" into a second registration of the same certificate, which CPI
    refuses. With pinning off, a binding of an earlier certificate with the same DNs
    serves a later one (`Observation.serves`).
    """
    leaf = obs.env_leaf
    if leaf is not None and material.fingerprint(leaf) == fingerprint and obs.bindings:
        return any(obs.serves(binding, leaf) is not False for binding in obs.bindings)
    registered = obs.registered.leaf
    return registered is None or material.fingerprint(registered) == fingerprint


def plan_lines(
    request: RotationRequest,
    obs: Observation,
    strategy: RotationStrategy | None,
    new: CertFacts | None,
) -> tuple[str, ...]:
    """The steps a rotation would take, in words, for dry runs and the report.

    `strategy` None: a check, no new certificate given (nothing would change). A stopped
    app's promote lines are `promote.stopped_plan`, whatever the strategy.
    """
    if strategy is None:
        return ("1. check only: no new certificate was given, so nothing would change",)
    verify = (
        f"call {request.verify_url or request.verify_path} with the new chain and key over mTLS"
        if request.verify_url or request.verify_path
        else "no verification call configured (give verify-path or verify-url)"
    )
    if new is not None:
        obtain = (
            f"new certificate {new.fingerprint_sha256[:16]}... (expires {new.not_after:%Y-%m-%d})"
        )
    else:
        source = request.issuer.describe() if request.issuer else "the issuer"
        obtain = (
            f"generate a key here and have {source} sign a CSR for it "
            "(subject copied from the live certificate)"
        )
    steps = strategy.plan(PlanWords.of(request, obs))
    promote = (
        stopped_plan(request.chain_env_var, request.key_env_var)
        if obs.app.stopped
        else steps.promote
    )
    lines = [
        obtain,
        *steps.set,
        verify,
        *promote,
        *steps.finish,
        "write annotations (fingerprint, expiry, rotated-at, run id)",
    ]
    return tuple(f"{i}. {line}" for i, line in enumerate(lines, 1))
