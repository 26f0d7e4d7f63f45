"""The Action logging in to Cloud Foundry with the job's OIDC token, as the runner starts it.

The headline: examples/scheduled-passwordless.yml, its `with:` as written (variables
filled in with the sandbox's values, no secret anywhere), rotates the seeded app with the
new certificate issued by a real OpenBao: the CF login (`cf-oidc: user` through the
sandbox's IAS) and the Vault login both use the job's GitHub OIDC token, each asked for
its own audience. Every run ends with the log audit: no token, bearer or key line outside
`::add-mask::`, and every mask before the first line that could hold it.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from material_kit import key_lines
from oidc_kit import action_step, github_runner_env, resolve
from runner_kit import ROOT, ActionRun, RunnerDirs, audit, landscape_inputs, run_entrypoint

from cf_sandbox.oidc_issuer import DEFAULT_SUBJECT
from cf_sandbox.oidc_landscape import DIRECT_AUDIENCE, DIRECT_ORIGIN, PLATFORM_ORIGIN, ROTATOR_EMAIL
from cpi_cert_rotate.action.inputs import SECRET_INPUTS
from openbao_kit import OpenBao, sign_policy

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "scheduled-passwordless.yml"


@pytest.fixture
def landscape(landscape_factory: Any) -> Any:
    return landscape_factory(oidc=True)


def _go(
    tmp_path: Path, inputs: dict[str, str], env: dict[str, str] | None = None
) -> tuple[ActionRun, RunnerDirs]:
    dirs = RunnerDirs(tmp_path / f"run-{len(list(tmp_path.iterdir()))}")
    return run_entrypoint(inputs, dirs, env=env), dirs


def _app_key(ls: Any) -> Any:
    app = next(a for a in ls.state()["apps"] if a["name"] == ls.app)
    return serialization.load_pem_private_key(app["env"]["CLI_KEY"].encode(), None)


def _app_leaf(ls: Any) -> x509.Certificate:
    app = next(a for a in ls.state()["apps"] if a["name"] == ls.app)
    return x509.load_pem_x509_certificates(app["env"]["CLI_CHAIN"].encode())[0]


def _tokens(ls: Any) -> list[str]:
    """Every token GitHub's stand-in and IAS handed out, and the runner's bearer."""
    return [*ls.oidc.github.issued, *ls.oidc.ias.issued, ls.oidc.github.bearer]


def test_the_passwordless_example_rotates_with_no_stored_secret(
    landscape: Any, openbao: OpenBao, tmp_path: Path
) -> None:
    job, given = action_step(EXAMPLE)
    assert job["permissions"]["id-token"] == "write"
    assert not re.search(r"\$\{\{\s*secrets\.", EXAMPLE.read_text())
    ls, oidc = landscape, landscape.oidc
    # Vault as docs/vault.md sets it up: a PKI mount under a root SAP trusts, a role, and
    # a JWT auth role bound to this job's `sub` and to the example's vault-audience.
    mount = "pki-" + secrets.token_hex(4)
    openbao.enable_pki(mount, ls.sign_intermediate, common_name="Bao Issuing CA")
    openbao.create_role(
        mount, given["vault-role"], organization=["Sandbox Clients"], country=["DE"]
    )
    auth_mount = "jwt-" + secrets.token_hex(4)
    openbao.enable_jwt(
        auth_mount,
        oidc.github.key.public_pem(),
        given["vault-auth-role"],
        [given["vault-audience"]],
        [openbao.policy(sign_policy(mount, given["vault-role"]))],
        bound_claims={"sub": DEFAULT_SUBJECT},
    )
    variables = {
        "CF_API": ls.api_url,
        "CF_ORIGIN": PLATFORM_ORIGIN,
        "CF_OIDC_AUDIENCE": oidc.ias.issuer,
        "CF_ORG": ls.org,
        "CF_SPACE": ls.space,
        "VAULT_ADDR": openbao.address,
        "VAULT_NAMESPACE": "",
    }
    inputs = resolve(given, variables)
    # The sandbox's own names and private CAs (a real landscape needs none of the CA inputs:
    # its root stands in for one on SAP's list, which it cannot be on):
    inputs.update(
        {
            "trusted-roots": ls.trusted_root_pem,
            "app": ls.app,
            "service-instance": ls.service_instance,
            "vault-pki-mount": mount,
            "vault-auth-mount": auth_mount,
            "cf-ca-cert": ls.ca_pem,
            "vault-ca-cert": openbao.ca_pem,
        }
    )
    assert not [name for name in SECRET_INPUTS if inputs.get(name)]
    old_key, old_leaf = _app_key(ls), _app_leaf(ls)

    result, dirs = _go(tmp_path, inputs, github_runner_env(ls, tmp_path))
    new_key = _app_key(ls)
    audit(result, [*key_lines(old_key), *key_lines(new_key), *_tokens(ls)], dirs)

    assert result.code == 0, result.stdout + result.stderr
    assert result.outputs["reason"] == "rotated"
    assert _app_leaf(ls) != old_leaf
    assert result.outputs["issuer"] == "CN=Bao Issuing CA"
    # one token for Cloud Foundry (IAS's audience), then one for Vault (its audience)
    assert oidc.github.audiences == [oidc.ias.issuer, given["vault-audience"]]
    assert [e["user"] for e in oidc.ias.exchanges] == [ROTATOR_EMAIL]
    masked = set(result.commands("add-mask"))
    assert set(oidc.github.issued) <= masked
    assert oidc.github.bearer in masked
    assert "issued by Vault PKI" in result.stdout


def test_the_two_step_exchange_masks_the_ias_token(landscape: Any, tmp_path: Path) -> None:
    ls, oidc = landscape, landscape.oidc
    minted = ls.mint(cn="ntifext-client", days=90)
    inputs = landscape_inputs(
        ls,
        minted,
        cf_username="",
        cf_password="",
        cf_origin="",
        cf_oidc="user",
        cf_oidc_audience=oidc.ias.issuer,
        cf_oidc_exchange_url=oidc.ias.token_url,
        cf_oidc_exchange_client_id=oidc.platform_client_id,
    )
    result, dirs = _go(tmp_path, inputs, github_runner_env(ls, tmp_path))
    key = serialization.load_pem_private_key(minted.key_pem.encode(), None)
    audit(result, [*key_lines(key), *_tokens(ls)], dirs)

    assert result.code == 0, result.stdout + result.stderr
    assert result.outputs["fingerprint-sha256"] == minted.leaf_sha256
    (id_token,) = oidc.ias.issued
    assert id_token in result.commands("add-mask")
    assert [c["path"] for c in ls.calls() if c["server"] == "ias"] == ["/oauth2/token"]


def test_a_wrong_audience_fails_with_the_audience_to_set(landscape: Any, tmp_path: Path) -> None:
    ls = landscape
    inputs = landscape_inputs(
        ls,
        ls.mint(cn="ntifext-client", days=90),
        cf_username="",
        cf_password="",
        cf_origin=DIRECT_ORIGIN,
        cf_oidc="user",
        cf_oidc_audience="https://github.com/acme",
    )
    result, dirs = _go(tmp_path, inputs, github_runner_env(ls, tmp_path))
    audit(result, _tokens(ls), dirs)

    assert result.code == 1
    (error,) = result.commands("error")
    assert error.startswith("failed [oidc-wrong-audience]")
    assert f"set `cf-oidc-audience: {DIRECT_AUDIENCE}`" in result.summary
    assert not [c for c in ls.calls() if c["method"] != "GET" and c["path"].startswith("/v3/")]


def test_without_id_token_permission_nothing_is_called(landscape: Any, tmp_path: Path) -> None:
    ls = landscape
    calls_before = len(ls.calls())
    inputs = landscape_inputs(
        ls, None, cf_username="", cf_password="", cf_origin="", cf_oidc="user", dry_run="true"
    )
    result, dirs = _go(tmp_path, inputs)  # no ACTIONS_ID_TOKEN_REQUEST_* in the env
    audit(result, [], dirs)

    assert result.code == 2
    (error,) = result.commands("error")
    assert error.startswith("invalid-input [no-id-token]")
    assert "permissions: id-token: write" in result.summary
    assert ls.calls()[calls_before:] == []
