"""The demo's view of an Action log: what the runner would show, masks applied."""

from __future__ import annotations

from cpi_cert_rotate.cli.runner_log import parse_outputs, render_runner_log


def test_masked_values_and_mask_commands_never_show() -> None:
    stdout = "\n".join(
        [
            "::add-mask::MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
            "::add-mask::line-one%0Aline-two-secret",
            "::group::step set",
            "creating binding with MIIEvQIBADANBgkqhkiG9w0BAQEFAASC inside",
            "::endgroup::",
            "::stop-commands::tok123",
            "::warning::this is plain text while stopped line-two-secret",
            "::tok123::",
            "::warning title=Expiry::expires soon",
        ]
    )
    shown = render_runner_log(stdout)
    assert "MIIEvQ" not in shown
    assert "line-two-secret" not in shown
    assert "add-mask" not in shown
    assert "> step set" in shown
    assert "creating binding with *** inside" in shown
    assert "::warning::this is plain text while stopped ***" in shown
    assert "WARNING: expires soon" in shown
    assert "tok123" not in shown


def test_outputs_file_heredocs_and_plain_lines() -> None:
    text = (
        "rotated=true\nleaf-pem<<ghadelimiter_1\n-----BEGIN\nabc\nghadelimiter_1\nreason=rotated\n"
    )
    assert parse_outputs(text) == {
        "rotated": "true",
        "leaf-pem": "-----BEGIN\nabc",
        "reason": "rotated",
    }
