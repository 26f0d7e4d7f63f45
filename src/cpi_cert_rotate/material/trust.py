"""Which roots a chain must end in: the user's own bundle, or by default SAP's published list.

Cloud Integration's load balancer accepts a client certificate only when its chain ends in
a root it trusts (SAP Note 2801396 is the authority, and it cannot be read from here).
SAP publishes the list of root CAs it approves in the BTP trust store
(https://github.com/sap-software/btp-trust-store, `optional/optional.md`), which is
expected to match that note closely but not guaranteed to. So:

- roots the user gives (`trusted-roots`, `--trusted-roots`) are authoritative: a chain
  that does not end in one of them is an error (`untrusted-root`);
- without them, SAP's list (package data `sap_approved_roots.json`, subjects, SHA-256
  fingerprints and subject key identifiers, with its release named) is the yardstick,
  and a root not on it is only a warning (`root-not-on-sap-list`) naming the note.

SAP's list has no certificates, so a chain that leaves its root out (as the env chain
does) is matched by name: the top certificate's issuer DN must equal a listed root's
subject (attribute by attribute, in any order, ignoring case and repeated spaces), and
when both carry one, its authorityKeyIdentifier must equal that root's
subjectKeyIdentifier (RFC 5280 sections 4.2.1.1 and 4.2.1.2), which tells a re-keyed
root of the same name apart. A chain that includes its root is matched by fingerprint.
Given roots are certificates, so there the signature itself is checked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .certs import extension_value, is_self_issued, signed_by

SAP_NOTE = "SAP Note 2801396"
"""The note that lists the roots Cloud Integration's load balancer trusts."""

_DATA = "sap_approved_roots.json"

Attributes = frozenset[tuple[str, str]]


def _normalise(value: str) -> str:
    # RFC 4518-style leniency for the comparisons that matter here: case and spacing.
    return " ".join(value.split()).casefold()


def name_attributes(name: x509.Name) -> Attributes:
    """A DN as a set of (dotted OID, normalised value): order and case do not matter."""
    return frozenset(
        (attribute.oid.dotted_string, _normalise(str(attribute.value))) for attribute in name
    )


def _key_id(cert: x509.Certificate) -> str | None:
    """The authorityKeyIdentifier's keyIdentifier, hex (None when absent)."""
    aki = extension_value(cert, x509.AuthorityKeyIdentifier)
    return aki.key_identifier.hex() if aki is not None and aki.key_identifier else None


def _sha256(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def ca_issuers_urls(cert: x509.Certificate) -> tuple[str, ...]:
    """Where the issuer's certificate can be downloaded (AIA caIssuers, RFC 5280 4.2.2.1)."""
    aia = extension_value(cert, x509.AuthorityInformationAccess)
    if aia is None:
        return ()
    return tuple(
        str(desc.access_location.value)
        for desc in aia
        if desc.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(desc.access_location, x509.UniformResourceIdentifier)
    )


@dataclass(frozen=True)
class ListedRoot:
    """One root of SAP's list: its subject as published, fingerprint and key identifier."""

    subject: str
    attributes: Attributes
    sha256: str
    subject_key_id: str | None


@dataclass(frozen=True)
class Anchor:
    """Where a chain ends in a trusted root, and that root's certificate when known."""

    root: str
    """The root, for messages (its DN)."""
    certificate: x509.Certificate | None
    """The root certificate (for the path validator); None for a root SAP's list names."""


@dataclass(frozen=True)
class TrustedRoots:
    """The roots a chain must end in, and how much a miss matters."""

    certificates: tuple[x509.Certificate, ...] = ()
    listed: tuple[ListedRoot, ...] = ()
    given: bool = True
    """True: the user's roots (a miss is an error); False: SAP's list (a warning)."""
    source: str = "the trusted roots given"

    @property
    def count(self) -> int:
        """How many roots there are."""
        return len(self.certificates) + len(self.listed)

    def anchor_of(self, path: Sequence[x509.Certificate]) -> Anchor | None:
        """The trusted root `path` (leaf first) ends in, or None."""
        for cert in path:  # a given certificate on the path anchors it (root or intermediate)
            if cert in self.certificates:
                return Anchor(cert.subject.rfc4514_string(), cert)
        top = path[-1]
        if is_self_issued(top):
            listed = next((r for r in self.listed if r.sha256 == _sha256(top)), None)
            return Anchor(listed.subject, top) if listed else None
        for root in self.certificates:
            if signed_by(top, root):
                return Anchor(root.subject.rfc4514_string(), root)
        wanted, key_id = name_attributes(top.issuer), _key_id(top)
        for listed_root in self.listed:
            if listed_root.attributes != wanted:
                continue
            if key_id and listed_root.subject_key_id and key_id != listed_root.subject_key_id:
                continue
            return Anchor(listed_root.subject, None)
        return None

    def names_issuer_of(self, cert: x509.Certificate) -> bool:
        """True when a trusted root carries `cert`'s issuer name (whatever its key)."""
        wanted = name_attributes(cert.issuer)
        return any(name_attributes(c.subject) == wanted for c in self.certificates) or any(
            r.attributes == wanted for r in self.listed
        )


@lru_cache(maxsize=1)
def sap_approved_roots() -> TrustedRoots:
    """SAP's published list of approved roots, as shipped in this package."""
    data = json.loads(resources.files(__package__).joinpath(_DATA).read_text("utf-8"))
    roots = tuple(
        ListedRoot(
            subject=entry["subject"],
            attributes=frozenset((oid, _normalise(value)) for oid, value in entry["attributes"]),
            sha256=entry["sha256"],
            subject_key_id=entry.get("subject_key_id"),
        )
        for entry in data["roots"]
    )
    return TrustedRoots(listed=roots, given=False, source="SAP's list of approved root CAs")


def trusted_roots_of(
    roots: Sequence[x509.Certificate] | TrustedRoots | None,
) -> TrustedRoots:
    """`roots` as given; none at all means SAP's list."""
    if isinstance(roots, TrustedRoots):
        return roots
    if roots:
        return TrustedRoots(certificates=tuple(roots))
    return sap_approved_roots()
