"""`cf-oidc` and its inputs through both adapters: exactly one way to log in, every mix-up
refused before any call with the input named the adapter's way, and the token fetched
only when a login asks for it (with the audience asked for)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_request_inputs import PASSWORD, Cli, _action_inputs, _codes

from cpi_cert_rotate.action.inputs import build_settings
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.models import OidcGrant
from cpi_cert_rotate.request.build import Settings
from pki_factory import Pki, client_pki

RUNNER = {
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.example/_apis/idtoken?api-version=2.0",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runtime-bearer-0123456789",
}
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUifQ.c2lnbmF0dXJl"
NO_PASSWORD = {"cf-username": "", "cf-password": ""}


@pytest.fixture(scope="module")
def pki() -> Pki:
    return client_pki()


@pytest.fixture
def cli(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    the_cli = Cli(pki, tmp_path, monkeypatch)
    the_cli.flags.pop("--cf-username")
    the_cli.flags.pop("--cf-password-env")
    monkeypatch.setenv("GH_OIDC", JWT)
    return the_cli


class Fetched:
    """Stands in for `gha.id_token`: records the audiences asked for."""

    def __init__(self) -> None:
        self.audiences: list[str | None] = []

    def __call__(self, audience: str | None) -> str:
        self.audiences.append(audience)
        return JWT


def _action(
    pki: Pki, env: dict[str, str] | None = None, fetch: Fetched | None = None, **changes: str
) -> Settings:
    inputs = _action_inputs(pki, **{**NO_PASSWORD, **changes})
    return build_settings(inputs, RUNNER if env is None else env, lambda _t: None, fetch)


def _action_error(pki: Pki, env: dict[str, str] | None = None, **changes: str) -> InputError:
    with pytest.raises(InputError) as caught:
        _action(pki, env, **changes)
    return caught.value


def test_a_user_login_asks_for_the_token_with_its_audience_only_at_login(pki: Pki) -> None:
    fetch = Fetched()
    settings = _action(
        pki,
        fetch=fetch,
        **{"cf-oidc": "user", "cf-origin": "acme-platform", "cf-oidc-audience": "https://ias.x"},
    )
    auth = settings.request.auth
    assert auth.assertion is not None
    assert (auth.assertion.grant, auth.origin, auth.username, auth.password) == (
        OidcGrant.USER,
        "acme-platform",
        "",
        "",
    )
    assert fetch.audiences == []  # nothing is fetched while checking inputs
    assert auth.assertion.fetch() == JWT
    assert fetch.audiences == ["https://ias.x"]
    assert auth.assertion.source == "the job's GitHub OIDC token (audience `https://ias.x`)"
    assert JWT not in repr(settings.request)


def test_a_client_login_and_an_exchange(pki: Pki, cli: Cli) -> None:
    exchange = {
        "cf-oidc-exchange-url": "https://acme.accounts.ondemand.com/oauth2/token/",
        "cf-oidc-exchange-client-id": "btp-app",
    }
    settings = _action(pki, **{"cf-oidc": "client", "cf-client-id": "rotator", **exchange})
    assertion = settings.request.auth.assertion
    assert assertion is not None
    assert assertion.grant is OidcGrant.CLIENT
    assert settings.request.auth.client_id == "rotator"
    assert assertion.exchange_url == "https://acme.accounts.ondemand.com/oauth2/token"
    assert assertion.exchange_client_id == "btp-app"
    from_cli = cli.settings(
        cf_oidc="client",
        cf_client_id="rotator",
        cf_assertion_env="GH_OIDC",
        **{k.replace("-", "_"): v for k, v in exchange.items()},
    )
    cli_assertion = from_cli.request.auth.assertion
    assert cli_assertion is not None
    assert cli_assertion.fetch() == JWT
    assert cli_assertion.exchange_client_id == "btp-app"
    assert cli_assertion.source == "the JWT in $GH_OIDC"


OIDC_BAD: list[tuple[dict[str, str], list[str], str]] = [
    ({"cf-oidc": "yes"}, ["bad-cf-oidc"], "must be one of `user`, `client`"),
    (
        {"cf-oidc": "user", "cf-username": "u", "cf-password": PASSWORD},
        ["ambiguous-auth"],
        "would not be used",
    ),
    ({"cf-oidc": "client"}, ["missing-input"], "cf-client-id"),
    (
        {"cf-oidc": "client", "cf-client-id": "c", "cf-client-secret": PASSWORD},
        ["ambiguous-auth"],
        "the OIDC token proves the client",
    ),
    (
        {"cf-oidc": "client", "cf-client-id": "c", "cf-origin": "acme-platform"},
        ["origin-without-user"],
        "applies only to a user",
    ),
    ({"cf-oidc": "user", "cf-client-secret": PASSWORD}, ["missing-input"], "cf-client-id"),
    (
        {"cf-oidc": "user", "cf-oidc-exchange-url": "https://ias.example/oauth2/token"},
        ["missing-input"],
        "cf-oidc-exchange-client-id",
    ),
    ({"cf-oidc": "user", "cf-oidc-exchange-client-id": "a"}, ["missing-input"], "exchange-url"),
    (
        {
            "cf-oidc": "user",
            "cf-oidc-exchange-url": "http://ias.example/oauth2/token",
            "cf-oidc-exchange-client-id": "a",
        },
        ["bad-url"],
        "https://",
    ),
    (
        {"cf-oidc-exchange-url": "https://ias.example/oauth2/token"},
        ["missing-input"],
        "is empty but",
    ),
]


@pytest.mark.parametrize(("changes", "codes", "words"), OIDC_BAD)
def test_every_mix_up_is_refused_alike_by_the_action_and_the_cli(
    changes: dict[str, str], codes: list[str], words: str, pki: Pki, cli: Cli
) -> None:
    error = _action_error(pki, **changes)
    assert _codes(error) == codes, error
    assert words in str(error) + error.hint()
    assert "input `" in str(error)
    flags: dict[str, str | None] = {}
    for name, value in changes.items():
        if name in ("cf-password", "cf-client-secret"):
            cli.monkeypatch.setenv("SECRET_VALUE", value)
            flags[name.replace("-", "_") + "_env"] = "SECRET_VALUE"
        else:
            flags[name.replace("-", "_")] = value
    if "cf_oidc" in flags:
        flags["cf_assertion_env"] = "GH_OIDC"
    error = cli.error(**flags)
    assert _codes(error) == codes, error
    assert "`--cf-" in str(error)
    for err in (error,):
        assert PASSWORD not in str(err) + err.hint()


def test_an_audience_without_cf_oidc_is_refused(pki: Pki) -> None:
    error = _action_error(
        pki, **{"cf-username": "u", "cf-password": PASSWORD, "cf-oidc-audience": "x"}
    )
    assert _codes(error) == ["missing-input"]
    assert "input `cf-oidc` is empty but `cf-oidc-audience` is set" in str(error)


def test_without_id_token_permission_the_fix_names_it_once(pki: Pki) -> None:
    error = _action_error(pki, env={}, **{"cf-oidc": "user"})
    assert _codes(error) == ["no-id-token"]
    assert "permissions: id-token: write" in error.hint()
    both = _action_error(
        pki,
        env={},
        **{
            "cf-oidc": "user",
            "cert-chain": "",
            "private-key": "",
            "vault-addr": "https://vault.example",
            "vault-role": "r",
            "vault-auth-role": "gha",
        },
    )
    assert _codes(both) == ["no-id-token"]  # the Vault login's need is the same fix


def test_the_cli_needs_the_token_and_the_kind(cli: Cli) -> None:
    error = cli.error(cf_oidc="user")
    assert error.code == "missing-input"
    assert "`--cf-oidc` logs in with a JWT, but `--cf-assertion-env` is not given" in str(error)
    error = cli.error(cf_assertion_env="GH_OIDC")
    assert error.code == "missing-input"
    assert "needs `--cf-oidc`" in str(error)
    error = cli.error(cf_oidc="user", cf_assertion_env="UNSET_VARIABLE_X")
    assert error.code == "missing-input"
    assert "UNSET_VARIABLE_X" not in str(error)  # a name given by mistake may be the token


@pytest.mark.parametrize(
    "held",
    [
        "not-a-jwt",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUifQ",  # no signature part
        '{"value": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUifQ.c2lnbmF0dXJl"}',
        "/run/secrets/oidc-token",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUifQ.c2ln bmF0dXJl",  # a blank inside
    ],
    ids=["word", "two-parts", "json", "path", "pem", "blank-inside"],
)
def test_an_exported_token_that_is_no_jwt_is_refused_before_any_call(cli: Cli, held: str) -> None:
    """UAA would answer 401 `Unable to decode expected id_token` (exit 1) after a login
    call; the shape of RFC 7515's compact form is checked first (exit 2, no call)."""
    cli.monkeypatch.setenv("GH_OIDC", held)
    error = cli.error(cf_oidc="user", cf_assertion_env="GH_OIDC", cf_origin="gh-platform")
    assert error.code == "bad-jwt"
    assert "`--cf-assertion-env`" in str(error)
    for line in held.splitlines():
        assert line not in str(error) + error.hint()


@pytest.mark.parametrize("around", [("", "\n"), ("  ", ""), ("", "\r\n")])
def test_an_exported_token_is_sent_without_the_blanks_around_it(
    cli: Cli, around: tuple[str, str]
) -> None:
    """`export T="$(cat token)"` keeps a CR; a here-doc or `echo` keeps a newline: UAA
    would refuse the token with them."""
    cli.monkeypatch.setenv("GH_OIDC", around[0] + JWT + around[1])
    settings = cli.settings(cf_oidc="user", cf_assertion_env="GH_OIDC", cf_origin="gh-platform")
    assertion = settings.request.auth.assertion
    assert assertion is not None
    assert assertion.fetch() == JWT
