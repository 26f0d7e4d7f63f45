"""The command dispatcher: argument errors never echo what the user typed."""

from __future__ import annotations

import pytest

from cpi_cert_rotate.cli import main


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


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["rotate", "--cf-api", "a", "--cf-org", "o", "--cf-space", "s", "--app", "a",
          "--service-instance", "i", "--renew-before", "soon"], "renew-before 'soon'"),
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
