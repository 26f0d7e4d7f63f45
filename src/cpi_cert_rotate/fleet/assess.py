"""From what was read to what a person needs: due or not, overlap, problems.

"Due" is decided as a rotation decides it (rotation/decide.py, `live_certificate`): the
live certificate is the chain env var's leaf (what the app presents), else the validity
the last rotation wrote in the app's annotations; `RenewBefore.is_due` is the same
function. So an app the scan puts in the `due` matrix is one that `rotate` with the same
`renew-before` rotates. Where a rotation would know nothing (no env var, no annotation:
it rotates as a first rotation), the scan judges by the binding's leaf instead.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from .. import material
from ..cf import MIN_VERSION_BINDING_STRATEGY, App
from ..models import CertFacts, RenewBefore, iso, parse_iso
from ..rotation.annotations import ROTATED_AT, RUN_ID, AnnotationKeys
from ..rotation.observe import accepts
from .discover import Candidate
from .models import Finding, LastRotation, LockSeen, Overlap, Problem, ProblemCode
from .read import Kind, Reading

_LIMIT_SETTING = "max_service_credential_bindings_per_app_service_instance"


def _version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def overlap_of(
    api_version: tuple[int, ...], pinning: bool | None, succeeded_bindings: int
) -> tuple[Overlap, str]:
    """Can a second binding hold the new certificate while the old one still works?

    The API version is public (`GET /`); the operator's limit of bindings per app and
    instance (`cc.max_service_credential_bindings_per_app_service_instance`, 1 before
    capi-release 1.231.0 and 5 from it) is not, so it is known only when the app already
    holds two bindings.
    """
    needed = _version_text(MIN_VERSION_BINDING_STRATEGY)
    if tuple(api_version) < MIN_VERSION_BINDING_STRATEGY:
        return Overlap.NO, (
            f"Cloud Controller API {_version_text(api_version)} has no multiple bindings "
            f"(needs {needed}); `auto` swaps"
        )
    if pinning is False:
        return Overlap.NO, (
            "certificate pinning is off: CPI refuses two bindings with the same subject and "
            "issuer, `auto` rotates in place"
        )
    if succeeded_bindings >= 2:
        return Overlap.PROVEN, (
            f"the app holds {succeeded_bindings} bindings to the instance now, so the "
            "operator limit is at least 2"
        )
    return Overlap.POSSIBLE, (
        f"API {_version_text(api_version)} allows it; the operator limit ({_LIMIT_SETTING}) "
        "cannot be read, `auto` falls back to swap if it is 1"
    )


def last_rotation_of(app: App, keys: AnnotationKeys) -> LastRotation | None:
    """The record the last rotation wrote on the app, if any."""
    notes = app.annotations
    record = LastRotation(
        rotated_at=notes.get(keys.key(ROTATED_AT)),
        run_id=notes.get(keys.key(RUN_ID)),
        fingerprint_sha256=notes.get(keys.fingerprint),
        not_after=notes.get(keys.not_after),
    )
    return record if any(vars(record).values()) else None


def _expiry(live: CertFacts | None, warn_days: int, now: datetime) -> list[Problem]:
    if live is None:
        return []
    if live.not_after <= now:
        return [Problem(ProblemCode.EXPIRED, f"expired {live.not_after:%Y-%m-%d}: calls fail")]
    days = live.days_remaining(now)
    if days <= warn_days:
        return [
            Problem(ProblemCode.EXPIRING, f"expires in {days} days ({live.not_after:%Y-%m-%d})")
        ]
    return []


def _env(reading: Reading, chain_env_var: str) -> list[Problem]:
    """The chain env var against the binding: broken, missing, or another certificate."""
    registered, env_leaf = reading.registered, reading.env_leaf
    if reading.env_foreign:
        return []
    if reading.env_broken:
        return [
            Problem(
                ProblemCode.ENV_BROKEN,
                f"{chain_env_var} holds no certificate that parses: the app cannot call CPI",
            )
        ]
    if chain_env_var and not reading.env_set and reading.env_error is None:
        return [
            Problem(
                ProblemCode.ENV_MISSING,
                f"{chain_env_var} is not set: the app presents no client certificate",
            )
        ]
    if env_leaf is None or registered is None:
        return []
    if accepts(registered, reading.pinning, env_leaf):
        return []  # the same certificate, or pinning off and CPI takes it by its DNs
    return [
        Problem(
            ProblemCode.ENV_MISMATCH,
            f"{chain_env_var} holds another certificate than the binding (serial "
            f"{material.facts(env_leaf).serial} vs {material.facts(registered).serial}): "
            "changed by hand, or a rotation stopped half-way",
        )
    ]


def _lock(lock: LockSeen | None, now: datetime) -> list[Problem]:
    """The app's rotation lock: held now, left behind, or the name taken by another
    instance (each as `rotation.lock.acquire` would meet it)."""
    if lock is None:
        return []
    holder = lock.holder
    if holder is None:
        return [
            Problem(
                ProblemCode.LOCK_NAME_TAKEN,
                f"the user-provided instance {lock.name} ({lock.guid}) has the name of the "
                "app's rotation lock but is not one: a rotation stops before any change; "
                f"rename it (`cf rename-service {lock.name} NEW-NAME`)",
            )
        ]
    if holder.expires is None:
        return [
            Problem(
                ProblemCode.LOCK_EXPIRED,
                f"the lock {lock.name} of {holder.owner} has no readable expiry: the next "
                "rotation takes it over and finishes what is left, so the app is in the "
                "`due` matrix even when its certificate is not due",
            )
        ]
    if lock.expired(now):
        return [
            Problem(
                ProblemCode.LOCK_EXPIRED,
                f"the lock {lock.name} of {holder.owner} expired at {iso(holder.expires)}: "
                "that run ended without removing it (killed, or Cloud Controller "
                "unreachable at its end), maybe half-way; the next rotation takes it over "
                "and finishes what is left, so the app is in the `due` matrix even when its "
                "certificate is not due",
            )
        ]
    return [
        Problem(
            ProblemCode.LOCKED,
            f"a rotation holds the lock {lock.name} now ({holder.describe()}): "
            f"`cf service {lock.name}` shows it",
        )
    ]


def _stopped(candidate: Candidate) -> list[Problem]:
    """A stopped app: said, not held (models.BLOCKING says why)."""
    if not candidate.app.stopped:
        return []
    return [
        Problem(
            ProblemCode.STOPPED,
            "the app is stopped: a rotation leaves it stopped (no deployment, restage or "
            "restart, each of which would start it); it registers, tests and sets the new "
            "certificate, which the app presents when it is started",
        )
    ]


def _bindings(candidate: Candidate, reading: Reading) -> list[Problem]:
    """No live binding, several bindings, several it-rt instances."""
    found: list[Problem] = []
    if reading.kind is Kind.NO_LIVE_BINDING:
        states = ", ".join(f"{b.operation} {b.state}" for b in candidate.bindings)
        found.append(
            Problem(
                ProblemCode.NO_LIVE_BINDING,
                f"no succeeded binding to the instance ({states}): CPI knows no certificate "
                "of this app",
            )
        )
    if candidate.sibling_instances:
        others = ", ".join(candidate.sibling_instances)
        found.append(
            Problem(
                ProblemCode.SEVERAL_INSTANCES,
                f"the app is also bound to {others}: each instance needs its own chain and key "
                "env vars, so it is left out of the matrix (rotate it with its own "
                "chain-env-var/key-env-var)",
            )
        )
    if len(candidate.bindings) > 1:
        found.append(
            Problem(
                ProblemCode.SEVERAL_BINDINGS,
                f"{len(candidate.bindings)} bindings to the instance: CPI accepts the "
                "certificate of each; a rotation left one behind or is running "
                "(`cf cleanup-outdated-service-bindings`)",
            )
        )
    return found


def problems_of(
    candidate: Candidate,
    reading: Reading,
    live: CertFacts | None,
    *,
    chain_env_var: str,
    warn_days: int,
    keys: AnnotationKeys,
    now: datetime,
    lock: LockSeen | None = None,
) -> tuple[Problem, ...]:
    """Everything a person should look at, most serious first."""
    refused = [
        Problem(ProblemCode.UNREADABLE, error)
        for error in (reading.details_error, reading.env_error)
        if error
    ]
    return tuple(
        _expiry(live, warn_days, now)
        + refused
        + _lock(lock, now)
        + _stopped(candidate)
        + _bindings(candidate, reading)
        + _env(reading, chain_env_var)
    )


def _due(
    app: App,
    *,
    env: CertFacts | None,
    registered: CertFacts | None,
    renew_before: RenewBefore,
    keys: AnnotationKeys,
    now: datetime,
) -> bool | None:
    """`decide.live_certificate`'s order: env var, annotations, then (here) the binding."""
    if env is not None:
        return renew_before.is_due(env.not_before, env.not_after, now)
    not_after = parse_iso(app.annotations.get(keys.not_after))
    if app.annotations.get(keys.fingerprint) and not_after is not None:
        not_before = parse_iso(app.annotations.get(keys.not_before)) or not_after
        return renew_before.is_due(not_before, not_after, now)
    if registered is not None:
        return renew_before.is_due(registered.not_before, registered.not_after, now)
    return None


def _own_env(candidate: Candidate, reading: Reading) -> Reading:
    """The reading without the env var's leaf when it belongs to a sibling instance."""
    env_leaf, registered = reading.env_leaf, reading.registered
    if not candidate.sibling_instances or env_leaf is None or registered is None:
        return reading
    if material.fingerprint(env_leaf) == material.fingerprint(registered):
        return reading
    return replace(reading, env_leaf=None, env_foreign=True)


def assess(
    candidate: Candidate,
    reading: Reading,
    *,
    api_version: tuple[int, ...],
    renew_before: RenewBefore,
    chain_env_var: str,
    warn_days: int,
    keys: AnnotationKeys,
    now: datetime,
    lock: LockSeen | None = None,
) -> Finding:
    """The finding for one candidate (`lock`: its app's rotation lock, if any).

    An app bound to several it-rt instances holds one chain env var per instance; when
    the chain env var holds another instance's certificate, this row is judged by its
    own binding (the `several-instances` problem says why), not by that env var.
    """
    reading = _own_env(candidate, reading)
    registered = material.facts(reading.registered) if reading.registered else None
    env = material.facts(reading.env_leaf) if reading.env_leaf else None
    live = env or registered
    due = _due(
        candidate.app,
        env=env,
        registered=registered,
        renew_before=renew_before,
        keys=keys,
        now=now,
    )
    succeeded = sum(1 for b in candidate.bindings if b.succeeded)
    overlap, note = overlap_of(api_version, reading.pinning, succeeded)
    live_binding = candidate.live
    return Finding(
        org=candidate.org,
        space=candidate.space,
        app=candidate.app.name,
        app_guid=candidate.app.guid,
        instance=candidate.instance.name,
        instance_guid=candidate.instance.guid,
        binding_guids=tuple(b.guid for b in candidate.bindings),
        live_binding_guid=live_binding.guid if live_binding else None,
        registered=registered,
        env=env,
        pinning=reading.pinning,
        overlap=overlap,
        overlap_note=note,
        last_rotation=last_rotation_of(candidate.app, keys),
        due=due,
        problems=problems_of(
            candidate,
            reading,
            live,
            chain_env_var=chain_env_var,
            warn_days=warn_days,
            keys=keys,
            now=now,
            lock=lock,
        ),
        lock=lock,
    )
