"""The stable problem codes of certificate material: severity, meaning and fix for each.

One table serves three readers: `validate` (which builds `Problem`s from it), the
loaders (which raise `InputError` with the same codes and fixes) and docs/certificates.md (whose
problem table a test compares with this one). Codes never change once released: users
match on them in scripts and the Action's `reason` output.

Messages are built from public facts only (subjects, dates, sizes); nothing that
formats a message ever sees key bytes or a passphrase.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..errors import InputError


class Severity(StrEnum):
    """How much a problem matters: errors block a rotation, the rest are reported."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Problem:
    """One finding about the material; `message` names the problem and the fix."""

    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class ProblemSpec:
    """What a code means and what a person does about it (docs/certificates.md shows it)."""

    severity: Severity
    meaning: str
    fix: str


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

PROBLEMS: dict[str, ProblemSpec] = {
    "empty-input": ProblemSpec(
        _E,
        "The chain or key input is empty.",
        "Pass the file or secret that holds it; secrets are empty in workflows started "
        "from forks and when the secret name is misspelt.",
    ),
    "unparseable-chain": ProblemSpec(
        _E,
        "No certificate could be read from the chain input.",
        "Give PEM, PKCS#7, PKCS#12, DER or base64 of one of them; "
        "`openssl x509 -noout -subject -in FILE` shows whether the file is a certificate.",
    ),
    "unparseable-key": ProblemSpec(
        _E,
        "No private key could be read from the key input.",
        "Give the key as PEM (PKCS#8, PKCS#1 or SEC1, encrypted or not), DER, PKCS#12 "
        "or base64 of one of them.",
    ),
    "key-encrypted": ProblemSpec(
        _E,
        "The private key (or PKCS#12 file) is encrypted and no passphrase was given.",
        "Pass the passphrase too: the Action's `private-key-passphrase` (`pkcs12-password` "
        "for `pkcs12`), or `--passphrase-env NAME` on the command line.",
    ),
    "wrong-passphrase": ProblemSpec(
        _E,
        "The passphrase does not decrypt the private key (or PKCS#12 file).",
        "Check the passphrase secret (a trailing newline counts) and that it belongs to this key.",
    ),
    "key-mismatch": ProblemSpec(
        _E,
        "The private key does not belong to the leaf certificate.",
        "Pass the key the certificate was requested with; `openssl x509 -noout -pubkey` "
        "and `openssl pkey -pubout` must print the same public key.",
    ),
    "private-key-in-chain": ProblemSpec(
        _E,
        "The chain input contains a private key.",
        "Put only certificates in the chain input and the key in the key input; if the "
        "chain was shared or logged, treat the key as leaked and issue a new one.",
    ),
    "leaf-expired": ProblemSpec(
        _E,
        "The leaf certificate's notAfter is in the past.",
        "Have the CA issue a new certificate.",
    ),
    "leaf-not-yet-valid": ProblemSpec(
        _E,
        "The leaf certificate's notBefore is in the future.",
        "Wait until notBefore, or check the clock of the machine and of the CA.",
    ),
    "leaf-expiring-soon": ProblemSpec(
        _W,
        "The leaf expires within the warning window (default 30 days).",
        "Rotate to a new certificate soon; change the window with `--warn-days`.",
    ),
    "intermediate-expired": ProblemSpec(
        _E,
        "A CA certificate in the chain is outside its validity period.",
        "Download the current intermediate from your CA and put it in the chain.",
    ),
    "chain-broken": ProblemSpec(
        _E,
        "A certificate's issuer is missing: the next certificate given does not issue it.",
        "Add the missing intermediate certificate(s); the chain runs leaf, "
        "intermediate(s), optionally root.",
    ),
    "chain-incomplete": ProblemSpec(
        _E,
        "The top certificate's issuer is neither in the chain nor one of the trusted roots: "
        "an intermediate is missing (or the root is one not trusted here). CPI's load "
        "balancer would refuse the chain, and without a test call the app would be broken.",
        "Add the missing intermediate (the message names its DN and, when the certificate "
        "has one, the caIssuers URL to download it from); if the issuer is your own root, "
        "pass it as trusted roots (`trusted-roots`, `--trusted-roots`) or at the end of the "
        "chain.",
    ),
    "bad-signature": ProblemSpec(
        _E,
        "A certificate names an issuer that is present, but that issuer's key did not sign it.",
        "The issuer certificate is a different one with the same name (a re-keyed CA?); "
        "get the matching intermediate from your CA.",
    ),
    "unrelated-certificate": ProblemSpec(
        _E,
        "A certificate is not on the leaf's path to its root.",
        "Remove it from the chain input; it belongs to another chain.",
    ),
    "duplicate-certificate": ProblemSpec(
        _W,
        "The same certificate appears more than once; the copies were dropped.",
        "Nothing to do; remove the copies to silence this.",
    ),
    "chain-reordered": ProblemSpec(
        _W,
        "The certificates were not in leaf-first order; the order was fixed.",
        "Nothing to do; the env chain is written leaf first.",
    ),
    "leaf-is-ca": ProblemSpec(
        _E,
        "The leaf is a CA certificate (basicConstraints cA=TRUE).",
        "Use the end-entity (client) certificate the CA issued for your key as the leaf.",
    ),
    "self-signed-leaf": ProblemSpec(
        _E,
        "The leaf is self-signed; CPI only accepts chains ending in a root on SAP's list.",
        "Have a CA that SAP trusts sign a CSR for the key (SAP Note 2801396).",
    ),
    "no-client-auth": ProblemSpec(
        _E,
        "The leaf may not be used for TLS client authentication (extendedKeyUsage without "
        "clientAuth, or keyUsage without digitalSignature).",
        "Request a certificate with extendedKeyUsage clientAuth (or none) and keyUsage "
        "digitalSignature.",
    ),
    "weak-key": ProblemSpec(
        _E,
        "An RSA key is shorter than 2048 bits, or a certificate is signed with SHA-1 or MD5.",
        "Issue a new certificate with RSA >= 2048 or EC P-256/P-384 and a SHA-256 signature.",
    ),
    "unsupported-key-type": ProblemSpec(
        _E,
        "The key is neither RSA nor EC P-256/P-384.",
        "Generate an RSA (2048 bits or more) or EC P-256/P-384 key and a new certificate.",
    ),
    "untrusted-root": ProblemSpec(
        _E,
        "The chain ends in a root that is not one of the trusted roots given.",
        "Use a certificate from a CA whose root is in the bundle given, or add the root to "
        "it if Cloud Integration trusts it (SAP Note 2801396).",
    ),
    "root-not-on-sap-list": ProblemSpec(
        _W,
        "No trusted roots were given, and the chain's root is not on SAP's published list "
        "of approved root CAs (the BTP trust store shipped with this tool).",
        "SAP Note 2801396 is the authority for the roots Cloud Integration's load balancer "
        "trusts: check the root there. Pass your own list (`trusted-roots`, "
        "`--trusted-roots`) to make the check exact, and give a verify path so that a real "
        "call proves the chain before promotion.",
    ),
    "root-included": ProblemSpec(
        _I,
        "The chain includes its root certificate.",
        "Nothing to do: the root is left out of the env chain (CPI has it) unless "
        "`--keep-root` is given.",
    ),
    "path-validation-failed": ProblemSpec(
        _W,
        "The RFC 5280 path validator rejects the chain for a reason the other checks do not "
        "cover (e.g. a missing authorityKeyIdentifier or a CA without keyCertSign).",
        "Ask the CA whether the certificate profile is correct; CPI's load balancer may "
        "reject the chain too.",
    ),
}
"""Every problem code, in the order docs/certificates.md lists them."""


def fix_for(code: str) -> str:
    """The fix sentence for `code` (empty for codes outside the table)."""
    spec = PROBLEMS.get(code)
    return spec.fix if spec else ""


def problem(code: str, what: str) -> Problem:
    """A `Problem` whose message is `what` followed by the code's fix."""
    spec = PROBLEMS[code]
    return Problem(code, spec.severity, f"{what} Fix: {spec.fix}")


def input_error(code: str, what: str) -> InputError:
    """An `InputError` for a material problem code, with the code's fix."""
    return InputError(what, code=code, fix=fix_for(code))


def problem_from_error(error: InputError) -> Problem:
    """The `Problem` a loader's `InputError` stands for (always an error)."""
    fix = f" Fix: {error.fix}" if error.fix else ""
    return Problem(error.code, Severity.ERROR, f"{error}{fix}")
