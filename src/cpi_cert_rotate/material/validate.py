"""Check a chain (and key) completely before anything in Cloud Foundry changes.

`validate` is a *reporting* function: it never raises for a bad chain, it lists every
problem with a stable code so a person can fix them all in one go. `raise_for_problems`
turns the error-level ones into an `InputError` for callers that must stop.

What runs, in order (each block below carries its number):

  (0) drop exact duplicates (`duplicate-certificate`);
  (1) pick the leaf: the certificate no other one names as issuer, preferring non-CAs;
  (2) build the path upwards by issuer name, checking every signature
      (`bad-signature`), until a self-signed root or a missing issuer;
  (3) classify what is left over (`chain-broken`, `unrelated-certificate`) and whether
      the input order had to change (`chain-reordered`);
  (4) leaf profile: validity, CA flag, self-signed, EKU/keyUsage, key type and size;
  (5) CA certificates: validity, key size, signature hash;
  (6) the private key against the leaf (`key-mismatch`);
  (7) trust: the path must end in a trusted root (`trust`): the top certificate's
      issuer missing from both chain and roots is `chain-incomplete`; a root not among
      the user's roots is `untrusted-root`, one not on SAP's list (the default)
      `root-not-on-sap-list`. Then cryptography's RFC 5280 path validator gets the final
      word (`path-validation-failed`), and an included root is noted (`root-included`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from ..errors import InputError
from ..models import PrivateKey
from ..request.fields import DEFAULT_WARN_DAYS
from .certs import (
    dn,
    extension_value,
    is_ca,
    is_self_issued,
    signed_by,
    valid_at,
    weak_signature_hash,
)
from .keys import MIN_RSA_BITS, describe_public_key, is_supported_key_type, key_matches
from .problems import Problem, Severity, problem
from .trust import SAP_NOTE, TrustedRoots, ca_issuers_urls, trusted_roots_of


@dataclass(frozen=True)
class Validation:
    """The outcome of `validate`: the ordered chain and every problem found."""

    chain: tuple[x509.Certificate, ...]
    """Leaf first, then issuers in path order, duplicates removed, root if given."""
    leaf: x509.Certificate
    root: x509.Certificate | None
    """The self-signed top of the path when the input included it."""
    problems: tuple[Problem, ...]
    key_matches: bool | None
    """None when no key was given."""

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The error-level problems: any of them means the material must not be used."""
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """The warning-level problems."""
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """True when no error-level problem was found."""
        return not self.errors

    @property
    def codes(self) -> tuple[str, ...]:
        """The problem codes, in the order found (handy in tests and logs)."""
        return tuple(p.code for p in self.problems)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _dedupe(
    chain: Sequence[x509.Certificate],
) -> tuple[list[x509.Certificate], list[Problem]]:
    # (0) exact duplicates, by DER; the first occurrence keeps its place.
    unique: list[x509.Certificate] = []
    copies: dict[x509.Certificate, int] = {}
    for cert in chain:
        if cert in copies:
            copies[cert] += 1
        else:
            copies[cert] = 1
            unique.append(cert)
    problems = [
        problem(
            "duplicate-certificate",
            f"{dn(cert)} appears {count} times in the chain input; the copies were dropped.",
        )
        for cert, count in copies.items()
        if count > 1
    ]
    return unique, problems


def _pick_leaf(certs: list[x509.Certificate]) -> x509.Certificate:
    # (1) the leaf is no other certificate's issuer; among several, a non-CA, first given.
    candidates = [
        cert
        for cert in certs
        if not any(other is not cert and other.issuer == cert.subject for other in certs)
    ] or certs
    end_entities = [cert for cert in candidates if not is_ca(cert)]
    return (end_entities or candidates)[0]


def _build_path(
    leaf: x509.Certificate, certs: list[x509.Certificate]
) -> tuple[list[x509.Certificate], list[Problem]]:
    # (2) follow issuer names upwards; every link must carry a valid signature.
    path = [leaf]
    problems: list[Problem] = []
    current = leaf
    while not is_self_issued(current):
        named = [c for c in certs if c.subject == current.issuer and c not in path]
        if not named:
            break
        signer = next((c for c in named if signed_by(current, c)), None)
        if signer is None:
            problems.append(
                problem(
                    "bad-signature",
                    f"{dn(current)} names {current.issuer.rfc4514_string()} as its issuer, "
                    "but the certificate of that name in the chain did not sign it.",
                )
            )
            signer = named[0]
        path.append(signer)
        current = signer
    if is_self_issued(current) and not signed_by(current, current):
        problems.append(
            problem(
                "bad-signature",
                f"{dn(current)} names itself as issuer, but its signature does not verify "
                "with its own key.",
            )
        )
    return path, problems


def _leftovers(
    leaf: x509.Certificate, path: list[x509.Certificate], certs: list[x509.Certificate]
) -> list[Problem]:
    # (3) certificates not on the path: a gap above the path, or strays.
    problems: list[Problem] = []
    top = path[-1]
    rest = [c for c in certs if c not in path]
    if not is_self_issued(top) and any(is_ca(c) for c in rest):
        given = ", ".join(dn(c) for c in rest if is_ca(c))
        problems.append(
            problem(
                "chain-broken",
                f"The issuer of {dn(top)} ({top.issuer.rfc4514_string()}) is missing; "
                f"the other CA certificate(s) given ({given}) do not issue it.",
            )
        )
        rest = [c for c in rest if not is_ca(c)]
    problems += [
        problem(
            "unrelated-certificate",
            f"{dn(c)} (issued by {c.issuer.rfc4514_string()}) is not on the path of the "
            f"leaf {dn(leaf)}.",
        )
        for c in rest
    ]
    given_order = [path.index(c) + 1 for c in certs if c in path]
    if given_order != sorted(given_order):
        order = ", ".join(map(str, given_order))
        problems.append(
            problem(
                "chain-reordered",
                f"The chain was given in the order {order} (1 = leaf, then each issuer); "
                "it was put in leaf-first order.",
            )
        )
    return problems


def _leaf_problems(leaf: x509.Certificate, now: datetime, warn_days: int) -> list[Problem]:
    # (4) the leaf's own profile.
    problems: list[Problem] = []
    name, not_after = dn(leaf), leaf.not_valid_after_utc
    if now > not_after:
        problems.append(problem("leaf-expired", f"The leaf {name} expired on {_day(not_after)}."))
    elif now < leaf.not_valid_before_utc:
        problems.append(
            problem(
                "leaf-not-yet-valid",
                f"The leaf {name} is valid only from {_day(leaf.not_valid_before_utc)}.",
            )
        )
    elif not_after - now <= timedelta(days=warn_days):
        days = int((not_after - now).total_seconds() // 86400)
        problems.append(
            problem(
                "leaf-expiring-soon",
                f"The leaf {name} expires on {_day(not_after)}, in {days} day(s) "
                f"(warning window: {warn_days} days).",
            )
        )
    if is_ca(leaf):
        problems.append(problem("leaf-is-ca", f"The leaf {name} has basicConstraints cA=TRUE."))
    if is_self_issued(leaf) and signed_by(leaf, leaf):
        problems.append(problem("self-signed-leaf", f"The leaf {name} is self-signed."))
    usage = extension_value(leaf, x509.ExtendedKeyUsage)
    allowed = {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
    if usage is not None and not allowed & set(usage):
        purposes = ", ".join(oid._name for oid in usage)
        problems.append(
            problem(
                "no-client-auth",
                f"The leaf {name} allows only {purposes} (extendedKeyUsage, RFC 5280 section "
                "4.2.1.12); TLS client authentication needs clientAuth.",
            )
        )
    key_usage = extension_value(leaf, x509.KeyUsage)
    if key_usage is not None and not key_usage.digital_signature:
        problems.append(
            problem(
                "no-client-auth",
                f"The leaf {name} has keyUsage without digitalSignature (RFC 5280 section "
                "4.2.1.3); the TLS client signs the handshake with it.",
            )
        )
    problems += _key_strength(leaf, "leaf", is_leaf=True)
    return problems


def _key_strength(cert: x509.Certificate, role: str, *, is_leaf: bool) -> list[Problem]:
    problems: list[Problem] = []
    public_key = cert.public_key()
    kind, size = describe_public_key(public_key)
    if is_leaf and not is_supported_key_type(public_key):
        problems.append(problem("unsupported-key-type", f"The {role} {dn(cert)} has a {kind} key."))
    elif isinstance(public_key, rsa.RSAPublicKey) and size < MIN_RSA_BITS:
        problems.append(
            problem(
                "weak-key",
                f"The {role} {dn(cert)} has a {size}-bit RSA key; at least "
                f"{MIN_RSA_BITS} bits are required.",
            )
        )
    weak = None if is_self_issued(cert) and not is_leaf else weak_signature_hash(cert)
    if weak:
        problems.append(problem("weak-key", f"The {role} {dn(cert)} is signed with {weak}."))
    return problems


def _ca_problems(path: list[x509.Certificate], now: datetime) -> list[Problem]:
    # (5) every CA certificate on the path (intermediates and an included root).
    problems: list[Problem] = []
    for cert in path[1:]:
        role = "root" if is_self_issued(cert) else "intermediate"
        if not valid_at(cert, now):
            problems.append(
                problem(
                    "intermediate-expired",
                    f"The {role} {dn(cert)} is valid from {_day(cert.not_valid_before_utc)} "
                    f"to {_day(cert.not_valid_after_utc)}, not now.",
                )
            )
        problems += _key_strength(cert, role, is_leaf=False)
    return problems


def _key_problems(key: PrivateKey, leaf: x509.Certificate) -> tuple[bool, list[Problem]]:
    # (6) the key must be the leaf's; only types and sizes go into messages.
    kind, size = describe_public_key(key.public_key())
    problems: list[Problem] = []
    if not is_supported_key_type(key.public_key()):
        problems.append(
            problem("unsupported-key-type", f"The private key is a {kind} ({size} bits) key.")
        )
    matches = key_matches(key, leaf)
    if not matches:
        leaf_kind, leaf_size = describe_public_key(leaf.public_key())
        problems.append(
            problem(
                "key-mismatch",
                f"The private key ({kind} {size}) does not belong to the leaf {dn(leaf)} "
                f"(whose public key is {leaf_kind} {leaf_size}).",
            )
        )
    return matches, problems


def _client_policy_ee() -> ExtensionPolicy:
    """The Web PKI end-entity profile, minus its SAN requirement.

    Client certificates for CPI identify a system by subject DN and usually carry no
    subjectAltName (RFC 5280 section 4.2.1.6 makes SAN mandatory only for an empty
    subject), so the path validator must not demand one.
    """
    return ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )


def _trust_problems(
    path: list[x509.Certificate],
    root: x509.Certificate | None,
    trusted: TrustedRoots,
    now: datetime,
    *,
    has_errors: bool,
    broken: bool,
) -> list[Problem]:
    # (7) where the path ends, and the RFC 5280 path validator over all of it.
    problems: list[Problem] = []
    top = path[-1]
    anchor = None
    if len(path) > 1 or not is_self_issued(top):  # a lone self-signed leaf says so itself
        anchor = trusted.anchor_of(path)
        if anchor is None and not broken:
            problems.append(_unanchored(top, trusted))
            has_errors = has_errors or problems[-1].severity is Severity.ERROR
    anchors: list[x509.Certificate] = list(trusted.certificates)
    if not anchors:
        anchors = [c for c in (anchor.certificate if anchor else None, root) if c is not None]
    if anchors and not has_errors:
        verifier = (
            PolicyBuilder()
            .store(Store(anchors))
            .time(now)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_client_policy_ee()
            )
            .build_client_verifier()
        )
        try:
            verifier.verify(path[0], [c for c in path[1:] if c is not root])
        except VerificationError as error:
            problems.append(
                problem("path-validation-failed", f"The RFC 5280 path validator says: {error}.")
            )
    if root is not None:
        problems.append(
            problem(
                "root-included",
                f"The chain includes its root {dn(root)}; the env chain leaves it out.",
            )
        )
    return problems


def _unanchored(top: x509.Certificate, trusted: TrustedRoots) -> Problem:
    """The problem of a path that ends in no trusted root: a gap, or a root not trusted."""
    issuer = top.issuer.rfc4514_string()
    where = (
        f"one of the {trusted.count} trusted root(s) given"
        if trusted.given
        else f"on {trusted.source} ({SAP_NOTE} is the authority for Cloud Integration)"
    )
    if is_self_issued(top):
        code = "untrusted-root" if trusted.given else "root-not-on-sap-list"
        return problem(code, f"The chain ends at its root {dn(top)}, which is not {where}.")
    if trusted.names_issuer_of(top):
        code = "untrusted-root" if trusted.given else "root-not-on-sap-list"
        return problem(
            code,
            f"{dn(top)} is issued by {issuer}; a root of that name is {where}, but not the "
            "key that signed it (a re-keyed or cross-signed root?).",
        )
    urls = ca_issuers_urls(top)
    fetch = (
        f" Its Authority Information Access names where to download it: {', '.join(urls)}."
        if urls
        else ""
    )
    return problem(
        "chain-incomplete",
        f"The issuer of {dn(top)}, {issuer}, is neither in the chain nor {where}: "
        f"an intermediate certificate is missing, or {issuer} is a root that is not "
        f"trusted here.{fetch}",
    )


def validate(
    chain: Sequence[x509.Certificate],
    key: PrivateKey | None = None,
    *,
    now: datetime | None = None,
    trusted_roots: Sequence[x509.Certificate] | TrustedRoots | None = None,
    warn_days: int = DEFAULT_WARN_DAYS,
) -> Validation:
    """Order `chain` leaf first and report every problem of it (and of `key`).

    Never raises for a bad chain (only for an empty one: `empty-input`); see the module
    docstring for the steps. `now` defaults to the current time (naive means UTC).
    `trusted_roots`: the user's roots (a chain ending elsewhere is an error), or none for
    SAP's published list (a root not on it is a warning); see `trust`.
    """
    if not chain:
        raise InputError("No certificate was given.", code="empty-input")
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    certs, problems = _dedupe(chain)
    leaf = _pick_leaf(certs)
    path, path_problems = _build_path(leaf, certs)
    leftovers = _leftovers(leaf, path, certs)
    problems += path_problems + leftovers
    problems += _leaf_problems(leaf, moment, warn_days) + _ca_problems(path, moment)
    matches: bool | None = None
    if key is not None:
        matches, key_problems = _key_problems(key, leaf)
        problems += key_problems
    top = path[-1]
    root = top if len(path) > 1 and is_self_issued(top) and signed_by(top, top) else None
    has_errors = any(p.severity is Severity.ERROR for p in problems)
    broken = any(p.code == "chain-broken" for p in leftovers)
    trusted = trusted_roots_of(trusted_roots)
    problems += _trust_problems(path, root, trusted, moment, has_errors=has_errors, broken=broken)
    return Validation(tuple(path), leaf, root, tuple(problems), matches)


def raise_for_problems(validation: Validation) -> None:
    """Raise an `InputError` naming every error-level problem (code of the first one)."""
    errors = validation.errors
    if not errors:
        return
    if len(errors) == 1:  # one line: fits an annotation or a log line as it is
        text = f"The certificate material has an error: {errors[0].code}: {errors[0].message}"
    else:
        lines = "\n".join(f"- {p.code}: {p.message}" for p in errors)
        text = f"The certificate material has {len(errors)} errors:\n{lines}"
    raise InputError(
        text,
        code=errors[0].code,
        fix="Nothing was changed. Fix the problems listed and run again.",
    )
