"""Step (1), material: the new certificate, given or issued, validated before any write.

Given material is validated before the first call; an issuer is asked only once a rotation
is due (and not a dry run), for a key made in this process, and what it issues is
validated the same way. Every spelling of the new key is registered with the client so
that no text Cloud Foundry sends back can carry it into a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509

from .. import material
from ..cf import CfClient
from ..issuers.base import IssuedMaterial
from ..models import PrivateKey, RotationRequest
from .journal import Journal
from .observe import Observation


@dataclass(frozen=True)
class NewMaterial:
    """The new chain and key, validated completely; what the forward steps install."""

    validation: material.Validation
    key: PrivateKey = field(repr=False)

    @property
    def leaf(self) -> x509.Certificate:
        """The new leaf."""
        return self.validation.leaf

    @property
    def warnings(self) -> list[str]:
        """What validation warned of (for the report)."""
        return [p.message for p in self.validation.warnings]


def validate_step(
    journal: Journal,
    chain: tuple[x509.Certificate, ...],
    key: PrivateKey,
    request: RotationRequest,
    now: datetime,
) -> NewMaterial:
    """Validate completely; raises `InputError` on an error."""
    with journal.step("material"):
        validation = material.validate(
            chain,
            key,
            now=now,
            trusted_roots=request.trusted_roots,
            warn_days=request.warn_days,
        )
        material.raise_for_problems(validation)
    return NewMaterial(validation, key)


def issue_step(
    journal: Journal,
    request: RotationRequest,
    obs: Observation,
    on_secret: Callable[[str], None],
    warnings: list[str],
) -> IssuedMaterial:
    """Have the issuer sign a CSR for a key made here (not validated yet).

    The CSR copies the subject of the certificate instances present now, so that a renewal
    keeps the DN that CPI and an iFlow's subject check compare; a different subject is a
    warning appended to `warnings`.
    """
    issuer = request.issuer
    assert issuer is not None
    live = obs.env_leaf or obs.registered.leaf
    with journal.step("issue", issuer.describe()) as notes:
        issued = issuer.issue(copy_subject_from=live, on_secret=on_secret)
        for form in material.secret_forms(issued.key):
            on_secret(form)
        notes.append(f"serial {issued.chain[0].serial_number:x}")
    if live is not None and issued.chain[0].subject != live.subject:
        warnings.append(
            f"the issued certificate's subject ({issued.chain[0].subject.rfc4514_string()}) "
            f"differs from the live one ({live.subject.rfc4514_string()}); an iFlow that "
            "authorises by subject DN must be updated (the issuer's role sets O, OU, C)"
        )
    return issued


def keep_out_of_errors(client: CfClient, key: PrivateKey | None) -> None:
    """Every spelling of `key` is cut from Cloud Foundry's error texts."""
    if key is not None:
        forms = material.secret_forms(key)
        client.add_secrets(*forms, *material.secret_lines(forms))
