"""The app annotations a rotation reads and writes, and the prefix rule Cloud Controller applies.

Every key is `<prefix>/<name>`. Cloud Controller refuses a key whose prefix is not a DNS
name with at least one dot (`CloudController::DomainDecorator::DOMAIN_REGEX` in
cloud_controller_ng `lib/cloud_controller/domain_decorator.rb`, applied by
`app/messages/metadata_validator_helper.rb`), so a dot-less prefix such as
`cpi-cert-rotate` fails with 422 "prefix ... must be in valid dns format" on the first
write. The prefix is checked here with the same rules before any call, so a bad
`annotation-prefix` is an input error (exit 2) and never a failed write.

The default prefix lives under the special-use top-level domain `.local` (RFC 6762): it
satisfies Cloud Controller's rule and claims no one's registered domain. Organisations
with a naming rule for metadata give their own (`rotation.example.com`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ..errors import InputError
from ..models import CertFacts, RotationRequest, iso
from ..request.rules import shown

DEFAULT_PREFIX = "cpi-cert-rotate.local"

# Cloud Controller's rules for a metadata key's prefix (see the module docstring): DNS
# labels of 1-63 letters, digits and inner hyphens, at least two of them, case-insensitive;
# at most 253 characters; `cloudfoundry.org` is reserved for the platform.
_DNS_LABEL = r"([a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])"
_PREFIX_FORMAT = re.compile(rf"({_DNS_LABEL}\.)+{_DNS_LABEL}", re.IGNORECASE | re.ASCII)
_MAX_PREFIX = 253
_MAX_LABEL = 63
_LABEL_CHARS = re.compile(r"[a-z0-9-]*", re.IGNORECASE | re.ASCII)
_RESERVED_PREFIX = "cloudfoundry.org"

FINGERPRINT = "fingerprint-sha256"
NOT_BEFORE = "not-before"
NOT_AFTER = "not-after"
ROTATED_AT = "rotated-at"
RUN_ID = "run-id"
_NAMES = (FINGERPRINT, NOT_BEFORE, NOT_AFTER, ROTATED_AT, RUN_ID)
"""Every key name the engine writes; each is within CC's 63-character name limit."""


def prefix_problem(prefix: str) -> str | None:
    """Why Cloud Controller would refuse keys with this prefix, or None when it accepts them.

    The order and wording of the reasons follow `MetadataValidatorHelper#key_error`.
    """
    if "/" in prefix:
        return "a prefix cannot contain '/' (a key has at most one)"
    if not _PREFIX_FORMAT.fullmatch(prefix):
        return "it must be a DNS name with at least one dot, e.g. `rotation.example.com`" + (
            f" ({_format_detail(prefix)})" if "." in prefix else ""
        )
    if len(prefix) > _MAX_PREFIX:
        return f"it is longer than {_MAX_PREFIX} characters"
    if prefix.lower() == _RESERVED_PREFIX:
        return f"`{_RESERVED_PREFIX}` is reserved for the platform"
    return None


def _format_detail(prefix: str) -> str:
    """Which part of DOMAIN_REGEX a prefix with a dot misses, in words."""
    labels = prefix.split(".")
    if "" in labels:
        return "an empty label: a dot at the start or end, or two in a row"
    if any(len(label) > _MAX_LABEL for label in labels):
        return f"a part between dots is longer than {_MAX_LABEL} characters"
    if not all(_LABEL_CHARS.fullmatch(label) for label in labels):
        return "only ASCII letters, digits, `-` and `.` are allowed: no `_`, blank or accent"
    return "a label starts or ends with `-`"


def check_prefix(prefix: str, *, source: str = "annotation-prefix") -> str:
    """Return `prefix` when Cloud Controller accepts it; else raise `InputError` (exit 2).

    `source` names the input or flag in the message, so that each adapter can point to
    its own spelling.
    """
    problem = prefix_problem(prefix)
    if problem is None:
        return prefix
    raise InputError(
        f"{source} {shown(prefix)} would be refused by Cloud Controller: {problem}",
        code="bad-annotation-prefix",
        fix=f"Leave it empty for the default `{DEFAULT_PREFIX}`, or give a DNS name your "
        "organisation uses for metadata, such as `rotation.example.com`.",
    )


@dataclass(frozen=True)
class AnnotationKeys:
    """The keys of one prefix: the rotation record (the lock is a service instance, `lock`)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def key(self, name: str) -> str:
        """`<prefix>/<name>` for one of the names above."""
        assert name in _NAMES, name
        return f"{self.prefix}/{name}"

    @property
    def fingerprint(self) -> str:
        return self.key(FINGERPRINT)

    @property
    def not_before(self) -> str:
        return self.key(NOT_BEFORE)

    @property
    def not_after(self) -> str:
        return self.key(NOT_AFTER)

    def record(self, new: CertFacts, *, run_id: str, rotated_at: datetime) -> dict[str, str]:
        """What a finished rotation writes: the new certificate's facts, when and by whom."""
        return {
            self.fingerprint: new.fingerprint_sha256,
            self.not_before: iso(new.not_before),
            self.not_after: iso(new.not_after),
            self.key(ROTATED_AT): iso(rotated_at),
            self.key(RUN_ID): run_id,
        }


def keys_of(request: RotationRequest) -> AnnotationKeys:
    """The keys a request's run uses (`annotation_prefix`, or the default)."""
    return AnnotationKeys(request.annotation_prefix or DEFAULT_PREFIX)
