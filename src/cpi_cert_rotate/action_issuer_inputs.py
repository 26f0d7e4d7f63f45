"""The Action's inputs for the new certificate: given (chain and key, or PKCS#12) or issued.

Exactly one source: `cert-chain` with `private-key`, `pkcs12`, or `vault-addr` (a key
made in memory, a CSR signed by a Vault or OpenBao PKI role). The inputs of one source
are refused beside another, with a message that names them, so that a leftover
`private-key` cannot be ignored silently while Vault issues. Problems are collected in
`action_inputs.Problems`, like every other input's.

Given material is parsed here and every derived form of its key masked at once. For
Vault nothing secret exists yet: the token input is masked with the other secret
inputs, and the GitHub OIDC token is fetched (and masked) only when the engine asks
the issuer for a certificate, after it decided that a rotation is due.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509

from . import gha, material
from .errors import InputError
from .issuers import Issuer, VaultPkiIssuer, VaultSettings
from .models import PrivateKey

if TYPE_CHECKING:
    from .action_inputs import Problems

GIVEN_INPUTS: tuple[str, ...] = (
    "cert-chain",
    "private-key",
    "private-key-passphrase",
    "pkcs12",
    "pkcs12-password",
)
VAULT_INPUTS: tuple[str, ...] = (
    "vault-addr",
    "vault-pki-mount",
    "vault-role",
    "vault-token",
    "vault-auth-role",
    "vault-auth-mount",
    "vault-audience",
    "vault-namespace",
    "vault-ca-cert",
    "vault-common-name",
    "vault-ttl",
    "key-type",
)
CERTIFICATE_INPUTS = GIVEN_INPUTS + VAULT_INPUTS
"""The certificate's inputs in action.yml's order."""

CERTIFICATE_SECRET_INPUTS: tuple[str, ...] = (
    "private-key",
    "private-key-passphrase",
    "pkcs12",
    "pkcs12-password",
    "vault-token",
)

VAULT_DEFAULTS: Mapping[str, str] = {"vault-pki-mount": "pki", "vault-auth-mount": "jwt"}
"""Defaults of action.yml: the runner passes them whether the step sets them or not."""

_JWT_ONLY = ("vault-auth-mount", "vault-audience")

_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(-----END \1PRIVATE KEY-----|\Z)", re.DOTALL
)

IdToken = Callable[[str | None], str]
"""Fetches the job's OIDC token for an audience (`gha.id_token`)."""


@dataclass(frozen=True)
class NewCertificate:
    """Where the new certificate comes from: the given chain and key, or an issuer."""

    chain: tuple[x509.Certificate, ...] = ()
    key: PrivateKey | None = field(default=None, repr=False)
    issuer: Issuer | None = None


def chain_key_blocks(chain_text: str) -> list[str]:
    """Private-key blocks pasted into the (public, unmasked) chain input, to mask them."""
    return [match.group(0) for match in _PRIVATE_KEY_BLOCK.finditer(chain_text)]


def new_certificate(
    inputs: Mapping[str, str],
    env: Mapping[str, str],
    problems: Problems,
    mask: Callable[[str], None],
    id_token: IdToken | None = None,
    *,
    check_only_allowed: bool = False,
) -> NewCertificate | None:
    """The certificate's source, or None after adding its problems to `problems`.

    `mask` receives every derived form of a given key before this returns. `id_token`
    (default `gha.id_token`) is called only when the issuer logs in to Vault. With
    `check_only_allowed` (a dry run) no source at all is fine: the run then only checks
    the live certificate, and a check needs no private key.
    """
    if inputs.get("vault-addr"):
        return _issuer(inputs, env, problems, id_token or gha.id_token)
    stray = _set(inputs, VAULT_INPUTS)
    if stray:
        problems.add(
            f"input `vault-addr` is empty but {_names(stray)} {_is_are(stray)} set",
            code="missing-input",
            fix="Set `vault-addr` to have the certificate issued there, or remove the "
            "`vault-*` inputs (and `key-type`), which apply only to an issued certificate.",
        )
        problems.empty_hint(secret=False)
        return None
    if check_only_allowed and not _set(inputs, GIVEN_INPUTS):
        return NewCertificate()
    loaded = _material(inputs, problems, mask)
    return NewCertificate(chain=loaded[0], key=loaded[1]) if loaded else None


def _set(inputs: Mapping[str, str], names: tuple[str, ...]) -> list[str]:
    """The inputs of `names` given a value other than their action.yml default."""
    return [n for n in names if inputs.get(n, "") not in ("", VAULT_DEFAULTS.get(n, ""))]


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _is_are(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"


def _issuer(
    inputs: Mapping[str, str], env: Mapping[str, str], problems: Problems, id_token: IdToken
) -> NewCertificate | None:
    """A Vault/OpenBao issuer from the `vault-*` inputs; nothing is called yet."""
    before = len(problems.errors)
    given = _set(inputs, GIVEN_INPUTS)
    if given:
        problems.add(
            f"give exactly one of `cert-chain`/`private-key`, `pkcs12` or `vault-addr`: "
            f"{_names(given)} {_is_are(given)} set beside `vault-addr`",
            code="ambiguous-material",
            fix="With `vault-addr` the certificate and its key are made during the run; "
            "remove the given material (and its passphrase or password) from `with:`, or "
            "remove `vault-addr`.",
        )
    address = inputs["vault-addr"]
    problems.check_https(address, "vault-addr", ca_input="vault-ca-cert")
    if not inputs.get("vault-role"):
        problems.missing("vault-role", why=" but `vault-addr` is set")
    token, auth_role = inputs.get("vault-token", ""), inputs.get("vault-auth-role", "")
    if token and auth_role:
        problems.add(
            "give either `vault-token` or `vault-auth-role`, not both",
            code="ambiguous-vault-auth",
            fix="`vault-auth-role` logs in with the job's GitHub OIDC token; a static "
            "`vault-token` is not needed then.",
        )
    elif not token and not auth_role:
        problems.add(
            "no way to log in to Vault: `vault-token` and `vault-auth-role` are both empty",
            code="missing-vault-auth",
            fix="Give `vault-auth-role` (JWT login with the job's GitHub OIDC token, needs "
            "`permissions: id-token: write`) or a `vault-token` from a secret.",
        )
        problems.empty_hint(secret=True)
    jwt_only = _set(inputs, _JWT_ONLY)
    if token and jwt_only:
        problems.add(
            f"{_names(jwt_only)} {_is_are(jwt_only)} for the JWT login (`vault-auth-role`), "
            "not for `vault-token`",
            code="inapplicable-input",
            fix=f"Remove {_names(jwt_only)}, or log in with `vault-auth-role` instead.",
        )
    if auth_role and not token:
        try:
            gha.id_token_request(env)
        except InputError as error:
            problems.errors.append(error)
    ca_pem = inputs.get("vault-ca-cert") or None
    if ca_pem is not None:
        problems.check_ca(ca_pem, "vault-ca-cert", "Vault's server certificate")
    key_kind = inputs.get("key-type") or None
    if key_kind is not None and key_kind not in material.KEY_KINDS:
        problems.add(
            f"input `key-type` must be one of {_names(list(material.KEY_KINDS))}, not {key_kind!r}",
            code="bad-key-type",
            fix="Leave it empty to keep the live certificate's key type.",
        )
    if len(problems.errors) > before:
        return None
    audience = inputs.get("vault-audience") or None
    try:
        settings = VaultSettings(
            address=address,
            role=inputs["vault-role"],
            pki_mount=inputs.get("vault-pki-mount") or VAULT_DEFAULTS["vault-pki-mount"],
            token=token or None,
            jwt=(lambda: id_token(audience)) if auth_role else None,
            jwt_role=auth_role or None,
            jwt_mount=inputs.get("vault-auth-mount") or VAULT_DEFAULTS["vault-auth-mount"],
            namespace=inputs.get("vault-namespace") or None,
            ca_pem=ca_pem,
            common_name=inputs.get("vault-common-name") or None,
            ttl=inputs.get("vault-ttl") or None,
            key_kind=key_kind,
        )
    except InputError as error:
        problems.errors.append(error)
        return None
    return NewCertificate(issuer=VaultPkiIssuer(settings))


def _material(
    inputs: Mapping[str, str], problems: Problems, mask: Callable[[str], None]
) -> tuple[tuple[x509.Certificate, ...], PrivateKey] | None:
    """Exactly one of: `cert-chain` with `private-key`, or `pkcs12`. Masks derived forms."""
    chain_text, key_text = inputs.get("cert-chain", ""), inputs.get("private-key", "")
    passphrase = inputs.get("private-key-passphrase", "")
    p12_text, p12_password = inputs.get("pkcs12", ""), inputs.get("pkcs12-password", "")
    if p12_text and (chain_text or key_text):
        problems.add(
            "give exactly one of `cert-chain`/`private-key`, `pkcs12` or `vault-addr`: "
            "`cert-chain`/`private-key` and `pkcs12` are both set",
            code="ambiguous-material",
            fix="Remove the form you do not use from the step's `with:`.",
        )
        return None
    if p12_text:
        if passphrase:
            problems.add(
                "input `private-key-passphrase` applies to `private-key`; for `pkcs12` "
                "use `pkcs12-password`",
                code="passphrase-mismatch",
                fix="Rename the input to `pkcs12-password`.",
            )
        return _load(problems, mask, p12_text, p12_password=p12_password)
    if p12_password:
        problems.add(
            "input `pkcs12-password` is set but `pkcs12` is empty",
            code="missing-input",
            fix="Give the PKCS#12 file base64-encoded in `pkcs12`.",
        )
        problems.empty_hint(secret=True)
    if not chain_text and not key_text:
        problems.add(
            "no certificate: `cert-chain`/`private-key`, `pkcs12` and `vault-addr` are all empty",
            code="missing-material",
            fix="Give the PEM chain (leaf first or any order) in `cert-chain` and its key in "
            "`private-key`, or the base64 of a PKCS#12 file in `pkcs12`, or a Vault or "
            "OpenBao PKI to issue it (`vault-addr`, `vault-role` and a way to log in). "
            "To check the live certificate only, set `dry-run: true` and give none of them.",
        )
        problems.empty_hint(secret=True)
        return None
    if not chain_text:
        problems.missing("cert-chain", why=" but `private-key` is set")
    if not key_text:
        problems.missing("private-key", why=" but `cert-chain` is set")
    if not chain_text or not key_text:
        return None
    return _load(problems, mask, key_text, chain_text=chain_text, passphrase=passphrase)


def _load(
    problems: Problems,
    mask: Callable[[str], None],
    secret_text: str,
    *,
    chain_text: str = "",
    passphrase: str = "",
    p12_password: str = "",
) -> tuple[tuple[x509.Certificate, ...], PrivateKey] | None:
    """Parse the material; mask every form of the key before returning."""
    try:
        if chain_text:
            chain = material.load_chain(chain_text)
            key = material.load_key(secret_text, passphrase=_bytes(passphrase))
        else:  # the PKCS#12 file, base64 (material also takes it raw)
            chain, key = material.load_pkcs12(secret_text, password=_bytes(p12_password))
    except InputError as error:
        problems.errors.append(error)
        return None
    for form in material.secret_forms(key, secret_text):
        mask(form)
    return chain, key


def _bytes(secret: str) -> bytes | None:
    return secret.encode("utf-8") if secret else None
