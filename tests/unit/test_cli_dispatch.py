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
    for command in ("inspect", "format", "rotate", "sandbox", "demo"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert command in capsys.readouterr().out
