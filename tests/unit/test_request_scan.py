"""The scan's inputs go through the one request builder, alike for its action and `scan`.

Each bad value is driven through both adapters as a user gives it (the scan action's
`INPUT_*` values, the command line's flags) and must give the same problem code, naming
the input the Action's way there and the flag on the command line. No case reaches a
network call: the request is never built.
"""

from __future__ import annotations

import argparse

import pytest

from cpi_cert_rotate.action.scan.inputs import DEFAULTS, build_request, read_inputs
from cpi_cert_rotate.cli import scan_cmd
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.fleet import Place, ScanRequest
from cpi_cert_rotate.request.fields import SCAN

PASSWORD = "hunter2-Scan-Pw"
LOGIN = {"cf-api": "https://api.cf.example", "cf-username": "tech-user", "cf-password": PASSWORD}


def _action(**changes: str) -> ScanRequest:
    inputs = {**DEFAULTS, **LOGIN, **{k.replace("_", "-"): v for k, v in changes.items()}}
    return build_request(inputs, {})


def _cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> ScanRequest:
    monkeypatch.setenv("SCAN_PW", PASSWORD)
    parser = argparse.ArgumentParser()
    scan_cmd.add_arguments(parser)
    login = ["--cf-api", LOGIN["cf-api"], "--cf-username", "tech-user"]
    return scan_cmd.build_request(
        parser.parse_args([*login, "--cf-password-env", "SCAN_PW", *argv])
    )


BAD: list[tuple[str, str, str]] = [
    ("scope", "acme/", "bad-place"),
    ("scope", "a,/b", "bad-place"),
    ("environment", "cpi-{application}", "bad-environment"),
    ("environment", "cpi-{}", "bad-environment"),
    ("environment", "{app!r}", "bad-environment"),  # GitHub would get `'orders'`
    ("environment", "{app:>300}", "bad-environment"),  # beyond GitHub's 255 characters
    ("environment", "e" * 256, "bad-environment"),
    ("annotation-prefix", "\u212aelvin.example.com", "bad-annotation-prefix"),  # the Kelvin sign
    ("renew-before", "soon", "bad-renew-before"),
    ("matrix-limit", "257", "bad-number"),
    ("parallel", "0", "bad-number"),
    ("parallel", "17", "bad-number"),
    ("timeout", "3601", "bad-number"),
    ("fail-if-expires-within", "-1", "bad-number"),
    ("chain-env-var", "VCAP_SERVICES", "bad-env-var-name"),
    ("chain-env-var", "1X", "bad-env-var-name"),
    ("annotation-prefix", "nodots", "bad-annotation-prefix"),
    ("offering", "it\nrt", "bad-text"),
]


@pytest.mark.parametrize(("name", "value", "code"), BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
def test_both_adapters_refuse_a_bad_value_with_one_code(
    name: str, value: str, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError) as action:
        _action(**{name: value})
    assert [p.code for p in action.value.problems] == [code]
    assert f"`{name}`" in str(action.value)
    with pytest.raises(InputError) as cli:
        _cli(monkeypatch, f"--{name}={value}")
    assert [p.code for p in cli.value.problems] == [code]
    assert f"--{name}" in str(cli.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InputError) as caught:
        _action(scope="acme/", parallel="99", cf_client_id="also-a-client", cf_api="")
    codes = sorted(p.code for p in caught.value.problems)
    assert codes == ["ambiguous-auth", "bad-number", "bad-place", "missing-input"]
    assert PASSWORD not in str(caught.value) + caught.value.hint()


def test_the_defaults_are_the_fields_and_both_adapters_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    action = _action()
    assert action == _cli(monkeypatch)
    assert (action.offering, action.plan, action.chain_env_var) == (
        SCAN.defaults["offering"],
        SCAN.defaults["plan"],
        "CLI_CHAIN",
    )
    assert (action.parallel, action.timeout_s, action.matrix_limit) == (4, 300.0, 256)
    assert str(action.renew_before) == "30d"


def test_scope_items_split_on_blanks_commas_and_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    want = (Place("acme"), Place("acme-prod", "integration"), Place("b"))
    assert _action(scope="acme acme-prod/integration,\nb").places == want
    cli = _cli(monkeypatch, "--scope", "acme", "--scope", "acme-prod/integration", "--scope", "b")
    assert cli.places == want


def test_an_empty_chain_env_var_reads_none_an_absent_one_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _cli(monkeypatch, "--chain-env-var", "").chain_env_var == ""
    assert _cli(monkeypatch).chain_env_var == "CLI_CHAIN"
    env = {"INPUT_CF-API": "https://api.cf.example", "INPUT_CHAIN-ENV-VAR": ""}
    assert read_inputs(env) == {"cf-api": "https://api.cf.example", "chain-env-var": ""}


def test_warn_days_is_a_flag_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _cli(monkeypatch, "--warn-days", "14").warn_days == 14
    assert "warn-days" not in SCAN.inputs
    with pytest.raises(InputError, match="`--warn-days` must be a whole number"):
        _cli(monkeypatch, "--warn-days", "soon")


def test_the_scan_logs_in_with_an_oidc_token_like_the_rotation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`cf-oidc` (`--cf-oidc` with `--cf-assertion-env`) reaches the scan's login; without
    the job's token permission the Action's scan refuses it before any call."""
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUvb3BzIn0.c2ln"
    monkeypatch.setenv("SCAN_JWT", jwt)
    parser = argparse.ArgumentParser()
    scan_cmd.add_arguments(parser)
    args = parser.parse_args(
        ["--cf-api", LOGIN["cf-api"], "--cf-oidc", "user", "--cf-origin", "gh-platform",
         "--cf-assertion-env", "SCAN_JWT"]
    )  # fmt: skip
    request = scan_cmd.build_request(args)
    assertion = request.auth.assertion
    assert assertion is not None
    assert assertion.fetch() == jwt
    assert request.auth.password == ""
    inputs = {**DEFAULTS, "cf-api": LOGIN["cf-api"], "cf-oidc": "user", "cf-origin": "gh"}
    with pytest.raises(InputError) as refused:
        build_request(inputs, {})  # no ACTIONS_ID_TOKEN_REQUEST_URL: no `id-token: write`
    assert refused.value.code == "no-id-token"
