"""The scan's typed values: what to look at (`ScanRequest`), what was found (`Finding`),
and the whole answer (`ScanReport`). None holds a secret; every one is safe to print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..errors import ExitCode, InputError
from ..models import CertFacts, CfAuth, RenewBefore, iso
from ..request import rules
from ..request.fields import SCAN
from ..rotation.lock import LockInfo

# The scan's defaults and limits are its input fields' (request/fields.py, request/rules.py).
DEFAULT_OFFERING = SCAN.defaults["offering"]
"""The Process Integration Runtime's name in the CF marketplace."""
DEFAULT_PLAN = SCAN.defaults["plan"]
"""The it-rt plan for iFlow senders (the `api` plan is for OData and has no iFlow URL)."""
DEFAULT_RENEW_BEFORE = RenewBefore.parse(SCAN.defaults["renew-before"])
DEFAULT_ENVIRONMENT = SCAN.defaults["environment"]
"""One GitHub environment per app, as in examples/fleet-rotation.yml."""
MAX_PARALLEL = rules.SCAN_PARALLEL_MAX
MATRIX_LIMIT = rules.MATRIX_MAX
"""The most urgent apps go first, the rest wait for the next run."""


class Overlap(StrEnum):
    """Whether the `overlap` strategy (a second binding) can work for this app."""

    PROVEN = "proven"
    """The app holds two bindings to the instance now: the operator limit is >= 2."""
    POSSIBLE = "possible"
    """The API version allows it; the operator's limit cannot be read by a user."""
    NO = "no"
    """The API is too old, or certificate pinning is off (`auto` rotates in place)."""


class ProblemCode(StrEnum):
    """Stable names of what can be wrong with one app's certificate."""

    EXPIRED = "expired"
    EXPIRING = "expiring"
    ENV_MISMATCH = "env-mismatch"
    ENV_MISSING = "env-missing"
    ENV_BROKEN = "env-broken"
    SEVERAL_BINDINGS = "several-bindings"
    SEVERAL_INSTANCES = "several-instances"
    NO_LIVE_BINDING = "no-live-binding"
    UNREADABLE = "unreadable"
    LOCKED = "locked"
    LOCK_EXPIRED = "lock-expired"
    LOCK_NAME_TAKEN = "lock-name-taken"
    STOPPED = "stopped"
    ENVIRONMENT_CLASH = "environment-clash"
    ENVIRONMENT_TOO_LONG = "environment-too-long"


BLOCKING = frozenset(
    {
        ProblemCode.UNREADABLE,
        ProblemCode.LOCKED,
        ProblemCode.LOCK_NAME_TAKEN,
        ProblemCode.SEVERAL_INSTANCES,
        ProblemCode.ENVIRONMENT_CLASH,
        ProblemCode.ENVIRONMENT_TOO_LONG,
    }
)
"""Problems that keep a due app out of the `due` matrix: a rotation with the default
inputs could not be trusted to do the right thing (it must be looked at first), or would
stop before any change. A live lock (`locked`) means a rotation of the app runs now: a
matrix job would wait for it in its concurrency group, or, when the holder is another
workflow or a shell, stop with `locked` (exit 1); the next scan sees the app again. An
expired lock is not held: the next rotation takes it over (rotation/lock.py). A stopped
app is not held: a rotation leaves it stopped (no deployment, which would start it,
cloud_controller_ng app/actions/deployment_create.rb; rotation/promote.py
`promote_stopped`), and a standby's certificate must not expire while it waits."""


@dataclass(frozen=True)
class Problem:
    """One thing a person should know about an app's certificate."""

    code: ProblemCode
    message: str


@dataclass(frozen=True)
class LockSeen:
    """A user-provided instance with the name of the app's rotation lock
    (`rotation.lock.lock_name`) in the app's space, as the scan listed it."""

    name: str
    guid: str
    holder: LockInfo | None
    """What its tags say (`LockInfo.from_tags`); None: it is not a rotation's lock."""

    def expired(self, now: datetime) -> bool:
        """Past its expiry, or without a readable one: a rotation takes it over."""
        return self.holder is not None and (
            self.holder.expires is None or self.holder.expires <= now
        )

    def to_json(self, now: datetime) -> dict[str, Any]:
        """JSON form (`owner`, `expires` and `expired` are null for a name clash)."""
        holder = self.holder
        return {
            "name": self.name,
            "guid": self.guid,
            "owner": holder.owner if holder else None,
            "expires": iso(holder.expires) if holder and holder.expires else None,
            "expired": self.expired(now) if holder else None,
        }


@dataclass(frozen=True)
class Place:
    """An org, or one space of it, to scan (names as `cf target` takes them)."""

    org: str
    space: str | None = None

    @classmethod
    def parse(cls, text: str, *, label: str = "scope") -> Place:
        """`ORG` or `ORG/SPACE` (`request.rules.place`)."""
        return cls(*rules.place(text, label))

    def __str__(self) -> str:
        return self.org if self.space is None else f"{self.org}/{self.space}"


@dataclass(frozen=True)
class ScanRequest:
    """Everything one scan needs, already checked."""

    api_url: str
    auth: CfAuth
    places: tuple[Place, ...] = ()
    """Where to look; empty: every space the user can see."""
    offering: str = DEFAULT_OFFERING
    plan: str = DEFAULT_PLAN
    chain_env_var: str = SCAN.defaults["chain-env-var"]
    renew_before: RenewBefore = DEFAULT_RENEW_BEFORE
    warn_days: int = int(SCAN.defaults["warn-days"])
    """A certificate with this many days or fewer left gets the `expiring` problem."""
    annotation_prefix: str | None = None
    """Prefix of the rotation annotations (None: `rotation.annotations.DEFAULT_PREFIX`)."""
    environment: str = DEFAULT_ENVIRONMENT
    """Template of each due app's GitHub environment: {org}, {space}, {app}, {instance}."""
    parallel: int = int(SCAN.defaults["parallel"])
    """Per-app reads (credentials, env vars) in flight at once."""
    timeout_s: float = float(SCAN.defaults["timeout"])
    fail_within_days: int | None = None
    """Exit 1 when a certificate expires within this many days (or its expiry is unknown)."""
    matrix_limit: int = int(SCAN.defaults["matrix-limit"])

    def __post_init__(self) -> None:
        checks = (
            (1 <= self.parallel <= MAX_PARALLEL, f"parallel must be 1..{MAX_PARALLEL}"),
            (self.timeout_s > 0, "timeout must be more than 0 seconds"),
            (self.warn_days >= 0, "warn-days must be 0 or more"),
            (1 <= self.matrix_limit <= MATRIX_LIMIT, f"matrix-limit must be 1..{MATRIX_LIMIT}"),
            (bool(self.offering and self.plan), "offering and plan must not be empty"),
        )
        for ok, message in checks:
            if not ok:
                raise InputError(message, code="invalid-input")


@dataclass(frozen=True)
class LastRotation:
    """What the last rotation wrote on the app (its annotations)."""

    rotated_at: str | None
    run_id: str | None
    fingerprint_sha256: str | None
    not_after: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "rotated_at": self.rotated_at,
            "run_id": self.run_id,
            "fingerprint_sha256": self.fingerprint_sha256,
            "not_after": self.not_after,
        }


@dataclass(frozen=True)
class Finding:
    """One app bound to one it-rt instance with an external certificate, as found."""

    org: str
    space: str
    app: str
    app_guid: str
    instance: str
    instance_guid: str
    binding_guids: tuple[str, ...]
    """Every `type=app` binding of the app to the instance, oldest first."""
    live_binding_guid: str | None
    """The newest succeeded one: what new containers get in VCAP_SERVICES."""
    registered: CertFacts | None
    """The leaf in the live binding's credentials: the certificate CPI accepts."""
    env: CertFacts | None
    """The leaf of the app's chain env var: the certificate the app presents."""
    pinning: bool | None
    overlap: Overlap
    overlap_note: str
    last_rotation: LastRotation | None
    due: bool | None
    """Due under renew-before; None when no certificate could be read."""
    problems: tuple[Problem, ...] = ()
    environment: str = ""
    """The GitHub environment the `due` matrix names for this app."""
    lock: LockSeen | None = None
    """The app's rotation lock, when one exists."""

    @property
    def live(self) -> CertFacts | None:
        """The certificate that decides "due", as the rotation decides it: the env var's
        leaf (what the app presents), else the binding's."""
        return self.env or self.registered

    @property
    def source(self) -> str | None:
        """Where `live` comes from: `env` or `binding`."""
        if self.env is not None:
            return "env"
        return "binding" if self.registered is not None else None

    @property
    def blocked_by(self) -> tuple[Problem, ...]:
        """The problems that keep this app out of the `due` matrix."""
        return tuple(p for p in self.problems if p.code in BLOCKING)

    @property
    def unfinished(self) -> bool:
        """A run ended without removing the app's lock (`lock-expired`: killed, or Cloud
        Controller unreachable at its end), so it may have stopped half-way: the new
        certificate in the env var but not on the instances, the old binding still there.
        Only a rotation of the app finishes that (rotation/lock.py takes the lock over,
        rotation/aftermath.py finishes), whether its certificate is due or not."""
        return self.has(ProblemCode.LOCK_EXPIRED)

    @property
    def in_matrix(self) -> bool:
        """Due, or `unfinished`, and nothing stops a rotation with the default inputs."""
        return (bool(self.due) or self.unfinished) and not self.blocked_by

    def has(self, code: ProblemCode) -> bool:
        """True when the finding has a problem with this code."""
        return any(p.code is code for p in self.problems)

    def to_json(self, now: datetime) -> dict[str, Any]:
        """JSON-safe dict, times as ISO 8601 UTC."""
        live = self.live
        return {
            "org": self.org,
            "space": self.space,
            "app": self.app,
            "app_guid": self.app_guid,
            "service_instance": self.instance,
            "service_instance_guid": self.instance_guid,
            "binding_guids": list(self.binding_guids),
            "live_binding_guid": self.live_binding_guid,
            "subject": live.subject if live else None,
            "issuer": live.issuer if live else None,
            "not_after": iso(live.not_after) if live else None,
            "days_left": live.days_remaining(now) if live else None,
            "source": self.source,
            "registered": self.registered.to_json(now) if self.registered else None,
            "env": self.env.to_json(now) if self.env else None,
            "pinning": self.pinning,
            "overlap": str(self.overlap),
            "overlap_note": self.overlap_note,
            "last_rotation": self.last_rotation.to_json() if self.last_rotation else None,
            "due": self.due,
            "in_matrix": self.in_matrix,
            "environment": self.environment,
            "lock": self.lock.to_json(now) if self.lock else None,
            "problems": [{"code": str(p.code), "message": p.message} for p in self.problems],
        }


@dataclass(frozen=True)
class ScanReport:
    """The whole scan: every certificate-bound app found, and the plan for GitHub."""

    api_url: str
    api_version: str
    scanned_at: datetime
    duration_s: float
    renew_before: RenewBefore
    findings: tuple[Finding, ...]
    skipped: dict[str, int] = field(default_factory=dict)
    """App and instance pairs listed but not reported, by reason (`no-certificate`: a
    client secret binding, `generated`: SAP made the key, `outside-scope`, ...)."""
    matrix: tuple[dict[str, str], ...] = ()
    """The `include` entries of the `due` matrix, most urgent first, capped."""
    left_out: tuple[Finding, ...] = ()
    """Due apps beyond the matrix limit: the next run takes them."""
    warnings: tuple[str, ...] = ()
    fail_within_days: int | None = None

    @property
    def due(self) -> tuple[Finding, ...]:
        """Every finding that is due (in the matrix or not)."""
        return tuple(f for f in self.findings if f.due)

    @property
    def held(self) -> tuple[Finding, ...]:
        """Due findings the matrix does not name: a blocking problem, or beyond its limit."""
        named = {(e["org"], e["space"], e["app"], e["instance"]) for e in self.matrix}
        return tuple(f for f in self.due if (f.org, f.space, f.app, f.instance) not in named)

    @property
    def expiring_within_limit(self) -> tuple[Finding, ...]:
        """Findings that fail `fail_within_days` (expiry within it, or unknown)."""
        limit = self.fail_within_days
        if limit is None:
            return ()
        return tuple(
            f
            for f in self.findings
            if f.live is None or f.live.days_remaining(self.scanned_at) <= limit
        )

    @property
    def exit_code(self) -> ExitCode:
        """0, or 1 when `fail_within_days` is given and some certificate is within it."""
        return ExitCode.FAILED if self.expiring_within_limit else ExitCode.OK

    def matrix_json(self) -> dict[str, list[dict[str, str]]]:
        """The value of the `due` output: `strategy.matrix: ${{ fromJSON(...) }}`."""
        return {"include": [dict(entry) for entry in self.matrix]}

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict for `--json` and tests."""
        now = self.scanned_at
        return {
            "api_url": self.api_url,
            "api_version": self.api_version,
            "scanned_at": iso(now),
            "duration_s": round(self.duration_s, 3),
            "renew_before": str(self.renew_before),
            "apps": [f.to_json(now) for f in self.findings],
            "due_count": len(self.due),
            "matrix_count": len(self.matrix),
            "left_out": [f"{f.org}/{f.space}/{f.app}" for f in self.left_out],
            "skipped": dict(self.skipped),
            "warnings": list(self.warnings),
            "due": self.matrix_json(),
            "exit_code": int(self.exit_code),
        }
