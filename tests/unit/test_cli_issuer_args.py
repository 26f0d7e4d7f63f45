"""`rotate`'s Vault flags: exactly one source of the new certificate, secrets from env vars.

These cases fail before any network call, so they run `main` in-process and check the
exit code and the message a user sees.
"""

from __future__ import annotations

import argparse

import pytest

from cpi_cert_rotate.cli import main, rotate_cmd
from cpi_cert_rotate.issuers import VaultPkiIssuer

_TARGET = [
    "rotate",
    "--cf-api", "https://api.example.com",
    "--cf-client-id", "rotator", "--cf-client-secret-env", "TEST_SECRET",
    "--cf-org", "o", "--cf-space", "s", "--app", "a", "--service-instance", "i",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SECRET", "s3cret-value")
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.delenv("VAULT_NAMESPACE", raising=False)


_VAULT = ["--vault-addr", "https://vault.example.com"]
_TOKEN = {"VAULT_TOKEN": "hvs.test-token-value"}


@pytest.mark.parametrize(
    ("extra", "env", "words"),
    [
        ([], {}, "no certificate: `--chain`/`--key` or `--vault-addr` are all empty"),
        (["--vault-role", "r"], {}, "`--vault-addr` is not given but `--vault-role` is set"),
        (["--key-type", "ec-p256"], {}, "`--vault-addr` is not given but `--key-type` is set"),
        (_VAULT, _TOKEN, "`--vault-role` is not given but `--vault-addr` is set"),
        ([*_VAULT, "--vault-role", "r"], {}, "VAULT_TOKEN is empty or unset"),
        (
            [*_VAULT, "--vault-role", "r", "--chain-env", "X"],
            {**_TOKEN, "X": "chain"},
            "`--chain-env` is set beside `--vault-addr`",
        ),
        (
            [*_VAULT, "--vault-role", "r", "--vault-auth-role", "a"],
            {},
            "`--vault-auth-role` logs in with a JWT, but `--vault-jwt-env` is not given",
        ),
        (
            [*_VAULT, "--vault-role", "r", "--vault-jwt-env", "J"],
            {"J": "eyJ.x.y"},
            "`--vault-jwt-env` needs `--vault-auth-role`",
        ),
    ],
)
def test_bad_certificate_source_exits_2_and_names_the_fix(
    extra: list[str],
    env: dict[str, str],
    words: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main([*_TARGET, *extra]) == 2
    assert words in capsys.readouterr().err


def test_vault_http_address_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "hvs.test-token-value")
    code = main([*_TARGET, "--vault-addr", "http://vault.example.com", "--vault-role", "r"])
    err = capsys.readouterr().err
    assert code == 2
    assert "https://" in err
    assert "hvs.test-token-value" not in err


def _issuer(*argv: str) -> VaultPkiIssuer | None:
    parser = argparse.ArgumentParser()
    rotate_cmd.add_arguments(parser)
    args = parser.parse_args([*_TARGET[1:], "--dry-run", *argv])
    issuer = rotate_cmd.settings_from_args(args).request.issuer
    assert issuer is None or isinstance(issuer, VaultPkiIssuer)
    return issuer


def test_token_comes_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TOKEN", "hvs.from-my-token")
    monkeypatch.setenv("VAULT_NAMESPACE", "team-a")
    issuer = _issuer(
        "--vault-addr", "https://vault.example.com:8200/",
        "--vault-role", "cpi-client", "--vault-pki-mount", "pki_int",
        "--vault-token-env", "MY_TOKEN", "--key-type", "ec-p384",
    )  # fmt: skip
    assert isinstance(issuer, VaultPkiIssuer)
    settings = issuer.settings
    assert (settings.token, settings.namespace, settings.key_kind) == (
        "hvs.from-my-token",
        "team-a",
        "ec-p384",
    )
    assert "hvs.from-my-token" not in repr(settings)
    assert issuer.describe() == "Vault PKI https://vault.example.com:8200 (pki_int/sign/cpi-client)"


def test_jwt_login_takes_the_jwt_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_JWT", "eyJhbGciOi.payload.sig")
    issuer = _issuer(
        "--vault-addr", "https://vault.example.com",
        "--vault-role", "cpi-client",
        "--vault-jwt-env", "CI_JWT", "--vault-auth-role", "rotator",
    )  # fmt: skip
    assert issuer is not None
    assert issuer.settings.token is None
    assert issuer.settings.jwt is not None
    assert issuer.settings.jwt() == "eyJhbGciOi.payload.sig"
    assert issuer.settings.jwt_role == "rotator"


def test_no_vault_flags_no_issuer() -> None:
    assert _issuer() is None


@pytest.mark.parametrize(
    "extra",
    [
        ["--dry-run", "--cf-client-secret-env", "S3cret-Passw0rd"],
        ["--vault-addr", "https://v.example.com", "--vault-role", "r",
         "--vault-token-env", "S3cret-Passw0rd"],
        ["--vault-addr", "https://v.example.com", "--vault-role", "r",
         "--vault-jwt-env", "S3cret-Passw0rd", "--vault-auth-role", "a"],
    ],
)  # fmt: skip
def test_a_secret_given_where_a_variable_name_belongs_is_not_echoed(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a for a in _TARGET if a not in ("--cf-client-secret-env", "TEST_SECRET")]
    if "--cf-client-secret-env" not in extra:
        argv += ["--cf-client-secret-env", "TEST_SECRET"]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert "is empty or unset" in err
    assert "S3cret-Passw0rd" not in err


def test_unreadable_vault_ca_file_is_bad_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "hvs.test-token-value")
    argv = ["--vault-addr", "https://v.example.com", "--vault-role", "r"]
    assert main([*_TARGET, *argv, "--vault-ca-cert", "/nonexistent/ca.pem"]) == 2
    assert "Cannot read the Vault CA file /nonexistent/ca.pem" in capsys.readouterr().err
