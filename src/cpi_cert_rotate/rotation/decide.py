"""The decision between observe and set: not due, already current, or rotate, and how.

certbot's rule ("no-op unless due") and cert-manager's percentage trigger, with one
addition: a certificate that is already live is never registered again, because CPI
refuses a certificate that any binding or service key already uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from .. import material
from ..models import CertFacts, Outcome, RenewBefore, RotationRequest, Strategy
from .annotations import AnnotationKeys, keys_of
from .observe import Observation

ISSUER_RENEW_BEFORE = RenewBefore.parse("33%")
"""With an issuer and no `renew-before`, renew in the last third of the lifetime
(cert-manager's default): otherwise every scheduled run would issue a new certificate."""

MIN_STRATEGY_VERSION = (3, 205, 0)
"""CC API version that accepts `"strategy":"multiple"` (capi-release 1.220.0, RFC-0040)."""


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
                _parse_time(notes.get(keys.not_before)),
                _parse_time(notes.get(keys.not_after)),
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


def initial_strategy(
    request: RotationRequest, obs: Observation, new_leaf: x509.Certificate | None
) -> Strategy:
    """The strategy to try first for `auto` (`new_leaf` None: not issued yet, a dry run).

    With certificate pinning off, CPI compares only subject and issuer DN: two live
    bindings with the same DNs are refused as clones (SAP KBA 3364579), so overlap
    cannot work, and a later-issued renewal needs no binding change at all. Otherwise
    overlap where the API version allows it, else swap.
    """
    if request.strategy is not Strategy.AUTO:
        return request.strategy
    if obs.registered.pinning is False and (
        new_leaf is None or not in_place_blockers(obs, new_leaf)
    ):
        return Strategy.IN_PLACE
    if obs.supports_strategy:
        return Strategy.OVERLAP
    return Strategy.SWAP


def in_place_blockers(obs: Observation, new_leaf: x509.Certificate) -> list[str]:
    """Why `in-place` cannot work here (empty list: it can).

    In-place relies on CPI's unpinned mode: only subject and issuer DN are compared and a
    later-issued certificate is accepted without a new binding.
    """
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


def plan_lines(
    request: RotationRequest, obs: Observation, strategy: Strategy, new: CertFacts | None
) -> tuple[str, ...]:
    """The steps a rotation would take, in words, for dry runs and the report."""
    app, si = obs.app.name, obs.instance.name
    old = ", ".join(b.guid for b in obs.bindings) or "none"
    chain_var, key_var = request.chain_env_var, request.key_env_var
    verify = (
        f"call {request.verify_url or request.verify_path} with the new chain and key over mTLS"
        if request.verify_url or request.verify_path
        else "no verification call configured (give verify-path or verify-url)"
    )
    set_steps = {
        Strategy.OVERLAP: [
            f"create a second binding of {app} to {si} with the new leaf (strategy multiple)"
        ],
        Strategy.AUTO: [f"create a second binding of {app} to {si}; if refused, swap"],
        Strategy.SWAP: [
            f"delete the old binding(s) of {app} to {si} ({old})",
            f"bind {app} to {si} with the new leaf",
        ],
        Strategy.IN_PLACE: ["keep the binding (pinning off, same subject and issuer)"],
        Strategy.RESTAGE: [
            f"delete the old binding(s) ({old})",
            f"bind {app} to {si} with the new leaf",
        ],
    }[strategy]
    promote = (
        [f"set {chain_var}, then {key_var}, in two calls", f"restage {app} (downtime)"]
        if strategy is Strategy.RESTAGE
        else [
            f"set {chain_var} and {key_var} in one call",
            f"rolling deployment of {app} (max in flight {request.max_in_flight})",
        ]
    )
    finish = (
        [f"delete the old binding(s) ({old})"]
        if strategy in (Strategy.OVERLAP, Strategy.AUTO)
        else []
    )
    if new is None and request.issuer is None:
        return ("1. check only: no new certificate was given, so nothing would change",)
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
    lines = [
        obtain,
        *set_steps,
        verify,
        *promote,
        *finish,
        "write annotations (fingerprint, expiry, rotated-at, run id)",
    ]
    return tuple(f"{i}. {line}" for i, line in enumerate(lines, 1))


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
