"""The Vault/OpenBao PKI issuer against a real OpenBao dev server (no mocks).

Each test gets its own PKI mount whose issuing CA is an intermediate under a test root
(`cf_sandbox.pki` as a library; no sandbox runs), so tests share one server per worker
and stay independent.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cf_sandbox.pki import Pki, cert_pem
from cpi_cert_rotate import material
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.issuers import IssuedMaterial, IssuerError, VaultPkiIssuer, VaultSettings
from openbao_kit import OpenBao, free_port_pair, jwt_claims, mint_jwt, sign_policy
from pki_factory import client_pki

LIVE_SUBJECT = x509.Name.from_rfc4514_string("CN=cpi-client,OU=Integration,O=Example Corp")


@dataclass
class Mount:
    """A PKI mount of its own with a role `client` (O=Example Corp) and the test root."""

    bao: OpenBao
    name: str
    root: x509.Certificate
    intermediate: x509.Certificate
    secrets_seen: list[str] = field(default_factory=list)

    def settings(self, **overrides: Any) -> VaultSettings:
        options: dict[str, Any] = {
            "address": self.bao.address,
            "role": "client",
            "pki_mount": self.name,
            "token": self.bao.root_token,
            "ca_pem": self.bao.ca_pem,
        }
        options.update(overrides)
        return VaultSettings(**options)

    def issue(self, live: x509.Certificate | None = None, **overrides: Any) -> IssuedMaterial:
        issuer = VaultPkiIssuer(self.settings(**overrides))
        return issuer.issue(copy_subject_from=live, on_secret=self.secrets_seen.append)

    def refusal(self, live: x509.Certificate | None = None, **overrides: Any) -> IssuerError:
        """The IssuerError of an issue that must fail, checked to hold no secret."""
        before = self.bao.issued_serials(self.name)
        with pytest.raises(IssuerError) as caught:
            self.issue(live, **overrides)
        assert self.bao.issued_serials(self.name) == before, "a refused issue issued something"
        text = f"{caught.value}\n{caught.value.hint()}\n{caught.value!r}"
        for secret in (self.bao.root_token, overrides.get("token"), *self.secrets_seen):
            if secret:
                assert secret not in text
        return caught.value


@pytest.fixture(scope="module")
def ca_operator() -> Pki:
    """A root that signs OpenBao's intermediate CSRs (the sandbox's PKI, no server)."""
    return Pki()


@pytest.fixture(scope="module")
def live() -> x509.Certificate:
    """The app's current certificate (from another CA): RSA 2048, CN, OU and O."""
    return client_pki(subject=LIVE_SUBJECT).leaf.cert


@pytest.fixture
def mount(openbao: OpenBao, ca_operator: Pki) -> Mount:
    def sign(csr_pem: str) -> str:
        return cert_pem(ca_operator.sign_intermediate(x509.load_pem_x509_csr(csr_pem.encode())))

    name = "pki-" + secrets.token_hex(4)
    intermediate_pem = openbao.enable_pki(name, sign)
    openbao.create_role(name, "client", organization=["Example Corp"])
    intermediate = x509.load_pem_x509_certificate(intermediate_pem.encode())
    return Mount(openbao, name, ca_operator.trusted_root.cert, intermediate)


# --- what is issued ------------------------------------------------------------------


def test_token_signs_a_chain_that_validates_under_the_root(
    mount: Mount, live: x509.Certificate
) -> None:
    issued = mount.issue(live)

    leaf, *issuers = issued.chain
    assert issuers == [mount.intermediate]  # leaf + intermediate; the root stays out
    assert leaf.issuer == mount.intermediate.subject
    validation = material.validate(issued.chain, issued.key, trusted_roots=(mount.root,))
    assert validation.errors == (), validation.codes
    assert validation.key_matches is True
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert mount.secrets_seen == []  # a given token is no new secret
    # OpenBao stored exactly this certificate: it signed our CSR, it never had the key
    serial = f"{leaf.serial_number:x}"
    assert {s.replace(":", "").lstrip("0") for s in mount.bao.issued_serials(mount.name)} == {
        serial.lstrip("0")
    }


def test_the_key_is_generated_here_and_only_its_public_half_is_in_the_leaf(
    mount: Mount, live: x509.Certificate
) -> None:
    first = mount.issue(live)
    second = mount.issue(live)

    assert material.key_matches(first.key, first.chain[0])
    assert material.key_matches(second.key, second.chain[0])
    assert not material.key_matches(first.key, live)  # a new key, not the live one
    assert not material.key_matches(first.key, second.chain[0])  # a new key every time
    assert "key=" not in repr(first)  # the dataclass leaves the key out of its repr


def test_subject_cn_is_copied_from_the_live_leaf_and_o_ou_come_from_the_role(
    mount: Mount, live: x509.Certificate
) -> None:
    # `sign` takes only the CN from the CSR; the role (O=Example Corp) sets the rest,
    # so the live leaf's OU=Integration is dropped unless the role has it too.
    leaf = mount.issue(live).chain[0]
    assert leaf.subject.rfc4514_string() == "CN=cpi-client,O=Example Corp"

    mount.bao.create_role(mount.name, "client", organization=["Example Corp"], ou=["Integration"])
    leaf = mount.issue(live).chain[0]
    assert leaf.subject == live.subject  # the same DN, attribute order included

    mount.bao.create_role(mount.name, "client", organization=["Other Org"])
    leaf = mount.issue(live).chain[0]
    assert leaf.subject.rfc4514_string() == "CN=cpi-client,O=Other Org"


def test_common_name_overrides_the_live_cn(mount: Mount, live: x509.Certificate) -> None:
    leaf = mount.issue(live, common_name="cpi-client-2026").chain[0]

    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "cpi-client-2026"
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Example Corp"
    )


def test_first_issue_without_a_live_leaf_needs_the_common_name(mount: Mount) -> None:
    issued = mount.issue(None, common_name="cpi-client")

    assert issued.chain[0].subject.rfc4514_string() == "CN=cpi-client,O=Example Corp"
    assert material.key_kind_of(issued.chain[0].public_key()) == "rsa-2048"  # the default

    before = mount.bao.issued_serials(mount.name)
    with pytest.raises(InputError) as caught:
        mount.issue(None)
    assert caught.value.code == "vault-common-name"
    assert mount.bao.issued_serials(mount.name) == before


def test_key_kind_follows_the_live_leaf_unless_given(mount: Mount) -> None:
    live_ec = client_pki(subject=LIVE_SUBJECT, key_kind="ec-p256").leaf.cert

    follows = mount.issue(live_ec).chain[0].public_key()
    assert isinstance(follows, ec.EllipticCurvePublicKey)
    assert follows.curve.name == "secp256r1"

    given = mount.issue(live_ec, key_kind="rsa-3072").chain[0].public_key()
    assert isinstance(given, rsa.RSAPublicKey)
    assert given.key_size == 3072


def test_ttl_is_honoured(mount: Mount, live: x509.Certificate) -> None:
    started = dt.datetime.now(dt.UTC)
    leaf = mount.issue(live, ttl="36h").chain[0]

    lifetime = leaf.not_valid_after_utc - started
    assert dt.timedelta(hours=36) - dt.timedelta(minutes=1) < lifetime
    assert lifetime < dt.timedelta(hours=36) + dt.timedelta(minutes=1)
    # without ttl the role's (720h) applies
    default = mount.issue(live).chain[0]
    assert default.not_valid_after_utc - started > dt.timedelta(hours=719)


# --- JWT login -----------------------------------------------------------------------


@dataclass
class JwtSetup:
    mount: str
    role: str
    key: ec.EllipticCurvePrivateKey


@pytest.fixture
def jwt_auth(openbao: OpenBao, mount: Mount) -> JwtSetup:
    key = ec.generate_private_key(ec.SECP256R1())
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    auth_mount = "jwt-" + secrets.token_hex(4)
    policy = openbao.policy(sign_policy(mount.name, "client"))
    openbao.enable_jwt(
        auth_mount, public_pem.decode(), "gha", ["cpi-cert-rotate"], [policy], token_num_uses=5
    )
    return JwtSetup(auth_mount, "gha", key)


def test_jwt_login_signs_and_hands_each_secret_over_before_it_is_used(
    mount: Mount, jwt_auth: JwtSetup, live: x509.Certificate
) -> None:
    bao = mount.bao
    fetched: list[str] = []

    def fetch_jwt() -> str:
        fetched.append(mint_jwt(jwt_auth.key, jwt_claims("cpi-cert-rotate")))
        return fetched[-1]

    accessors = bao.token_accessors()
    seen: list[tuple[str, Any]] = []

    def on_secret(secret: str) -> None:
        if fetched and secret == fetched[0]:  # before the login: no token made yet
            seen.append(("jwt", bao.token_accessors() == accessors))
        else:  # before the sign: the token is fresh, nothing issued yet
            seen.append(("token", bao.lookup_token(secret)["num_uses"]))
            seen.append(("serials", len(bao.issued_serials(mount.name))))

    issuer = VaultPkiIssuer(
        mount.settings(token=None, jwt=fetch_jwt, jwt_role=jwt_auth.role, jwt_mount=jwt_auth.mount)
    )
    assert fetched == []  # the JWT is fetched only when a certificate is needed
    issued = issuer.issue(copy_subject_from=live, on_secret=on_secret)

    assert len(fetched) == 1
    assert seen == [("jwt", True), ("token", 5), ("serials", 0)]
    assert material.validate(issued.chain, issued.key, trusted_roots=(mount.root,)).ok
    assert len(bao.issued_serials(mount.name)) == 1
    (new_accessor,) = bao.token_accessors() - accessors
    used = bao.call("POST", "auth/token/lookup-accessor", {"accessor": new_accessor})["data"]
    assert used["num_uses"] == 4  # exactly one use: the sign


def test_jwt_for_another_audience_is_refused(
    mount: Mount, jwt_auth: JwtSetup, live: x509.Certificate
) -> None:
    wrong = mint_jwt(jwt_auth.key, jwt_claims("someone-else"))
    error = mount.refusal(
        live, token=None, jwt=lambda: wrong, jwt_role=jwt_auth.role, jwt_mount=jwt_auth.mount
    )

    assert f"/v1/auth/{jwt_auth.mount}/login" in str(error)
    assert "aud" in str(error)
    assert "bound_audiences" in error.hint()
    assert "allowed_domains" not in error.hint()  # a login, not a signing refusal
    assert wrong not in f"{error} {error.hint()}"


# --- refusals ------------------------------------------------------------------------


def test_unknown_role(mount: Mount, live: x509.Certificate) -> None:
    error = mount.refusal(live, role="no-such-role")

    assert "400" in str(error)
    assert "unknown role: no-such-role" in str(error)
    assert "does it exist?" in error.hint()


def test_a_role_that_refuses_the_common_name(mount: Mount, live: x509.Certificate) -> None:
    mount.bao.create_role(
        mount.name, "narrow", allow_any_name=False, allowed_domains=["example.com"]
    )
    error = mount.refusal(live, role="narrow")

    assert "400" in str(error)
    assert "cpi-client" in str(error)
    assert "not allowed" in str(error)
    assert "allowed_domains" in error.hint()


def test_a_role_enforcing_hostnames_refuses_a_cn_with_spaces(
    mount: Mount, live: x509.Certificate
) -> None:
    # `enforce_hostnames` is on in a role by default (the kit turns it off): then a CN
    # such as "CPI Client" is refused even with `allow_any_name`.
    mount.bao.create_role(mount.name, "hosts", enforce_hostnames=True)
    error = mount.refusal(live, role="hosts", common_name="CPI Client")
    assert "common name CPI Client not allowed by this role" in str(error)
    assert "enforce_hostnames" in error.hint()

    leaf = mount.issue(live, common_name="CPI Client").chain[0]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CPI Client"


def test_a_role_that_refuses_the_key_type(mount: Mount, live: x509.Certificate) -> None:
    mount.bao.create_role(mount.name, "rsa-only", key_type="rsa", key_bits=2048)
    error = mount.refusal(live, role="rsa-only", key_kind="ec-p256")

    assert "400" in str(error)
    assert "rsa" in str(error)
    assert "key_type" in error.hint()


def test_a_token_without_the_sign_policy_is_forbidden(mount: Mount, live: x509.Certificate) -> None:
    token = mount.bao.token_with_policy(sign_policy(mount.name, "some-other-role"))
    error = mount.refusal(live, token=token)

    assert "403" in str(error)
    assert "permission denied" in str(error)
    assert f"/v1/{mount.name}/sign/client" in str(error)
    assert "`update`" in error.hint()


def test_a_wrong_mount_is_not_found(mount: Mount, live: x509.Certificate) -> None:
    error = mount.refusal(live, pki_mount="pki-nowhere")

    assert "404" in str(error)
    assert "/v1/pki-nowhere/sign/client" in str(error)
    assert "check the PKI mount" in error.hint()


def test_an_unreachable_address(mount: Mount, live: x509.Certificate) -> None:
    address = f"https://127.0.0.1:{free_port_pair()}"
    error = mount.refusal(live, address=address)

    assert f"cannot reach Vault at {address}" in str(error)
    assert "ConnectionError" in str(error)
    assert "Check the address" in error.hint()


def test_the_server_ca_not_given_is_a_tls_failure(mount: Mount, live: x509.Certificate) -> None:
    error = mount.refusal(live, ca_pem=None)

    assert "TLS handshake failed" in str(error)
    assert "vault-ca-cert" in str(error)


# --- settings ------------------------------------------------------------------------


def _jwt() -> str:
    return "a.b.c"


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"address": "http://127.0.0.1:8200", "token": "t"}, "bad-url"),
        ({"address": "vault.example.com", "token": "t"}, "bad-url"),
        ({"token": "t", "jwt": _jwt, "jwt_role": "r"}, "ambiguous-vault-auth"),
        ({}, "missing-vault-auth"),
        ({"jwt": _jwt}, "missing-vault-auth"),
        ({"token": "t", "key_kind": "ed25519"}, "bad-key-type"),
        ({"token": "t", "key_kind": "rsa-1024"}, "bad-key-type"),
    ],
)
def test_settings_are_checked(options: dict[str, Any], code: str) -> None:
    options = {"address": "https://vault.example.com:8200", "role": "client", **options}
    with pytest.raises(InputError) as caught:
        VaultSettings(**options)

    assert caught.value.code == code
    assert caught.value.fix


def test_settings_do_not_show_secrets() -> None:
    settings = VaultSettings(
        address="https://vault.example.com:8200", role="client", token="s.very-secret"
    )
    assert "very-secret" not in repr(settings)
    assert "very-secret" not in VaultPkiIssuer(settings).describe()
