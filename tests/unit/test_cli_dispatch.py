"""The command dispatcher: help lists every flag, argument errors never echo a value."""

from __future__ import annotations

import argparse
import importlib
import json
import re
from pathlib import Path

import pytest

from cpi_cert_rotate.action.inputs import INPUTS
from cpi_cert_rotate.cli import main
from cpi_cert_rotate.cli.spelling import FLAGS
from cpi_cert_rotate.request.fields import DEFAULTS


def test_unknown_argument_is_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", "--chain", "-", "--password", "hunter2-secret"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "hunter2-secret" not in err
    assert "unrecognized argument" in err


def test_abbreviated_flag_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["rotate", "--cf-passw", "x", "--cf-api", "https://api.example"])
    assert "x" not in capsys.readouterr().out


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("inspect", "format", "rotate", "scan", "sandbox", "demo"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert command in capsys.readouterr().out


ROOT = Path(__file__).resolve().parents[2]
_FLAG = re.compile(r"--[a-z][a-z0-9-]*")


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def _options_part(help_text: str) -> str:
    """The help after the usage lines: where each flag is listed with its meaning."""
    return help_text.split("\noptions:\n", 1)[1]


def _rotate_table() -> list[tuple[list[str], list[str]]]:
    """(flags, Action inputs) of each row of docs/cli.md's flag table."""
    text = (ROOT / "docs" / "cli.md").read_text()
    table = text.split("| flag | Action input | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        cells = line.split("|")
        rows.append((_FLAG.findall(cells[1]), re.findall(r"`([a-z0-9-]+)`", cells[2])))
    return rows


def _synopsis_flags(command: str) -> set[str]:
    """The flags of the `inspect ...`/`format ...` synopsis in docs/certificates.md."""
    text = (ROOT / "docs" / "certificates.md").read_text()
    synopsis = text.split(f"`{command} --chain", 1)[1].split("`", 1)[0]
    return {"--chain", *_FLAG.findall(synopsis)}


@pytest.mark.parametrize("command", ["inspect", "format", "rotate", "sandbox", "demo"])
def test_help_lists_every_flag_with_its_meaning(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog=command)
    module = importlib.import_module(f"cpi_cert_rotate.cli.{command}_cmd")
    module.add_arguments(parser)
    options = _options_part(_help(command, capsys))
    defined = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(defined) >= 4
    for action in defined:
        flag = action.option_strings[-1]
        assert re.search(rf"^  {re.escape(flag)}\b", options, re.MULTILINE), flag
        assert action.help, f"{flag} has no meaning in --help"
        assert action.help.strip(), f"{flag} has no meaning in --help"


def test_rotate_help_lists_every_flag_of_the_docs_with_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = _options_part(_help("rotate", capsys))
    documented = {flag for flags, _ in _rotate_table() for flag in flags}
    assert len(documented) >= 40
    for flag in sorted(documented):
        assert re.search(rf"^  {re.escape(flag)}\b", options, re.MULTILINE), flag
    for name, default in DEFAULTS.items():
        flag = FLAGS[name]
        if flag and default not in ("false", ""):
            block = options.split(f"\n  {flag} ", 1)[1].split("\n  --", 1)[0]
            assert f"(default: {default})" in " ".join(block.split()), flag


def test_docs_table_gives_every_action_input_the_flag_the_code_uses() -> None:
    rows = _rotate_table()
    seen: set[str] = set()
    for flags, inputs in rows:
        for name in inputs:
            seen.add(name)
            # None: given another way (a PKCS#12 in --chain), which the row names
            assert FLAGS[name] is None or FLAGS[name] in flags, (name, flags)
    missing = set(INPUTS) - seen
    assert missing == {"vault-audience", "cf-oidc-audience"}  # said in the text below the table
    assert {name for name, flag in FLAGS.items() if flag} <= seen | {"max-in-flight"}


@pytest.mark.parametrize("command", ["inspect", "format"])
def test_inspect_and_format_help_list_the_documented_flags(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    options = _options_part(_help(command, capsys))
    for flag in sorted(_synopsis_flags(command)):
        assert re.search(rf"^  {re.escape(flag)}\b", options, re.MULTILINE), flag


def test_a_secret_flag_that_does_not_exist_points_to_its_env_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for flag, instead in (
        ("--passphrase", "--passphrase-env"),
        ("--cf-password", "--cf-password-env"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["rotate", flag, "Hunter2-Secret"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"Use `{instead}` instead of `{flag}`" in err
        assert "[unknown-argument]" in err
        assert "Hunter2-Secret" not in err


def test_argument_errors_are_json_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", "--json", "--chain"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert err == ""
    (problem,) = json.loads(out)["problems"]
    assert problem["code"] == "missing-value"
    assert "--chain" in problem["message"]


def test_an_unreadable_file_is_json_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--json", "--chain", "/nonexistent/chain.pem"]) == 2
    out, err = capsys.readouterr()
    assert err == ""
    (problem,) = json.loads(out)["problems"]
    assert problem["code"] == "unreadable-input"
    assert "/nonexistent/chain.pem" in problem["message"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["rotate", "--cf-api", "a", "--cf-org", "o", "--cf-space", "s", "--app", "a",
          "--service-instance", "i", "--renew-before", "soon"],
         "`--renew-before` 'soon' is not understood"),
        (["scan", "--cf-api", "a", "--scope", "acme/"], "'acme/' is not an org or org/space"),
    ],
    ids=["rotate-renew-before", "scan-scope"],
)  # fmt: skip
def test_a_flag_its_type_refuses_is_bad_input_with_the_fix(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 and the message with its fix, not a traceback with exit 1."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err
    assert "Traceback" not in err
