"""The inputs of an issued certificate (`vault-*`): exactly one source, no stray inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from material_kit import ClientMaterial, key_lines
from runner_kit import TARGET_INPUTS, RunnerDirs, audit, run_entrypoint

from cpi_cert_rotate.action.inputs import INPUTS, SECRET_INPUTS, build_settings
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.issuers import VaultPkiIssuer
from cpi_cert_rotate.request.build import Settings

VAULT = "https://vault.example:8200"
TOKEN = "hvs.vault-token-0123456789"
OIDC_ENV = {
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.actions.example/_apis?api-version=2.0",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runtime-bearer",
}
DEFAULTS = {"vault-pki-mount": "pki", "vault-auth-mount": "jwt"}  # the runner passes these


def _inputs(**changes: str) -> dict[str, str]:
    base = dict.fromkeys(INPUTS, "")
    base.update(DEFAULTS)
    base.update(TARGET_INPUTS)
    base.update({"vault-addr": VAULT, "vault-role": "cpi-client", "vault-token": TOKEN})
    base.update({k.replace("_", "-"): v for k, v in changes.items()})
    return base


class _IdToken:
    """Records the audiences asked for; stands in for `gha.id_token` (tested on its own)."""

    def __init__(self) -> None:
        self.audiences: list[str | None] = []

    def __call__(self, audience: str | None) -> str:
        self.audiences.append(audience)
        return "jwt-from-github"


def _build(
    inputs: dict[str, str], env: dict[str, str] | None = None, id_token: _IdToken | None = None
) -> tuple[Settings, list[str]]:
    masked: list[str] = []
    return build_settings(inputs, env or {}, masked.append, id_token), masked


def _error(inputs: dict[str, str], env: dict[str, str] | None = None) -> InputError:
    with pytest.raises(InputError) as caught:
        _build(inputs, env)
    return caught.value


def _issuer(settings: Settings) -> VaultPkiIssuer:
    issuer = settings.request.issuer
    assert isinstance(issuer, VaultPkiIssuer)
    return issuer


def test_vault_token_is_a_secret_input() -> None:
    assert "vault-token" in SECRET_INPUTS


def test_vault_addr_with_a_token_builds_an_issuer_and_no_material() -> None:
    settings, masked = _build(
        _inputs(
            vault_pki_mount="pki_int",
            vault_namespace="team-a",
            vault_common_name="orders-client",
            vault_ttl="2160h",
            key_type="ec-p256",
        )
    )
    request = settings.request
    assert request.chain == ()
    assert request.key is None
    assert request.renew_before is None  # the engine's issuer default (33%) applies
    vault = _issuer(settings).settings
    assert (vault.address, vault.role, vault.pki_mount) == (VAULT, "cpi-client", "pki_int")
    assert vault.token == TOKEN
    assert vault.jwt is None
    assert (vault.namespace, vault.common_name, vault.ttl) == ("team-a", "orders-client", "2160h")
    assert vault.key_kind == "ec-p256"
    assert masked == []  # nothing derived yet: the token input is masked by the caller


def test_jwt_login_fetches_the_oidc_token_only_when_asked() -> None:
    id_token = _IdToken()
    settings, _ = _build(
        _inputs(vault_token="", vault_auth_role="gha-rotate", vault_audience="https://vault"),
        OIDC_ENV,
        id_token,
    )
    vault = _issuer(settings).settings
    assert (vault.jwt_role, vault.jwt_mount, vault.token) == ("gha-rotate", "jwt", None)
    assert id_token.audiences == []  # nothing fetched while the inputs are checked
    assert vault.jwt is not None
    assert vault.jwt() == "jwt-from-github"
    assert id_token.audiences == ["https://vault"]


def test_jwt_login_without_an_audience_asks_for_githubs_default() -> None:
    id_token = _IdToken()
    settings, _ = _build(_inputs(vault_token="", vault_auth_role="r"), OIDC_ENV, id_token)
    jwt = _issuer(settings).settings.jwt
    assert jwt is not None
    jwt()
    assert id_token.audiences == [None]


def test_jwt_login_without_id_token_permission_says_how_to_grant_it() -> None:
    error = _error(_inputs(vault_token="", vault_auth_role="gha-rotate"))
    assert error.code == "no-id-token"
    assert "permissions: id-token: write" in error.hint()
    assert "forks" in error.hint()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"cert_chain": "x", "private_key": "y"}, "`cert-chain`, `private-key` are set"),
        ({"pkcs12": "eA=="}, "`pkcs12` is set"),
        ({"private_key_passphrase": "pp"}, "`private-key-passphrase` is set"),
        ({"pkcs12_password": "pw"}, "`pkcs12-password` is set"),
    ],
)
def test_given_material_beside_vault_addr_is_refused_by_name(
    changes: dict[str, str], named: str
) -> None:
    error = _error(_inputs(**changes))
    assert error.code == "ambiguous-material"
    assert str(error).startswith(
        "give exactly one of `cert-chain`/`private-key`, `pkcs12` or `vault-addr`: "
    )
    assert named in str(error)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"vault_role": "r"}, "`vault-role` is set"),
        ({"vault_token": TOKEN, "key_type": "ec-p256"}, "`vault-token`, `key-type` are set"),
        ({"vault_pki_mount": "pki_int"}, "`vault-pki-mount` is set"),
        ({"vault_auth_role": "r", "vault_audience": "a"}, "`vault-auth-role`, `vault-audience`"),
        ({"vault_ca_cert": "pem", "vault_ttl": "1h"}, "`vault-ca-cert`, `vault-ttl` are set"),
    ],
)
def test_vault_inputs_without_vault_addr_are_refused_by_name(
    client_material: ClientMaterial, changes: dict[str, str], named: str
) -> None:
    given = {
        "vault_addr": "",
        "vault_role": "",
        "vault_token": "",
        "cert_chain": client_material.chain_pem,
        "private_key": client_material.key_pem,
    }
    error = _error(_inputs(**{**given, **changes}))
    assert error.code == "missing-input"
    assert str(error).startswith("input `vault-addr` is empty but ")
    assert named in str(error)
    assert "vars.*" in error.hint()  # an empty variable is the usual cause


def test_the_defaults_the_runner_passes_are_not_stray_inputs(
    client_material: ClientMaterial,
) -> None:
    settings, _ = _build(
        _inputs(
            vault_addr="",
            vault_role="",
            vault_token="",
            cert_chain=client_material.chain_pem,
            private_key=client_material.key_pem,
        )
    )
    assert settings.request.issuer is None
    assert settings.request.chain[0] == client_material.leaf


def test_no_source_at_all_names_all_three() -> None:
    error = _error(_inputs(vault_addr="", vault_role="", vault_token=""))
    assert error.code == "missing-material"
    for name in ("cert-chain", "pkcs12", "vault-addr"):
        assert f"`{name}`" in str(error)


@pytest.mark.parametrize(
    ("changes", "code", "text"),
    [
        ({"vault_role": ""}, "missing-input", "`vault-role` is empty but `vault-addr` is set"),
        ({"vault_auth_role": "r"}, "ambiguous-vault-auth", "either `vault-token` or"),
        ({"vault_token": ""}, "missing-vault-auth", "no way to log in to Vault"),
        ({"vault_audience": "a"}, "inapplicable-input", "`vault-audience` is for the JWT"),
        ({"vault_auth_mount": "gh"}, "inapplicable-input", "`vault-auth-mount` is for the JWT"),
        ({"vault_addr": "http://vault.example:8200"}, "bad-url", "`vault-addr` must be an https"),
        ({"vault_addr": "vault.example:8200"}, "bad-url", "`vault-addr` must be an https"),
        ({"key_type": "rsa-1024"}, "bad-key-type", "`key-type` must be one of `rsa-2048`"),
        ({"key_type": "RSA"}, "bad-key-type", "not 'RSA'"),
        ({"vault_ca_cert": "not a pem"}, "bad-ca-cert", "`vault-ca-cert` is not a PEM"),
    ],
)
def test_each_vault_problem_has_its_code_and_names_the_input(
    changes: dict[str, str], code: str, text: str
) -> None:
    error = _error(_inputs(**changes), OIDC_ENV)
    assert error.code == code
    assert text in str(error)


def test_http_vault_address_fix_points_at_the_vault_ca_input() -> None:
    error = _error(_inputs(vault_addr="http://vault.example"))
    assert "`vault-ca-cert`" in error.hint()


def test_missing_login_gets_the_secrets_hint() -> None:
    error = _error(_inputs(vault_token=""), {"GITHUB_EVENT_NAME": "pull_request"})
    assert "triggered by `pull_request`" in error.hint()


def test_a_private_vault_ca_is_taken() -> None:
    ca_pem = trustme.CA().cert_pem.bytes().decode()
    settings, _ = _build(_inputs(vault_ca_cert=ca_pem))
    assert _issuer(settings).settings.ca_pem == ca_pem


def test_every_vault_problem_is_reported_at_once() -> None:
    error = _error(
        _inputs(
            vault_addr="http://vault",
            vault_role="",
            vault_auth_role="r",
            key_type="dsa",
            private_key="k",
        ),
        OIDC_ENV,
    )
    assert error.code == "invalid-inputs"
    assert str(error).startswith("5 input problems: ")
    for code_text in ("`private-key`", "https", "`vault-role`", "`vault-auth-role`", "key-type"):
        assert code_text in str(error)


def test_vault_token_is_masked_before_anything_is_printed(tmp_path: Path) -> None:
    """Even a run that fails on its inputs masks the token first (no landscape needed)."""
    from material_kit import mint_client_material

    leftover = mint_client_material()
    inputs = {
        **_inputs(app=""),  # bad input: the run stops before any call
        "private-key": leftover.key_pem,  # and a key beside vault-addr
    }
    dirs = RunnerDirs(tmp_path / "vault-mask")
    result = run_entrypoint(inputs, dirs)
    audit(result, [TOKEN, "s3cret-pw", *key_lines(leftover.key)], dirs)
    assert result.code == 2
    lines = result.stdout.splitlines()
    masks = [ln for ln in lines if ln.startswith("::add-mask::")]
    assert lines[: len(masks)] == masks  # every mask comes before the first other line
    assert f"::add-mask::{TOKEN}" in masks
    (error,) = result.commands("error")
    assert error.startswith("invalid-input [invalid-inputs]: 2 input problems")
    assert "input `app` is empty" in error
    assert "`private-key` is set beside `vault-addr`" in error
    assert result.outputs["reason"] == "invalid-input"
