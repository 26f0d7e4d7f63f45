"""Where the new certificate comes from: given (chain and key, or PKCS#12) or issued.

Exactly one source: the chain with its key (the command line also takes a PKCS#12 in
`--chain` that holds its own key, as `inspect` does), a PKCS#12 (the Action's `pkcs12`),
or a Vault/OpenBao address (a key made in memory, a CSR signed by a PKI role). The
inputs of one source are refused beside another, by name, so that a leftover key is
never ignored silently while Vault issues.

Given material is parsed here and every derived form of its key masked at once. For
Vault nothing secret exists yet: the token is masked with the other secret inputs, and
a JWT is fetched (and masked) only when the engine asks the issuer for a certificate,
after it decided that a rotation is due.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from cryptography import x509

from .. import material
from ..errors import InputError
from ..issuers import Issuer, VaultPkiIssuer, VaultSettings
from ..models import PrivateKey
from . import rules
from .fields import DEFAULTS, GIVEN_INPUTS, VAULT_INPUTS
from .problems import Problems

_JWT_ONLY = ("vault-auth-mount", "vault-audience")
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(-----END \1PRIVATE KEY-----|\Z)", re.DOTALL
)
T = TypeVar("T")


class JwtSource(Protocol):
    """A JWT for Vault's JWT login or Cloud Foundry's OIDC login: the job's OIDC token,
    or one the user exported."""

    def check(self) -> None:
        """Raise `InputError` when no JWT can be had (checked before any call)."""

    def __call__(self, audience: str | None) -> str:
        """The JWT, fetched only when a login needs it (a fresh one each call when it can)."""
        ...

    def describe(self, audience: str | None) -> str:
        """What the JWT is, for messages ("the job's GitHub OIDC token (audience ...)")."""
        ...


@dataclass(frozen=True)
class NewCertificate:
    """The given chain and key, or an issuer; neither for a check-only dry run."""

    chain: tuple[x509.Certificate, ...] = ()
    key: PrivateKey | None = field(default=None, repr=False)
    issuer: Issuer | None = None


def chain_key_blocks(chain_text: str) -> list[str]:
    """Private-key blocks pasted into a (public, unmasked) chain input, to mask them."""
    return [match.group(0) for match in _PRIVATE_KEY_BLOCK.finditer(chain_text)]


def new_certificate(
    values: Mapping[str, str | bytes],
    problems: Problems,
    mask: Callable[[str], None],
    jwt: JwtSource | None,
    *,
    check_only_allowed: bool = False,
) -> NewCertificate | None:
    """The certificate's source, or None after adding its problems to `problems`.

    `mask` receives every derived form of a given key before this returns. With
    `check_only_allowed` (a dry run) no source at all is fine: the run then only checks
    the live certificate, and a check needs no private key.
    """
    d = problems.dialect
    if values.get("vault-addr"):
        return _issuer(values, problems, jwt)
    stray = _set(values, VAULT_INPUTS)
    if stray:
        problems.without_switch(
            "vault-addr",
            stray,
            fix=f"Set {d.mention('vault-addr')} to have the certificate issued there, or remove "
            "{names}, which apply only to an issued certificate.",
        )
        return None
    if check_only_allowed and not _set(values, GIVEN_INPUTS):
        return NewCertificate()
    return _given(values, problems, mask)


def _set(values: Mapping[str, str | bytes], names: tuple[str, ...]) -> list[str]:
    """The inputs of `names` given a value other than their default."""
    return [n for n in names if values.get(n, "") not in ("", DEFAULTS.get(n, ""))]


def _names(problems: Problems, names: list[str]) -> str:
    return ", ".join(problems.dialect.mention(n) for n in names)


def _is_are(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"


def _text(values: Mapping[str, str | bytes], name: str) -> str:
    value = values.get(name, "")
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _sources(problems: Problems) -> str:
    """The three sources as this adapter names them."""
    d = problems.dialect
    given = d.names("cert-chain", "private-key")
    p12 = f", {d.mention('pkcs12')}" if d.has("pkcs12") else ""
    return f"{given}{p12} or {d.mention('vault-addr')}"


def _issuer(
    values: Mapping[str, str | bytes], problems: Problems, jwt: JwtSource | None
) -> NewCertificate | None:
    """A Vault/OpenBao issuer from the `vault-*` inputs; nothing is called yet."""
    d = problems.dialect
    before = len(problems.errors)
    given = _set(values, GIVEN_INPUTS)
    if given:
        problems.add(
            f"give exactly one of {_sources(problems)}: {_names(problems, given)} "
            f"{_is_are(given)} set beside {d.mention('vault-addr')}",
            code="ambiguous-material",
            fix=f"With {d.mention('vault-addr')} the certificate and its key are made during "
            "the run; remove the given material (and its passphrase or password), or remove "
            f"{d.mention('vault-addr')}.",
        )
    address = _text(values, "vault-addr")
    problems.check(
        lambda: rules.https_url(address, d.ref("vault-addr"), ca_label=d.mention("vault-ca-cert"))
    )
    role = _text(values, "vault-role")
    if not role:
        problems.missing("vault-role", why=f" but {d.mention('vault-addr')} is set")
    token, auth_role = _text(values, "vault-token"), _text(values, "vault-auth-role")
    if token and auth_role:
        problems.add(
            f"give either {d.mention('vault-token')} or {d.mention('vault-auth-role')}, not both",
            code="ambiguous-vault-auth",
            fix=f"{d.mention('vault-auth-role')} logs in with a JWT; a static "
            f"{d.mention('vault-token')} is not needed then.",
        )
    elif not token and not auth_role:
        problems.add(
            f"no way to log in to Vault: {d.mention('vault-token')} and "
            f"{d.mention('vault-auth-role')} are both empty",
            code="missing-vault-auth",
            fix=f"Give {d.mention('vault-auth-role')} (a JWT login) or a "
            f"{d.mention('vault-token')}.",
        )
        problems.empty_hint(secret=True)
    jwt_only = [n for n in _set(values, _JWT_ONLY) if d.has(n)]
    if token and jwt_only:
        problems.add(
            f"{_names(problems, jwt_only)} {_is_are(jwt_only)} for the JWT login "
            f"({d.mention('vault-auth-role')}), not for {d.mention('vault-token')}",
            code="inapplicable-input",
            fix=f"Remove {_names(problems, jwt_only)}, or log in with "
            f"{d.mention('vault-auth-role')} instead.",
        )
    if auth_role and not token and jwt is not None:
        problems.check(jwt.check)
    ca_pem = values.get("vault-ca-cert") or None
    ca_text = None
    if ca_pem is not None:
        checked = problems.check(
            lambda: rules.ca_bundle(ca_pem, d.ref("vault-ca-cert"), "Vault's server certificate")
        )
        ca_text = _text(values, "vault-ca-cert") if checked else None
    key_kind = _text(values, "key-type") or None
    if key_kind is not None:
        problems.check(lambda: rules.key_kind(key_kind, d.ref("key-type"), material.KEY_KINDS))
    ttl = _text(values, "vault-ttl") or None
    if ttl is not None:
        problems.check(lambda: rules.vault_ttl(ttl, d.ref("vault-ttl")))
    if len(problems.errors) > before:
        return None
    audience = _text(values, "vault-audience") or None
    source = jwt
    try:
        settings = VaultSettings(
            address=address,
            role=role,
            pki_mount=_text(values, "vault-pki-mount") or DEFAULTS["vault-pki-mount"],
            token=token or None,
            jwt=(lambda: source(audience)) if auth_role and source is not None else None,
            jwt_role=auth_role or None,
            jwt_mount=_text(values, "vault-auth-mount") or DEFAULTS["vault-auth-mount"],
            namespace=_text(values, "vault-namespace") or None,
            ca_pem=ca_text,
            common_name=_text(values, "vault-common-name") or None,
            ttl=ttl,
            key_kind=key_kind,
        )
    except InputError as error:
        problems.errors.append(error)
        return None
    return NewCertificate(issuer=VaultPkiIssuer(settings))


def _given(
    values: Mapping[str, str | bytes], problems: Problems, mask: Callable[[str], None]
) -> NewCertificate | None:
    """The chain and key, or the PKCS#12; masks every derived form of the key."""
    d = problems.dialect
    chain, key = values.get("cert-chain", ""), values.get("private-key", "")
    passphrase = _text(values, "private-key-passphrase")
    p12, p12_password = values.get("pkcs12", ""), _text(values, "pkcs12-password")
    if p12 and (chain or key):
        problems.add(
            f"give exactly one of {_sources(problems)}: {d.names('cert-chain', 'private-key')} "
            f"and {d.mention('pkcs12')} are both set",
            code="ambiguous-material",
            fix="Remove the form you do not use.",
        )
        return None
    if p12:
        if passphrase:
            problems.add(
                f"{d.ref('private-key-passphrase')} applies to {d.mention('private-key')}; "
                f"for {d.mention('pkcs12')} use {d.mention('pkcs12-password')}",
                code="passphrase-mismatch",
                fix=f"Rename the input to {d.mention('pkcs12-password')}.",
            )
        return _load(problems, mask, p12=p12, password=p12_password)
    if p12_password:
        problems.add(
            f"{d.ref('pkcs12-password')} is set but {d.mention('pkcs12')} {d.empty}",
            code="missing-input",
            fix=f"Give the PKCS#12 file base64-encoded in {d.mention('pkcs12')}.",
        )
        problems.empty_hint(secret=True)
    if not chain and not key:
        check = (
            f"To check the live certificate only, ask for a dry run ({d.mention('dry-run')}) "
            "and give none of them."
        )
        problems.add(
            f"no certificate: {_sources(problems)} are all empty",
            code="missing-material",
            fix=f"Give the chain (PEM in any order, PKCS#7, ...) in {d.mention('cert-chain')} "
            f"and its key in {d.mention('private-key')}, "
            + (f"or a PKCS#12 file in {d.mention('pkcs12')}, " if d.has("pkcs12") else "")
            + f"or a Vault or OpenBao PKI to issue it ({d.mention('vault-addr')}). {check}",
        )
        problems.empty_hint(secret=True)
        return None
    if not chain:
        problems.missing("cert-chain", why=f" but {d.mention('private-key')} is set")
        return None
    if not key and d.chain_is_public:
        problems.missing("private-key", why=f" but {d.mention('cert-chain')} is set")
        return None
    return _load(problems, mask, chain=chain, key=key or None, passphrase=passphrase)


def _open(load: Callable[[bytes | None], T], passphrase: str, used: list[bool]) -> T:
    """`load` without the passphrase first; with it only when the input is encrypted.

    Appends to `used` whether the passphrase was needed, so that one given for an
    unencrypted key can be reported instead of silently ignored.
    """
    try:
        result = load(None)
    except InputError as error:
        if error.code != "key-encrypted" or not passphrase:
            raise
    else:
        used.append(False)
        return result
    used.append(True)
    return load(passphrase.encode("utf-8"))


def _load(
    problems: Problems,
    mask: Callable[[str], None],
    *,
    chain: str | bytes = "",
    key: str | bytes | None = None,
    passphrase: str = "",
    p12: str | bytes = "",
    password: str = "",
) -> NewCertificate | None:
    """Parse the material; mask every form of the key before returning."""
    d = problems.dialect
    used: list[bool] = []
    secret_input = p12 or key or chain
    private: PrivateKey | None
    try:
        if p12:
            certs, private = _open(
                lambda pw: material.load_pkcs12(p12, password=pw), password, used
            )
        else:
            certs, private = _chain_and_key(d.chain_is_public, chain, key, passphrase, used)
    except InputError as error:
        problems.errors.append(_swapped(problems, chain, key, error))
        return None
    if private is None:
        problems.missing("private-key", why=f" and {d.mention('cert-chain')} holds no private key")
        return None
    for form in material.secret_forms(private, secret_input):
        mask(form)
    if (passphrase or password) and not any(used):
        name = "pkcs12-password" if p12 else "private-key-passphrase"
        what = "the PKCS#12 file has no password" if p12 else "the private key is not encrypted"
        problems.warnings.append(
            f"{d.mention(name)} is set but {what}, so it was not used: check that this is "
            "the key you meant, or drop the passphrase"
        )
    return NewCertificate(chain=certs, key=private)


def _chain_and_key(
    chain_is_public: bool,
    chain: str | bytes,
    key: str | bytes | None,
    passphrase: str,
    used: list[bool],
) -> tuple[tuple[x509.Certificate, ...], PrivateKey | None]:
    """A public chain input holds certificates only; a chain file may be a PKCS#12 with
    its own key (and `passphrase` opens it), exactly as `inspect` reads it."""
    if chain_is_public:
        certs = material.load_chain(chain)
        bundled = None
    else:
        loaded = _open(lambda pw: material.load_material(chain, passphrase=pw), passphrase, used)
        certs, bundled = loaded.chain, loaded.key
    if key is None:
        return certs, bundled
    return certs, _open(lambda pw: material.load_key(key, passphrase=pw), passphrase, used)


def _swapped(
    problems: Problems, chain: str | bytes, key: str | bytes | None, error: InputError
) -> InputError:
    """`error`, or one that says the chain and key look swapped when they do."""
    if error.code != "private-key-in-chain" or not key:
        return error
    try:
        material.load_chain(key)
    except InputError:
        return error
    d = problems.dialect
    leaked = (
        " If the chain input was shared or logged, treat the key as leaked and issue a new one."
        if d.chain_is_public
        else ""
    )
    return InputError(
        f"{d.ref('cert-chain')} holds a private key and {d.mention('private-key')} holds "
        "certificates: the two look swapped",
        code="material-swapped",
        fix=f"Give the certificates in {d.mention('cert-chain')} and the private key in "
        f"{d.mention('private-key')}.{leaked}",
    )
