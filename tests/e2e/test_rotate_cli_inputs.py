"""`rotate` against the sandbox: bad input makes no call at all, a failure is said once.

`main` runs in-process (the flags, files and variables a user gives), against one
landscape whose call log shows that Cloud Foundry was never asked anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rotation_kit import assert_consistent

from cf_sandbox import Landscape
from cpi_cert_rotate.cli import main

pytestmark = pytest.mark.e2e


class Rotate:
    """`cpi-cert-rotate rotate` with everything a real rotation of the landscape needs."""

    def __init__(self, ls: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        minted = ls.mint(cn="ntifext-client", days=90)
        monkeypatch.setenv("TEST_CF_PASSWORD", ls.password)
        monkeypatch.setenv("TEST_KEY", minted.key_pem)
        ca, chain, root = tmp_path / "cf-ca.pem", tmp_path / "chain.pem", tmp_path / "root.pem"
        ca.write_text(ls.ca_pem)
        chain.write_text(minted.chain_pem)
        root.write_text(ls.trusted_root_pem)  # the sandbox's root: not on SAP's list
        self.ls = ls
        self.argv = [
            "rotate",
            "--cf-api", ls.api_url,
            "--cf-username", ls.username, "--cf-password-env", "TEST_CF_PASSWORD",
            "--cf-origin", ls.origin, "--cf-ca-cert", str(ca),
            "--cf-org", ls.org, "--cf-space", ls.space,
            "--app", ls.app, "--service-instance", ls.service_instance,
            "--chain", str(chain), "--key-env", "TEST_KEY", "--trusted-roots", str(root),
            "--verify-path", "/http/ping",
        ]  # fmt: skip

    def __call__(
        self, capsys: pytest.CaptureFixture[str], *extra: str
    ) -> tuple[int, str, str, list[dict[str, object]]]:
        before = len(self.ls.calls())
        code = main([*self.argv, *extra])
        out, err = capsys.readouterr()
        return code, out, err, self.ls.calls()[before:]


@pytest.fixture(scope="module")
def shared_landscape() -> Iterator[Landscape]:
    with Landscape(instances=1) as ls:
        yield ls


@pytest.fixture
def rotate(shared_landscape: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rotate:
    return Rotate(shared_landscape, tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--key-env-var", "VCAP_SERVICES"], "bad-env-var-name"),
        (["--chain-env-var", "CLI_KEY"], "bad-env-var-name"),
        (["--chain-env-var", "BAD NAME"], "bad-env-var-name"),
        (["--verify-path", "https://other.example/x"], "bad-verify-path"),
        (["--verify-url", "http://other.example/x"], "ambiguous-verify"),
        (["--max-in-flight", "0"], "bad-number"),
        (["--renew-before", "soon"], "bad-renew-before"),
        (["--timeout", "nan"], "bad-number"),
        (["--strategy", "overlapp"], "bad-strategy"),
        # KELVIN SIGN: Python's re.I let it through, CC answered 422 to the record after the
        # rotation (exit 0, the annotations missing)
        (["--annotation-prefix", "\u212aelvin.example.com"], "bad-annotation-prefix"),
        (["--annotation-prefix", "rotation.example.com."], "bad-annotation-prefix"),
    ],
)
def test_bad_input_exits_2_before_any_call(
    extra: list[str], code: str, rotate: Rotate, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code, out, err, calls = rotate(capsys, *extra)
    assert exit_code == 2
    assert calls == []  # not even a login
    assert out == ""
    assert err.count("error: ") == 1
    assert f"[{code}]" in err
    assert "Traceback" not in err
    assert assert_consistent(rotate.ls)


def test_json_is_one_document_for_every_problem(
    rotate: Rotate, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code, out, err, calls = rotate(
        capsys, "--json", "--key-env-var", "VCAP_SERVICES", "--timeout", "inf"
    )
    assert (exit_code, err, calls) == (2, "", [])
    document = json.loads(out)
    assert [p["code"] for p in document["problems"]] == ["bad-number", "bad-env-var-name"]
    assert all(p["message"] and p["fix"] for p in document["problems"])


def test_an_unknown_argument_is_json_too_and_points_to_the_env_flag(
    rotate: Rotate, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*rotate.argv, "--json", "--passphrase", "Marble-Falcon-9"])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    (problem,) = json.loads(out)["problems"]
    assert problem["code"] == "unknown-argument"
    assert "--passphrase" in problem["message"]
    assert "Use `--passphrase-env` instead of `--passphrase`" in problem["fix"]
    assert "Marble-Falcon-9" not in out + err


def test_a_failure_after_a_change_is_said_once_then_its_fix(
    rotate: Rotate, capsys: pytest.CaptureFixture[str]
) -> None:
    ls = rotate.ls
    live = assert_consistent(ls)
    ls.add_fault({"job": "service_bindings.create", "fail": True, "detail": "broker says no"})
    try:
        exit_code, out, err, _ = rotate(capsys, "--timeout", "120")
    finally:
        ls.clear_faults()
    assert exit_code == 1
    assert out.startswith("ROLLED-BACK:")
    assert "error" not in out  # the report; the failure itself is on stderr, once
    assert err.count("broker says no") == 1
    assert err.startswith("error: ")
    assert assert_consistent(ls) == live


def test_a_run_stopped_before_reading_the_app_does_not_claim_none_was_found(
    rotate: Rotate, capsys: pytest.CaptureFixture[str]
) -> None:
    ls = rotate.ls
    ls.add_fault({"method": "GET", "path": "^/v3/apps$", "status": 403})
    try:
        exit_code, out, err, _ = rotate(capsys)
    finally:
        ls.clear_faults()
    assert exit_code == 1
    assert "(none found)" not in out
    assert "before   (not read: the run stopped before it read the app)" in out
    assert err.count("error: ") == 1
    assert "Space Developer" in err  # the fix of a 403


def test_the_cf_ca_fix_names_the_flag_to_a_cli_user(
    rotate: Rotate, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = rotate.argv
    at = argv.index("--cf-ca-cert")
    del argv[at : at + 2]  # the sandbox's private CA is no longer trusted
    exit_code, _, err, _ = rotate(capsys, "--timeout", "60")
    assert exit_code == 1
    assert "`--cf-ca-cert`" in err
    assert "`cf-ca-cert`" not in err


def test_fail_if_expires_within_fails_a_check_of_a_soon_expiring_certificate(
    rotate: Rotate, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code, out, err, calls = rotate(capsys, "--dry-run", "--fail-if-expires-within", "3650")
    assert exit_code == 1
    assert out.startswith("DRY-RUN:")
    assert err.startswith("error: the certificate in force (CN=ntifext-client")
    assert "within --fail-if-expires-within (3650 days)" in err
    assert not [
        c for c in calls if c["method"] in ("POST", "PATCH", "DELETE") and "/v3/" in c["path"]
    ]
    exit_code, _, _, _ = rotate(capsys, "--dry-run", "--fail-if-expires-within", "0")
    assert exit_code == 0


@pytest.mark.parametrize(
    "held",
    ["not-a-jwt", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"],
    ids=["word", "pem"],
)
def test_an_exported_oidc_token_that_is_no_jwt_exits_2_before_the_login(
    held: str, rotate: Rotate, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was a login call UAA refused (`Unable to decode expected id_token`, exit 1)."""
    monkeypatch.setenv("CI_OIDC_TOKEN", held)
    argv = rotate.argv
    for flag in ("--cf-username", "--cf-password-env", "--cf-origin"):
        at = argv.index(flag)
        del argv[at : at + 2]
    exit_code, out, err, calls = rotate(
        capsys, "--cf-oidc", "user", "--cf-assertion-env", "CI_OIDC_TOKEN"
    )
    assert (exit_code, out, calls) == (2, "", [])
    assert "[bad-jwt]" in err
    assert "`--cf-assertion-env`" in err
    assert "Traceback" not in err
    for line in held.splitlines():
        assert line not in err


def test_a_targets_file_with_an_empty_list_exits_2(
    rotate: Rotate, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Was `0 target(s) ...: exit code 0`: a scheduled run that rotated nothing, green."""
    argv = rotate.argv
    for flag in ("--cf-org", "--cf-space", "--app", "--service-instance"):
        at = argv.index(flag)
        del argv[at : at + 2]
    targets = tmp_path / "targets.yml"
    targets.write_text("targets: []\n")
    exit_code, out, err, calls = rotate(capsys, "--targets", str(targets))
    assert (exit_code, out, calls) == (2, "", [])
    assert f"{targets} line 1: holds no targets [bad-targets-file]" in err
