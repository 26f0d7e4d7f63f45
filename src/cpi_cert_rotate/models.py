"""Typed values that cross layer boundaries: the request in, the report out.

Data flows one way: an adapter (`cli`, `action`) builds a `RotationRequest`, the engine
(`rotation`) returns a `Report`, the adapter renders it. None of these types knows about
HTTP or GitHub. Secrets (`CfAuth` passwords, the private key) are excluded from `repr`
so that a stray log of a request cannot leak them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NewType

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from .errors import ExitCode, InputError
from .request.fields import DEFAULT_WARN_DAYS, DEFAULTS, VERIFY_TIMEOUT_S
from .request.rules import DAYS_MAX

if TYPE_CHECKING:
    from .issuers import Issuer

Guid = NewType("Guid", str)
"""A Cloud Foundry resource GUID."""

Fingerprint = NewType("Fingerprint", str)
"""Lowercase hex SHA-256 of a certificate's DER encoding, no colons."""

PrivateKey = CertificateIssuerPrivateKeyTypes


class Strategy(StrEnum):
    """How the new leaf is registered with Cloud Integration (docs/rotation.md)."""

    AUTO = "auto"
    OVERLAP = "overlap"
    SWAP = "swap"
    IN_PLACE = "in-place"
    RESTAGE = "restage"


class Outcome(StrEnum):
    """How a run ended; `Report.exit_code` and the `reason` output derive from it."""

    ROTATED = "rotated"
    NOT_DUE = "not-due"
    ALREADY_CURRENT = "already-current"
    DRY_RUN = "dry-run"
    FAILED = "failed"
    """Failed before anything changed in Cloud Foundry."""
    ROLLED_BACK = "rolled-back"
    """Failed after a change; every change was undone."""
    ROLLBACK_INCOMPLETE = "rollback-incomplete"
    """Failed after a change and the rollback did not finish; a person must act."""
    CLEANUP_INCOMPLETE = "cleanup-incomplete"
    """The new certificate is live, but an old binding could not be removed, so the old
    certificate is still accepted by Cloud Integration; a person must delete it."""
    INVALID_INPUT = "invalid-input"


_EXIT_CODES = {
    Outcome.ROTATED: ExitCode.OK,
    Outcome.NOT_DUE: ExitCode.OK,
    Outcome.ALREADY_CURRENT: ExitCode.OK,
    Outcome.DRY_RUN: ExitCode.OK,
    Outcome.FAILED: ExitCode.FAILED,
    Outcome.ROLLED_BACK: ExitCode.FAILED,
    Outcome.ROLLBACK_INCOMPLETE: ExitCode.ROLLBACK_INCOMPLETE,
    Outcome.CLEANUP_INCOMPLETE: ExitCode.ROLLBACK_INCOMPLETE,
    Outcome.INVALID_INPUT: ExitCode.BAD_INPUT,
}

_RENEW_BEFORE = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>d|%)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RenewBefore:
    """When a certificate is due: a number of days before expiry, or a share of lifetime.

    `30d` means "rotate when 30 days or fewer remain"; `33%` means "rotate when a third
    or less of the live certificate's lifetime remains" (cert-manager's renewBeforePercentage).
    """

    days: float | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str, *, label: str = "renew-before") -> RenewBefore:
        """Parse `30d` or `33%` (a bare number means days); `label` names the input."""
        stripped = text.strip()
        if stripped.replace(".", "", 1).isdigit():
            stripped += "d"
        match = _RENEW_BEFORE.match(stripped)
        if not match:
            raise InputError(
                f"{label} {text[:40]!r} is not understood",
                code="bad-renew-before",
                fix="Give a number of days (`30d`) or a share of the lifetime (`33%`).",
            )
        number = float(match["num"])
        if match["unit"] == "%":
            if not 0 < number < 100:
                raise InputError(
                    f"{label} {text!r} must be a share between 0% and 100%",
                    code="bad-renew-before",
                    fix="Use for example `33%` to rotate in the last third of the lifetime.",
                )
            return cls(percent=number)
        if not 0 < number <= DAYS_MAX:
            raise InputError(
                f"{label} {text!r} must be more than 0 and at most {DAYS_MAX} days",
                code="bad-renew-before",
                fix="Use for example `30d`; to rotate now whatever the expiry, force the run.",
            )
        return cls(days=number)

    def is_due(self, not_before: datetime, not_after: datetime, now: datetime) -> bool:
        """True when the live certificate should be replaced at `now`."""
        remaining = (not_after - now).total_seconds()
        if self.percent is not None:
            lifetime = (not_after - not_before).total_seconds()
            return remaining <= lifetime * self.percent / 100
        assert self.days is not None
        return remaining <= self.days * 86400

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else f"{self.days:g}d"


@dataclass(frozen=True)
class CfTarget:
    """Where the app lives: API endpoint, org, space, app and it-rt service instance."""

    api_url: str
    org: str
    space: str
    app: str
    service_instance: str


class OidcGrant(StrEnum):
    """How an OIDC token logs in to Cloud Foundry (the cf CLI's `cf auth --assertion`)."""

    USER = "user"
    """UAA's JWT bearer grant: the token names a user of an origin (`cf auth --assertion`)."""
    CLIENT = "client"
    """Client credentials with the token as client assertion instead of a secret
    (`cf auth CLIENT_ID --client-credentials --assertion`)."""


@dataclass(frozen=True)
class CfAssertion:
    """A login with a short-lived OIDC token instead of a password or client secret.

    `fetch` returns a fresh token each call (the job's GitHub OIDC token, or one the user
    exported); it is called only when UAA is asked for a token, again for every new login,
    so an expiring Cloud Foundry token is replaced without a stored secret. With
    `exchange_url`, the token is first exchanged there (SAP Cloud Identity Services' JWT
    bearer grant, client `exchange_client_id`) for the `id_token` UAA trusts. `on_secret`
    receives every token derived on the way (the exchanged `id_token`) before its use.
    """

    grant: OidcGrant
    fetch: Callable[[], str] = field(repr=False, compare=False)
    exchange_url: str | None = None
    exchange_client_id: str | None = None
    source: str = "the OIDC token"
    """What the token is, for messages: "the job's GitHub OIDC token (audience ...)"."""
    on_secret: Callable[[str], None] = field(default=lambda _token: None, repr=False, compare=False)


@dataclass(frozen=True)
class CfAuth:
    """How to authenticate: a (technical) user with password, a UAA client with its
    secret, or an OIDC token (`assertion`, with `client_id` as the client it logs in as
    or authenticates with).

    `ca_pem` is a private CA for the CF API (and the iFlow endpoint); verification is
    never turned off.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    origin: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    ca_pem: str | None = None
    assertion: CfAssertion | None = None


@dataclass(frozen=True)
class CertFacts:
    """Public facts about one certificate; safe to print, output and summarise."""

    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: Fingerprint
    key_type: str
    key_size: int

    def days_remaining(self, now: datetime) -> int:
        """Whole days until `not_after` (negative once expired)."""
        return int((self.not_after - now).total_seconds() // 86400)

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        """JSON-safe dict with ISO 8601 UTC times (and days remaining when `now` given)."""
        data = asdict(self)
        data["not_before"] = iso(self.not_before)
        data["not_after"] = iso(self.not_after)
        if now is not None:
            data["days_remaining"] = self.days_remaining(now)
        return data


@dataclass(frozen=True)
class RotationRequest:
    """Everything one rotation needs, already parsed; the key is held in memory only.

    `request.build` makes it from an adapter's inputs; the defaults here are that
    module's (`request.fields`), for callers that build a request directly.

    The new certificate is either given (`chain` and `key`) or comes from `issuer`, which
    the engine asks only once it has decided that a rotation is due. A dry run may have
    neither: it then only checks the live certificate (no key needed to read an expiry).
    """

    target: CfTarget
    auth: CfAuth
    chain: tuple[x509.Certificate, ...] = ()
    key: PrivateKey | None = field(default=None, repr=False)
    issuer: Issuer | None = None
    chain_env_var: str = DEFAULTS["chain-env-var"]
    key_env_var: str = DEFAULTS["key-env-var"]
    strategy: Strategy = Strategy.AUTO
    renew_before: RenewBefore | None = None
    force: bool = False
    dry_run: bool = False
    verify_path: str | None = None
    verify_url: str | None = None
    keep_root: bool = False
    trusted_roots: tuple[x509.Certificate, ...] = ()
    warn_days: int = DEFAULT_WARN_DAYS
    timeout_s: float = float(DEFAULTS["timeout"])
    verify_timeout_s: float = VERIFY_TIMEOUT_S
    """How long test-before-promote keeps retrying while CPI picks up a new binding."""
    max_in_flight: int = int(DEFAULTS["max-in-flight"])
    run_id: str = ""
    annotation_prefix: str | None = None
    """Prefix of the app annotations the run reads and writes; None: the default
    (`rotation.annotations.DEFAULT_PREFIX`). Checked with Cloud Controller's rules before
    any call."""

    def __post_init__(self) -> None:
        given = bool(self.chain) or self.key is not None
        if not given and self.issuer is None and self.dry_run:
            return  # check only
        if given == (self.issuer is not None):
            raise InputError(
                "a rotation needs the new certificate either given (chain and key) or "
                "from an issuer, not both and not neither",
                code="missing-material" if not given else "ambiguous-material",
            )
        if given and (not self.chain or self.key is None):
            raise InputError(
                "the new chain and its key go together; one of them is missing",
                code="missing-material",
            )


@dataclass(frozen=True)
class StepResult:
    """One engine step as it ran: name, status (ok|skipped|failed|undone), duration."""

    name: str
    status: str
    duration_s: float
    detail: str = ""


@dataclass(frozen=True)
class StepStarted:
    """A step of the engine began (`rotate(on_step=)`): adapters open a log group on it."""

    name: str
    detail: str = ""


@dataclass(frozen=True)
class StepFinished:
    """A step of the engine ended, ok or failed, with its result."""

    result: StepResult


StepEvent = StepStarted | StepFinished
"""What `rotate(on_step=)` is called with: the engine's progress, as data rather than text."""


@dataclass(frozen=True)
class Report:
    """What a run did, for every adapter to render. Holds no secret."""

    outcome: Outcome
    target: CfTarget
    strategy: Strategy | None = None
    before: CertFacts | None = None
    new: CertFacts | None = None
    binding_guid: str | None = None
    deployment_guid: str | None = None
    steps: tuple[StepResult, ...] = ()
    warnings: tuple[str, ...] = ()
    plan: tuple[str, ...] = ()
    error: str | None = None
    error_code: str | None = None
    hint: str | None = None
    state_left: tuple[str, ...] = ()
    manual_actions: tuple[str, ...] = ()
    leaf_pem: str | None = None
    finished_at: datetime | None = None
    verified: bool = False
    """True only when a real mTLS call with the new chain and key succeeded before
    promotion (the test step). A rotation without it is live but unproven."""
    app_stopped: bool = False
    """The app is stopped and the run left it stopped (a deployment, restage or restart
    would start it, rotation/promote.py). Rotated, its new certificate is registered and
    in its env, but no instance presents it until someone starts the app."""

    @property
    def exit_code(self) -> ExitCode:
        """The process exit code for this outcome."""
        return _EXIT_CODES[self.outcome]

    @property
    def rotated(self) -> bool:
        """True when the new certificate is live (even if an old binding lingers)."""
        return self.outcome in (Outcome.ROTATED, Outcome.CLEANUP_INCOMPLETE)

    @property
    def in_force(self) -> CertFacts | None:
        """The certificate the app uses after the run, when known: the new one once it is
        live, none in a split state (`state_left` says what is where), else the old one."""
        if self.rotated or self.outcome is Outcome.ALREADY_CURRENT:
            return self.new
        if self.outcome is Outcome.ROLLBACK_INCOMPLETE:
            return None
        return self.before

    @property
    def unproven(self) -> bool:
        """Live, but nothing proved that the new certificate works (no test call ran)."""
        return self.rotated and not self.verified

    @property
    def left_stopped(self) -> bool:
        """Rotated, but the app is stopped: it presents the new certificate once started."""
        return self.rotated and self.app_stopped

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (times as ISO 8601 UTC) for `--json` and tests."""
        now = self.finished_at
        return {
            "outcome": str(self.outcome),
            "rotated": self.rotated,
            "verified": self.verified,
            "app_stopped": self.app_stopped,
            "exit_code": int(self.exit_code),
            "strategy": str(self.strategy) if self.strategy else None,
            "target": asdict(self.target),
            "before": self.before.to_json(now) if self.before else None,
            "new": self.new.to_json(now) if self.new else None,
            "binding_guid": self.binding_guid,
            "deployment_guid": self.deployment_guid,
            "steps": [asdict(s) for s in self.steps],
            "warnings": list(self.warnings),
            "plan": list(self.plan),
            "error": self.error,
            "error_code": self.error_code,
            "hint": self.hint,
            "state_left": list(self.state_left),
            "manual_actions": list(self.manual_actions),
            "finished_at": iso(now) if now else None,
        }


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, seconds precision: every time this tool writes (reports,
    annotations, lock tags, scan documents) takes this form."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    """A time `iso` wrote (or any ISO 8601 text) read back; None when absent or odd: it
    comes from an annotation or a tag that anyone may have edited."""
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
