"""The runner protocol adapter: masking, commands, outputs, summary, groups."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from cpi_cert_rotate.action import gha


@pytest.fixture(autouse=True)
def _fresh_parser_state() -> None:
    gha.resume_commands()
    gha._masked.clear()


def _out(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def _unescape(data: str) -> str:
    """What the runner does to a command's message."""
    return data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def _key_pem() -> str:
    key = trustme.CA().private_key_pem.bytes().decode()
    return (
        serialization.load_pem_private_key(key.encode(), None)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def test_mask_registers_every_body_line_of_a_pem_key(capsys: pytest.CaptureFixture[str]) -> None:
    pem = _key_pem()
    gha.mask(pem)
    lines = _out(capsys)
    assert all(line.startswith("::add-mask::") for line in lines)
    masked = {line.removeprefix("::add-mask::") for line in lines}
    body = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
    for line in body:
        assert line in masked or len(line) < gha.MIN_FRAGMENT
    assert not any("PRIVATE KEY" in m for m in masked)  # armor is public, not masked


def test_mask_never_prints_a_raw_newline_inside_a_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gha.mask("first-secret-line\r\nsecond-secret-line\n")
    lines = _out(capsys)
    assert lines == ["::add-mask::first-secret-line", "::add-mask::second-secret-line"]


def test_single_line_secret_is_masked_whatever_its_length(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gha.mask("pw")
    gha.mask("100%sure")
    gha.mask("pw")  # registered once per process
    assert _out(capsys) == ["::add-mask::pw", "::add-mask::100%25sure"]
    assert _unescape("100%25sure") == "100%sure"


def test_mask_fragments_skips_short_tail_lines_only_in_multi_line_values() -> None:
    assert gha.mask_fragments("abcdefghij\nxyz=") == ["abcdefghij"]
    assert gha.mask_fragments("xyz=") == ["xyz="]
    assert gha.mask_fragments("  \n\n") == []


def test_plain_text_is_fenced_so_it_cannot_inject_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gha.info("app name ::add-mask::x\n::error::injected")
    gha.warning("real warning")
    lines = _out(capsys)
    stop = re.fullmatch(r"::stop-commands::([0-9a-f]{32})", lines[0])
    assert stop, lines
    token = stop.group(1)
    assert lines[1:3] == ["app name ::add-mask::x", "::error::injected"]
    assert lines[3] == f"::{token}::"  # resumed before the real command
    assert lines[4] == "::warning::real warning"


def test_each_stop_uses_a_new_token(capsys: pytest.CaptureFixture[str]) -> None:
    gha.info("one")
    gha.warning("between")
    gha.info("two")
    tokens = re.findall(r"::stop-commands::(\w+)", capsys.readouterr().out)
    assert len(tokens) == 2
    assert tokens[0] != tokens[1]


def test_annotations_have_no_empty_properties(capsys: pytest.CaptureFixture[str]) -> None:
    gha.error("line one\nline two")
    gha.warning("careful", title="Expiry: soon, really")
    assert _out(capsys) == [
        "::error::line one%0Aline two",
        "::warning title=Expiry%3A soon%2C really::careful",
    ]


def test_groups_open_and_close_as_commands(capsys: pytest.CaptureFixture[str]) -> None:
    gha.start_group("step observe")
    gha.end_group()
    assert _out(capsys) == ["::group::step observe", "::endgroup::"]


def test_outputs_use_heredoc_with_a_random_delimiter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "set_output_1"
    out.touch()
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert gha.set_output("leaf-pem", "-----BEGIN CERTIFICATE-----\nAAAA\n")
    assert gha.set_output("rotated", "true")
    text = out.read_text()
    delimiters = re.findall(r"^[\w-]+<<(ghadelimiter_[0-9a-f-]{36})$", text, re.MULTILINE)
    assert len(delimiters) == 2
    assert delimiters[0] != delimiters[1]
    first = delimiters[0]
    assert f"leaf-pem<<{first}\n-----BEGIN CERTIFICATE-----\nAAAA\n\n{first}\n" in text
    assert text.endswith(f"rotated<<{delimiters[1]}\ntrue\n{delimiters[1]}\n")


def test_outputs_outside_a_runner_write_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    assert gha.set_output("rotated", "true") is False
    assert "set-output" not in capsys.readouterr().out  # no deprecated fallback


def test_summary_appends_markdown_and_respects_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "step_summary_1"
    path.touch()
    summary = gha.Summary(str(path))
    assert summary.append("# one")
    assert summary.append("two\n")
    assert path.read_text() == "# one\ntwo\n"
    summary.append("x" * (gha.Summary.LIMIT + 10))
    assert len(path.read_bytes()) < 2 * gha.Summary.LIMIT
    assert "1 MiB limit" in path.read_text()


def test_summary_outside_a_runner_is_skipped(tmp_path: Path) -> None:
    assert gha.Summary(str(tmp_path / "missing")).append("x") is False
    assert gha.Summary("").append("x") is False


def test_md_cell_keeps_a_table_row_intact() -> None:
    assert gha.md_cell("a|b\nc") == "a\\|b<br>c"
