"""The Action issuing from a real OpenBao, as the runner starts it (`entrypoint.py`).

OpenBao (tests/openbao_kit.py, one dev server per worker) has a PKI mount whose issuing
CA the sandbox's trusted root signed, so CPI accepts its leaves. The seeded app's live
certificate is two thirds through its life: with `vault-addr` and no `renew-before`
(33% by default) a rotation is due. Every run ends with the log audit of
test_action_runner.py: no key line, token or JWT outside `::add-mask::`, masks first.

The JWT scenario reaches GitHub's OIDC endpoint as the sandbox stands in for it
(`cf_sandbox.oidc_issuer`, tests/action/oidc_kit.py): through
`ACTIONS_ID_TOKEN_REQUEST_URL`, trusted via `SSL_CERT_FILE`, handing out a JWT signed by
a key OpenBao's JWT auth method trusts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from material_kit import key_lines
from oidc_kit import github_runner_env
from runner_kit import ActionRun, RunnerDirs, audit, landscape_inputs, run_entrypoint

from cf_sandbox.oidc_issuer import DEFAULT_SUBJECT, OidcIssuer
from openbao_kit import OpenBao, sign_policy

pytestmark = pytest.mark.e2e

ROLE = "cpi-client"
AUDIENCE = "https://vault.cpi-ops.example"


@dataclass
class Pki:
    """A PKI mount of its own on the worker's OpenBao, its CA under the landscape's root."""

    bao: OpenBao
    mount: str
    intermediate: x509.Certificate
    token: str

    def serials(self) -> set[str]:
        """Serials the mount issued, as lowercase hex without colons or leading zeros."""
        return {s.replace(":", "").lstrip("0") for s in self.bao.issued_serials(self.mount)}


@pytest.fixture
def landscape(landscape_factory: Any) -> Any:
    """A landscape with GitHub's stand-in (oidc=True) for the JWT login."""
    return landscape_factory(oidc=True)


@pytest.fixture
def pki(openbao: OpenBao, landscape: Any) -> Pki:
    mount = "pki-" + secrets.token_hex(4)
    pem = openbao.enable_pki(mount, landscape.sign_intermediate, common_name="Bao Issuing CA")
    # C and O as in the live leaf: `sign` takes only the CN from the CSR
    openbao.create_role(mount, ROLE, organization=["Sandbox Clients"], country=["DE"])
    token = openbao.token_with_policy(sign_policy(mount, ROLE))
    return Pki(openbao, mount, x509.load_pem_x509_certificate(pem.encode()), token)


def _inputs(ls: Any, pki: Pki, **changes: str) -> dict[str, str]:
    """A workflow's `with:` for an issued certificate; the runner adds action.yml defaults."""
    inputs = landscape_inputs(ls, None)
    inputs.update(
        {
            "vault-addr": pki.bao.address,
            "vault-pki-mount": pki.mount,
            "vault-role": ROLE,
            "vault-token": pki.token,
            "vault-auth-mount": "jwt",
            "vault-ca-cert": pki.bao.ca_pem,
        }
    )
    inputs.update({k.replace("_", "-"): v for k, v in changes.items()})
    return {name: value for name, value in inputs.items() if value}


def _app_key(ls: Any) -> Any:
    app = next(a for a in ls.state()["apps"] if a["name"] == ls.app)
    return serialization.load_pem_private_key(app["env"]["CLI_KEY"].encode(), None)


def _app_chain(ls: Any) -> list[x509.Certificate]:
    app = next(a for a in ls.state()["apps"] if a["name"] == ls.app)
    return x509.load_pem_x509_certificates(app["env"]["CLI_CHAIN"].encode())


def _go(
    tmp_path: Path, inputs: dict[str, str], env: dict[str, str] | None = None
) -> tuple[ActionRun, RunnerDirs]:
    dirs = RunnerDirs(tmp_path / f"run-{len(list(tmp_path.iterdir()))}")
    return run_entrypoint(inputs, dirs, env=env), dirs


def test_vault_token_rotation_issues_once_and_passes_the_audit(
    landscape: Any, pki: Pki, tmp_path: Path
) -> None:
    old_key = _app_key(landscape)
    old_leaf = _app_chain(landscape)[0]
    inputs = _inputs(landscape, pki)
    result, dirs = _go(tmp_path, inputs)
    new_key = _app_key(landscape)
    audit(result, [*key_lines(old_key), *key_lines(new_key), pki.token, landscape.password], dirs)

    assert result.code == 0, result.stdout + result.stderr
    leaf, *issuers = _app_chain(landscape)
    assert issuers == [pki.intermediate]
    leaf.verify_directly_issued_by(pki.intermediate)
    assert leaf.subject == old_leaf.subject
    assert pki.serials() == {_serial(leaf)}  # exactly one certificate issued
    out = result.outputs
    assert (out["rotated"], out["reason"]) == ("true", "rotated")
    assert out["fingerprint-sha256"] == leaf.fingerprint(_sha256()).hex()
    assert out["previous-fingerprint-sha256"] == old_leaf.fingerprint(_sha256()).hex()
    assert out["issuer"] == pki.intermediate.subject.rfc4514_string()
    assert x509.load_pem_x509_certificate(out["leaf-pem"].encode()) == leaf
    assert "### ✅ Certificate rotated" in result.summary
    assert "| | before | after |" in result.summary
    groups = [g.removeprefix("step ") for g in result.commands("group")]
    assert groups[:4] == ["observe", "issue", "material", "lock"], groups
    assert result.commands("error") == []
    assert f"issued by Vault PKI {pki.bao.address}" in result.stdout
    assert "renew-before 33% (the default with an issuer)" in result.stdout
    masked = set(result.commands("add-mask"))
    assert pki.token in masked
    assert set(key_lines(new_key)) & masked  # the generated key, masked by the engine


def test_vault_dry_run_issues_nothing_and_still_renders_everything(
    landscape: Any, pki: Pki, tmp_path: Path
) -> None:
    live = _app_chain(landscape)[0]
    result, dirs = _go(tmp_path, _inputs(landscape, pki, dry_run="true"))
    audit(result, [*key_lines(_app_key(landscape)), pki.token, landscape.password], dirs)

    assert result.code == 0, result.stdout + result.stderr
    assert pki.serials() == set()
    assert _app_chain(landscape)[0] == live
    out = result.outputs
    assert (out["rotated"], out["reason"]) == ("false", "dry-run")
    assert out["fingerprint-sha256"] == live.fingerprint(_sha256()).hex()  # in force
    assert out["leaf-pem"] == ""
    assert "#### Plan (dry run: nothing was changed)" in result.summary
    assert f"have Vault PKI {pki.bao.address}" in result.summary
    assert "| | live (unchanged) |\n|---|---|" in result.summary


@dataclass
class GitHubOidc:
    """GitHub's token endpoint (the sandbox's stand-in) and the runner's env for it."""

    issuer: OidcIssuer
    env: dict[str, str]

    @property
    def bearer(self) -> str:
        return self.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]


@pytest.fixture
def github_oidc(landscape: Any, tmp_path: Path) -> GitHubOidc:
    return GitHubOidc(landscape.oidc.github, github_runner_env(landscape, tmp_path))


def test_jwt_login_with_the_jobs_oidc_token_rotates(
    landscape: Any,
    pki: Pki,
    github_oidc: GitHubOidc,
    tmp_path: Path,
) -> None:
    oidc = github_oidc
    auth_mount = "jwt-" + secrets.token_hex(4)
    policy = pki.bao.policy(sign_policy(pki.mount, ROLE))
    accessors = pki.bao.token_accessors()
    pki.bao.enable_jwt(
        auth_mount,
        oidc.issuer.key.public_pem(),
        "gha-rotate",
        [AUDIENCE],
        [policy],
        bound_claims={"sub": DEFAULT_SUBJECT},
    )
    old_key = _app_key(landscape)
    inputs = _inputs(
        landscape,
        pki,
        vault_token="",
        vault_auth_role="gha-rotate",
        vault_auth_mount=auth_mount,
        vault_audience=AUDIENCE,
    )
    result, dirs = _go(tmp_path, inputs, oidc.env)
    (jwt,) = oidc.issuer.issued
    new_key = _app_key(landscape)
    secret_values = [*key_lines(old_key), *key_lines(new_key), landscape.password]
    audit(result, [*secret_values, jwt, oidc.bearer], dirs)

    assert result.code == 0, result.stdout + result.stderr
    (call,) = [c for c in landscape.calls() if c["server"] == "github"]
    assert (call["path"], call["status"]) == ("/_apis/idtoken", 200)  # the bearer was right
    assert oidc.issuer.audiences == [AUDIENCE]
    assert len(pki.bao.token_accessors() - accessors) == 1  # one login
    assert result.outputs["reason"] == "rotated"
    leaf = _app_chain(landscape)[0]
    leaf.verify_directly_issued_by(pki.intermediate)
    assert pki.serials() == {_serial(leaf)}
    masked = result.commands("add-mask")
    assert jwt in masked
    # the Vault token from the login: one more single-line mask, neither key nor input
    others = set(masked) - set(key_lines(new_key)) - {jwt, landscape.password}
    assert any(m.startswith(("hvs.", "s.")) for m in others), others


def test_jwt_login_without_id_token_permission_fails_before_any_call(
    landscape: Any, pki: Pki, tmp_path: Path
) -> None:
    calls_before = len(landscape.calls())
    inputs = _inputs(landscape, pki, vault_token="", vault_auth_role="gha-rotate")
    result, dirs = _go(tmp_path, inputs)
    audit(result, [landscape.password], dirs)

    assert result.code == 2
    (error,) = result.commands("error")
    assert error.startswith("invalid-input [no-id-token]")
    assert "permissions: id-token: write" in result.summary
    assert landscape.calls()[calls_before:] == []


def _serial(cert: x509.Certificate) -> str:
    return f"{cert.serial_number:x}"


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()
