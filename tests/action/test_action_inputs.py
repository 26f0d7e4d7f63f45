"""Reading and checking the Action's inputs the way the runner passes them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cryptography import x509
from material_kit import ClientMaterial, key_lines
from runner_kit import TARGET_INPUTS

from cpi_cert_rotate.action.inputs import (
    INPUTS,
    SECRET_INPUTS,
    build_settings,
    chain_key_blocks,
    read_inputs,
)
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.models import Strategy
from cpi_cert_rotate.request.build import Settings

ROOT = Path(__file__).resolve().parents[2]


def _inputs(material: ClientMaterial, **changes: str) -> dict[str, str]:
    base = dict.fromkeys(INPUTS, "")
    base.update(TARGET_INPUTS)
    base.update({"cert-chain": material.chain_pem, "private-key": material.key_pem})
    base.update({k.replace("_", "-"): v for k, v in changes.items()})
    return base


def _build(inputs: dict[str, str], env: dict[str, str] | None = None) -> tuple[Settings, list[str]]:
    masked: list[str] = []
    return build_settings(inputs, env or {}, masked.append), masked


def _error(inputs: dict[str, str], env: dict[str, str] | None = None) -> InputError:
    with pytest.raises(InputError) as caught:
        _build(inputs, env)
    return caught.value


def test_every_action_yml_input_is_read_and_no_other() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert list(action["inputs"]) == list(INPUTS)
    assert set(SECRET_INPUTS) <= set(INPUTS)


def test_inputs_are_read_with_hyphens_kept() -> None:
    env = {"INPUT_CF-API": " https://api.cf.example ", "INPUT_CF_API": "wrong"}
    assert read_inputs(env)["cf-api"] == "https://api.cf.example"


def test_a_complete_set_becomes_a_request(client_material: ClientMaterial) -> None:
    settings, masked = _build(
        _inputs(client_material, strategy="swap", renew_before="33%", force="true"),
        {"GITHUB_RUN_ID": "42", "GITHUB_REPOSITORY": "acme/ops", "GITHUB_RUN_ATTEMPT": "2"},
    )
    request = settings.request
    assert request.target.app == "orders"
    assert request.auth.username == "tech-user"
    assert request.auth.password == "s3cret-pw"
    assert request.chain[0] == client_material.leaf
    assert request.key.private_numbers() == client_material.key.private_numbers()  # type: ignore[union-attr]
    assert request.strategy is Strategy.SWAP
    assert str(request.renew_before) == "33%"
    assert request.force is True
    assert request.dry_run is False
    assert (request.chain_env_var, request.key_env_var) == ("CLI_CHAIN", "CLI_KEY")
    assert request.timeout_s == 900
    assert request.warn_days == 30  # one default for the Action and the command line
    assert settings.warn_days == 30
    assert request.run_id == "gha:acme/ops/42/2"
    assert settings.fail_if_expires_within is None
    # every derived form of the key was handed to the masker before returning
    masked_lines = {line.strip() for form in masked for line in form.splitlines()}
    for line in key_lines(client_material.key):
        if "\n" not in line and len(line) <= 64:
            assert line in masked_lines


def test_client_credentials_are_the_other_way_in(client_material: ClientMaterial) -> None:
    settings, _ = _build(
        _inputs(
            client_material,
            cf_username="",
            cf_password="",
            cf_client_id="rotator",
            cf_client_secret="client-secret-1",
        )
    )
    assert settings.request.auth.client_id == "rotator"
    assert settings.request.auth.username == ""


def test_both_ways_to_authenticate_is_an_error(client_material: ClientMaterial) -> None:
    error = _error(_inputs(client_material, cf_client_id="rotator", cf_client_secret="x"))
    assert error.code == "ambiguous-auth"


def test_no_credentials_names_both_ways_and_the_fork_hint(
    client_material: ClientMaterial,
) -> None:
    error = _error(_inputs(client_material, cf_username="", cf_password=""))
    assert error.code == "missing-credentials"
    assert "cf-username" in str(error)
    assert "cf-client-id" in str(error)
    assert "forks" in error.hint()
    assert "Dependabot" in error.hint()


def test_empty_password_says_which_input_and_why(client_material: ClientMaterial) -> None:
    error = _error(
        _inputs(client_material, cf_password=""),
        {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_ACTOR": "dependabot[bot]"},
    )
    assert str(error) == "input `cf-password` is empty but `cf-username` is set"
    assert "triggered by `pull_request` (actor `dependabot[bot]`)" in error.hint()


def test_chain_without_key_is_an_error_that_names_the_key(
    client_material: ClientMaterial,
) -> None:
    error = _error(_inputs(client_material, private_key=""))
    assert str(error) == "input `private-key` is empty but `cert-chain` is set"
    assert "secrets" in error.hint()


def test_no_material_at_all(client_material: ClientMaterial) -> None:
    error = _error(_inputs(client_material, cert_chain="", private_key=""))
    assert error.code == "missing-material"
    assert "pkcs12" in str(error)


def test_pkcs12_with_chain_is_ambiguous(client_material: ClientMaterial) -> None:
    error = _error(_inputs(client_material, pkcs12=client_material.pkcs12_b64(b"pw")))
    assert error.code == "ambiguous-material"


def test_pkcs12_alone_with_its_password(client_material: ClientMaterial) -> None:
    p12 = client_material.pkcs12_b64(b"p12-password")
    settings, masked = _build(
        _inputs(
            client_material,
            cert_chain="",
            private_key="",
            pkcs12=p12,
            pkcs12_password="p12-password",
        )
    )
    assert settings.request.chain[0] == client_material.leaf
    assert masked  # the decoded key's forms


def test_encrypted_key_with_passphrase(client_material: ClientMaterial) -> None:
    encrypted = client_material.encrypted_key_pem(b"key-pass-1")
    settings, masked = _build(
        _inputs(client_material, private_key=encrypted, private_key_passphrase="key-pass-1")
    )
    assert settings.request.key.public_key() == client_material.key.public_key()
    # the decrypted key is a derived form: its lines are masked too
    decrypted = {line for form in masked for line in form.splitlines()}
    assert set(client_material.key_pem.splitlines()[1:-1]) & decrypted or any(
        line in decrypted for line in key_lines(client_material.key)
    )


def test_wrong_passphrase_is_reported_without_key_material(
    client_material: ClientMaterial,
) -> None:
    encrypted = client_material.encrypted_key_pem(b"key-pass-1")
    error = _error(_inputs(client_material, private_key=encrypted, private_key_passphrase="nope"))
    assert error.code == "wrong-passphrase"
    text = str(error) + error.hint()
    assert "nope" not in text
    assert not any(line in text for line in key_lines(client_material.key))
    assert not any(line in text for line in encrypted.splitlines()[1:-1])


@pytest.mark.parametrize("value", ["yes", "1", "on", "ture"])
def test_booleans_are_strict(client_material: ClientMaterial, value: str) -> None:
    error = _error(_inputs(client_material, dry_run=value))
    assert error.code == "bad-boolean"
    assert "`dry-run` must be `true` or `false`" in str(error)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"strategy": "fastest"}, "bad-strategy"),
        ({"renew_before": "soon"}, "bad-renew-before"),
        ({"timeout": "0"}, "bad-number"),
        ({"timeout": "abc"}, "bad-number"),
        ({"fail_if_expires_within": "-3"}, "bad-number"),
        ({"chain_env_var": "MY-CHAIN"}, "bad-env-var-name"),
        ({"key_env_var": "CLI_CHAIN"}, "bad-env-var-name"),
        ({"cf_api": "http://api.cf.example"}, "bad-url"),
        ({"verify_url": "http://cpi.example/x"}, "bad-url"),
        ({"verify_path": "/http/ping", "verify_url": "https://x.example/y"}, "ambiguous-verify"),
        ({"cf_ca_cert": "not a pem"}, "bad-ca-cert"),
        ({"app": ""}, "missing-input"),
        ({"annotation_prefix": "cpi-cert-rotate"}, "bad-annotation-prefix"),
        ({"annotation_prefix": "cloudfoundry.org"}, "bad-annotation-prefix"),
    ],
)
def test_each_bad_value_has_its_code(
    client_material: ClientMaterial, changes: dict[str, str], code: str
) -> None:
    assert _error(_inputs(client_material, **changes)).code == code


def test_all_problems_are_reported_together(client_material: ClientMaterial) -> None:
    error = _error(_inputs(client_material, app="", force="maybe", strategy="x"))
    assert error.code == "invalid-inputs"
    assert str(error).startswith("3 input problems: ")
    assert "`app`" in str(error)
    assert "`force`" in str(error)
    assert "`strategy`" in str(error)


def test_fail_if_expires_within_sets_the_warning_threshold(
    client_material: ClientMaterial,
) -> None:
    settings, _ = _build(_inputs(client_material, fail_if_expires_within="14", timeout="120"))
    assert settings.fail_if_expires_within == 14
    assert settings.warn_days == 14
    assert settings.request.timeout_s == 120


def test_annotation_prefix_reaches_the_request(client_material: ClientMaterial) -> None:
    assert _build(_inputs(client_material))[0].request.annotation_prefix is None
    settings, _ = _build(_inputs(client_material, annotation_prefix="rotation.example.com"))
    assert settings.request.annotation_prefix == "rotation.example.com"


def test_verify_path_gets_a_leading_slash(client_material: ClientMaterial) -> None:
    settings, _ = _build(_inputs(client_material, verify_path="http/ping"))
    assert settings.request.verify_path == "/http/ping"


def test_a_key_pasted_into_the_chain_input_is_found(client_material: ClientMaterial) -> None:
    pasted = client_material.chain_pem + client_material.key_pem
    blocks = chain_key_blocks(pasted)
    assert blocks == [client_material.key_pem.strip()]
    assert chain_key_blocks(client_material.chain_pem) == []


def test_trusted_roots_input_becomes_the_requests_roots(client_material: ClientMaterial) -> None:
    root_pem = client_material.chain_pem.split("-----END CERTIFICATE-----\n")[-2]
    root_pem += "-----END CERTIFICATE-----\n"
    settings, _ = _build(_inputs(client_material, trusted_roots=root_pem))
    assert [r.subject for r in settings.request.trusted_roots] == [
        x509.load_pem_x509_certificate(root_pem.encode()).subject
    ]
    assert _build(_inputs(client_material))[0].request.trusted_roots == ()  # SAP's list
    error = _error(_inputs(client_material, trusted_roots="not a certificate"))
    assert error.code == "bad-trusted-roots"
