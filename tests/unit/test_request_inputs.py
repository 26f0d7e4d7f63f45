"""Every bad input is refused by the one request builder, alike for the Action and the CLI.

Each case runs through both adapters as a user drives them (the Action's `INPUT_*`
values, the command line's flags, files and variables) and must give the same problem
code, naming the input the Action's way there and the flag on the command line. None of
these builds reaches a network call: a request is never built.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from cpi_cert_rotate.action.inputs import INPUTS, build_settings
from cpi_cert_rotate.cli import main, rotate_cmd
from cpi_cert_rotate.cli.spelling import FLAGS
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.request.build import Settings
from cpi_cert_rotate.request.fields import DEFAULTS
from pki_factory import Pki, client_pki, key_pem, pem

PASSWORD = "hunter2-Secret-Pw"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return client_pki()


def _action_inputs(pki: Pki, **changes: str) -> dict[str, str]:
    inputs = dict.fromkeys(INPUTS, "")
    inputs.update({k: v for k, v in DEFAULTS.items() if k in INPUTS})
    inputs.update(
        {
            "cf-api": "https://api.cf.example",
            "cf-username": "tech-user",
            "cf-password": PASSWORD,
            "cf-org": "acme",
            "cf-space": "prod",
            "app": "orders",
            "service-instance": "cpi-rt",
            "cert-chain": pem(*pki.env_chain).decode(),
            "private-key": key_pem(pki.leaf.key).decode(),
        }
    )
    inputs.update(changes)
    return inputs


def action_settings(pki: Pki, **changes: str) -> Settings:
    return build_settings(_action_inputs(pki, **changes), {}, lambda _form: None)


def action_error(pki: Pki, **changes: str) -> InputError:
    with pytest.raises(InputError) as caught:
        action_settings(pki, **changes)
    return caught.value


class Cli:
    """`rotate`'s flags with a valid chain and key in files; secrets in variables."""

    def __init__(self, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("TEST_CF_PW", PASSWORD)
        self.flags: dict[str, str | None] = {
            "--cf-api": "https://api.cf.example",
            "--cf-username": "tech-user",
            "--cf-password-env": "TEST_CF_PW",
            "--cf-org": "acme",
            "--cf-space": "prod",
            "--app": "orders",
            "--service-instance": "cpi-rt",
            "--chain": self.file("chain.pem", pem(*pki.env_chain)),
            "--key": self.file("key.pem", key_pem(pki.leaf.key)),
        }

    def file(self, name: str, data: bytes) -> str:
        path = self.tmp_path / name
        path.write_bytes(data)
        return str(path)

    def argv(self, **changes: str | None) -> list[str]:
        flags = {**self.flags, **{f"--{k.replace('_', '-')}": v for k, v in changes.items()}}
        argv = []
        for flag, value in flags.items():
            if value is not None:
                argv += [flag] if value == "" else [f"{flag}={value}"]
        return argv

    def settings(self, *extra: str, **changes: str | None) -> Settings:
        parser = argparse.ArgumentParser()
        rotate_cmd.add_arguments(parser)
        return rotate_cmd.settings_from_args(parser.parse_args([*self.argv(**changes), *extra]))

    def error(self, *extra: str, **changes: str | None) -> InputError:
        with pytest.raises(InputError) as caught:
            self.settings(*extra, **changes)
        return caught.value


@pytest.fixture
def cli(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(pki, tmp_path, monkeypatch)


def _codes(error: InputError) -> list[str]:
    return [p.code for p in error.problems]


BAD: list[tuple[str, str, str]] = [
    # the app's variables: CC refuses VCAP_*, VMC* and PORT; the platform sets CF_* and others
    ("key-env-var", "VCAP_SERVICES", "bad-env-var-name"),
    ("key-env-var", "vcap_application", "bad-env-var-name"),
    ("key-env-var", "VMC_KEY", "bad-env-var-name"),
    ("key-env-var", "PORT", "bad-env-var-name"),
    ("key-env-var", "CF_INSTANCE_KEY", "bad-env-var-name"),
    ("chain-env-var", "HOME", "bad-env-var-name"),
    ("chain-env-var", "MEMORY_LIMIT", "bad-env-var-name"),
    ("chain-env-var", "CLI_KEY", "bad-env-var-name"),  # the key's variable too
    ("chain-env-var", "BAD NAME", "bad-env-var-name"),
    ("chain-env-var", "1CHAIN", "bad-env-var-name"),
    ("chain-env-var", "MY-CHAIN", "bad-env-var-name"),
    # URLs: https only, a host, no credentials; an address takes no query
    ("cf-api", f"https://rotator:{PASSWORD}@api.cf.example", "bad-url"),
    ("cf-api", "http://api.cf.example", "bad-url"),
    ("cf-api", "api.cf.example", "bad-url"),
    ("cf-api", "https://api.cf.example/?token=abc", "bad-url"),
    ("cf-api", "https://api.cf.example:99999", "bad-url"),
    ("verify-url", "http://cpi.example/http/ping", "bad-url"),
    ("verify-url", "file:///etc/passwd", "bad-url"),
    ("verify-url", f"https://u:{PASSWORD}@cpi.example/x", "bad-url"),
    # a verify path stays on the binding's iFlow host
    ("verify-path", "https://other.example/x", "bad-verify-path"),
    ("verify-path", "//other.example/x", "bad-verify-path"),
    ("verify-path", "\\\\other.example\\x", "bad-verify-path"),
    ("verify-path", "/http/ping#top", "bad-verify-path"),
    ("verify-path", "/http/p ing", "bad-verify-path"),
    # numbers: digits only, sane ranges
    ("renew-before", "0%", "bad-renew-before"),
    ("renew-before", "100%", "bad-renew-before"),
    ("renew-before", "soon", "bad-renew-before"),
    ("renew-before", "0d", "bad-renew-before"),
    ("renew-before", "1000000000d", "bad-renew-before"),
    ("timeout", "nan", "bad-number"),
    ("timeout", "inf", "bad-number"),
    ("timeout", "1e12", "bad-number"),
    ("timeout", "-5", "bad-number"),
    ("timeout", "0.001", "bad-number"),
    ("timeout", "30", "bad-number"),
    ("timeout", "21601", "bad-number"),
    ("fail-if-expires-within", "-3", "bad-number"),
    ("fail-if-expires-within", "99999999999", "bad-number"),
    ("fail-if-expires-within", "\u00b2", "bad-number"),  # '²'.isdigit() is True
    ("max-in-flight", "0", "bad-number"),
    ("max-in-flight", "-1", "bad-number"),
    ("max-in-flight", "two", "bad-number"),
    ("strategy", "fastest", "bad-strategy"),
    # text: UTF-8, one line, within Cloud Controller's limits
    ("app", "caf\udcff", "bad-text"),  # a non-UTF-8 byte as a shell passes it on
    ("app", "orders\nINPUT", "bad-text"),
    ("app", "a" * 256, "input-too-large"),
    ("cf-space", "s" * 300, "input-too-large"),
    ("annotation-prefix", "cpi-cert-rotate", "bad-annotation-prefix"),
    ("vault-common-name", "c" * 65, "input-too-large"),
]


@pytest.mark.parametrize(("name", "value", "code"), BAD, ids=[f"{n}={v[:24]!r}" for n, v, _ in BAD])
def test_a_bad_value_is_refused_alike_by_the_action_and_the_cli(
    name: str, value: str, code: str, pki: Pki, cli: Cli
) -> None:
    errors = []
    if name in INPUTS:
        error = action_error(pki, **{name: value})
        assert _codes(error) == [code], error
        assert f"input `{name}`" in str(error)
        errors.append(error)
    flag = FLAGS[name]
    assert flag is not None
    error = cli.error(**{name.replace("-", "_"): value})
    assert _codes(error) == [code], error
    assert f"`{flag}`" in str(error)
    errors.append(error)
    for error in errors:
        assert PASSWORD not in str(error) + error.hint()


def test_chain_and_key_variables_must_differ_whatever_their_source(pki: Pki, cli: Cli) -> None:
    error = action_error(pki, **{"chain-env-var": "APP_PEM", "key-env-var": "APP_PEM"})
    assert str(error) == (
        "input `chain-env-var` and `key-env-var` name the same variable 'APP_PEM'"
    )
    error = cli.error(chain_env_var="APP_PEM", key_env_var="APP_PEM")
    assert str(error) == "`--chain-env-var` and `--key-env-var` name the same variable 'APP_PEM'"


def test_a_valid_set_gives_one_request_with_one_set_of_defaults(pki: Pki, cli: Cli) -> None:
    from_action = action_settings(pki, **{"verify-path": "http/ping"})
    from_cli = cli.settings(verify_path="http/ping")
    for settings in (from_action, from_cli):
        request = settings.request
        assert request.verify_path == "/http/ping"
        assert (request.chain_env_var, request.key_env_var) == ("CLI_CHAIN", "CLI_KEY")
        assert (request.timeout_s, request.verify_timeout_s, request.warn_days) == (900, 60, 30)
        assert request.max_in_flight == 1
        assert request.chain[0] == from_action.request.chain[0]
    fast = cli.settings(timeout="120", fail_if_expires_within="14")
    assert (fast.request.verify_timeout_s, fast.request.warn_days) == (12, 14)
    assert fast.fail_if_expires_within == 14


def test_the_cli_refuses_what_the_action_refuses_all_at_once(cli: Cli) -> None:
    error = cli.error(key_env_var="VCAP_SERVICES", timeout="nan", app=None)
    assert error.code == "invalid-inputs"
    assert _codes(error) == ["missing-input", "bad-number", "bad-env-var-name"]


def test_a_url_with_a_password_is_refused_without_echoing_it(pki: Pki, cli: Cli) -> None:
    api = f"https://rotator:{PASSWORD}@api.cf.example"
    for error in (action_error(pki, **{"cf-api": api}), cli.error(cf_api=api)):
        assert "must not hold a user name or password" in str(error)
        assert PASSWORD not in str(error) + error.hint()
        assert "rotator" not in str(error)


def test_a_chain_file_is_read_only_up_to_its_limit(cli: Cli, tmp_path: Path) -> None:
    big = tmp_path / "big.pem"
    big.write_bytes(b"x" * (10 * 1024 * 1024))
    for path in (str(big), "/dev/zero"):  # /dev/zero would never end
        error = cli.error(chain=path)
        assert error.code == "input-too-large"
        assert str(error) == "`--chain` is 65537 bytes long; at most 65536 are accepted"


def test_a_pasted_chain_that_is_too_long_is_refused(pki: Pki) -> None:
    chain = pem(*pki.env_chain).decode() + "\n" * 70000
    assert _codes(action_error(pki, **{"cert-chain": chain})) == ["input-too-large"]


@pytest.mark.parametrize(
    ("tail", "words"),
    [
        (
            b"-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHBfpegPjMCMA0GCSqGSIb3DQEBCwUA\n",
            "no matching END",
        ),
        (b"\x00\x01\x02\xff\xfe junk", "binary data beside its PEM blocks"),
    ],
)
def test_trailing_junk_after_the_chain_is_refused(
    tail: bytes, words: str, pki: Pki, cli: Cli
) -> None:
    chain = pem(*pki.env_chain) + tail
    error = cli.error(chain=cli.file("chain-junk.pem", chain))
    assert error.code == "unparseable-chain"
    assert words in str(error)
    text = chain.decode("utf-8", "replace")
    assert _codes(action_error(pki, **{"cert-chain": text})) == ["unparseable-chain"]


def test_swapped_chain_and_key_are_named_as_swapped(pki: Pki, cli: Cli) -> None:
    chain, key = pem(*pki.env_chain), key_pem(pki.leaf.key)
    error = action_error(pki, **{"cert-chain": key.decode(), "private-key": chain.decode()})
    assert error.code == "material-swapped"
    assert "input `cert-chain` holds a private key and `private-key` holds certificates" in str(
        error
    )
    assert "treat the key as leaked" in error.fix  # the Action's chain input is not masked
    error = cli.error(chain=cli.file("k.pem", key), key=cli.file("c.pem", chain))
    assert error.code == "material-swapped"
    assert "`--chain` holds a private key and `--key` holds certificates" in str(error)
    assert "leaked" not in error.fix  # a file on the user's own disk


def test_a_passphrase_nothing_needs_is_reported(
    pki: Pki, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = action_settings(pki, **{"private-key-passphrase": "not-needed"})
    assert settings.warnings == (
        "`private-key-passphrase` is set but the private key is not encrypted, so it was not "
        "used: check that this is the key you meant, or drop the passphrase",
    )
    monkeypatch.setenv("KEY_PASS", "not-needed")
    settings = cli.settings(passphrase_env="KEY_PASS")
    assert settings.warnings[0].startswith("`--passphrase-env` is set but the private key")
    p12 = base64.b64encode(
        pkcs12.serialize_key_and_certificates(
            None, pki.leaf.key, pki.leaf.cert, None, serialization.NoEncryption()
        )
    ).decode()
    settings = action_settings(
        pki, **{"cert-chain": "", "private-key": "", "pkcs12": p12, "pkcs12-password": "x"}
    )
    assert "`pkcs12-password` is set but the PKCS#12 file has no password" in settings.warnings[0]
    encrypted = key_pem(pki.leaf.key, password=b"needed-1").decode()
    used = action_settings(pki, **{"private-key": encrypted, "private-key-passphrase": "needed-1"})
    assert used.warnings == ()


# --- rotate reads every chain and key form inspect reads, with the same flags ----------


Forms = dict[str, tuple[bytes, bytes | None, str | None]]


@pytest.fixture(scope="module")
def forms(pki: Pki) -> Forms:
    """(chain file, key file or None, passphrase or None) for each form."""
    leaf, key = pki.leaf, pki.leaf.key
    chain_pem = pem(*pki.env_chain)
    p12 = pkcs12.serialize_key_and_certificates(
        b"client", key, leaf.cert, [pki.intermediate.cert],
        serialization.BestAvailableEncryption(b"p12-Pass-1"),
    )  # fmt: skip
    p12_open = pkcs12.serialize_key_and_certificates(
        b"client", key, leaf.cert, [pki.intermediate.cert], serialization.NoEncryption()
    )
    p7 = pkcs7.serialize_certificates(list(pki.env_chain), serialization.Encoding.DER)
    return {
        "pem": (chain_pem, key_pem(key), None),
        "pem-reversed-base64": (
            base64.b64encode(pem(*reversed(pki.env_chain))),
            base64.b64encode(key_pem(key)),
            None,
        ),
        "pkcs7-der-and-pkcs1": (p7, key_pem(key, fmt="traditional"), None),
        "encrypted-pkcs8": (chain_pem, key_pem(key, password=b"Key-Pass-1"), "Key-Pass-1"),
        "der-key": (chain_pem, key_pem(key, encoding=serialization.Encoding.DER), None),
        "pkcs12-with-password-own-key": (p12, None, "p12-Pass-1"),
        "pkcs12-base64-own-key": (base64.b64encode(p12_open), None, None),
        "pkcs12-and-separate-key": (p12, key_pem(key), "p12-Pass-1"),
    }


@pytest.mark.parametrize(
    "form",
    [
        "pem",
        "pem-reversed-base64",
        "pkcs7-der-and-pkcs1",
        "encrypted-pkcs8",
        "der-key",
        "pkcs12-with-password-own-key",
        "pkcs12-base64-own-key",
        "pkcs12-and-separate-key",
    ],
)
def test_rotate_reads_every_form_inspect_reads(
    form: str,
    forms: Forms,
    pki: Pki,
    cli: Cli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain, key, passphrase = forms[form]
    flags: dict[str, str | None] = {"chain": cli.file("chain", chain)}
    flags["key"] = cli.file("key", key) if key is not None else None
    if passphrase:
        monkeypatch.setenv("PASS", passphrase)
        flags["passphrase_env"] = "PASS"
    # the test PKI's root is not on SAP's list: both commands are told to trust it
    roots = cli.file("roots.pem", pki.root.cert.public_bytes(serialization.Encoding.PEM))
    flags["trusted_roots"] = roots
    inspect_argv = ["inspect", "--json", f"--trusted-roots={roots}"] + [
        arg for arg in cli.argv(**flags) if arg.startswith(("--chain=", "--key=", "--passphrase"))
    ]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(inspect_argv) == 0, capsys.readouterr()
    assert '"key_matches": true' in capsys.readouterr().out
    request = cli.settings(**flags).request
    assert pki.leaf.cert in request.chain  # in the input's order: validation sorts it
    assert request.key is not None
    assert request.key.public_key() == pki.leaf.key.public_key()


def test_a_pkcs12_without_its_password_says_which_flag_gives_it(forms: Forms, cli: Cli) -> None:
    chain, _, _ = forms["pkcs12-with-password-own-key"]
    error = cli.error(chain=cli.file("c.p12", chain), key=None)
    assert error.code == "key-encrypted"
    assert "--passphrase-env" in error.fix
