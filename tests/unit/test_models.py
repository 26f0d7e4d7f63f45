"""Tests for the request/report value types."""

from datetime import UTC, datetime, timedelta

import pytest

from cpi_cert_rotate.errors import ExitCode, InputError
from cpi_cert_rotate.models import CfTarget, Outcome, RenewBefore, Report

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def test_renew_before_days_due_only_inside_window() -> None:
    rule = RenewBefore.parse("30d")
    start = NOW - timedelta(days=300)
    assert not rule.is_due(start, NOW + timedelta(days=200), NOW)
    assert rule.is_due(start, NOW + timedelta(days=29), NOW)


def test_renew_before_percent_uses_lifetime() -> None:
    rule = RenewBefore.parse("33%")
    # 90-day certificate, 40 days left: 44% remains, not due; 20 days left: 22%, due.
    assert not rule.is_due(NOW - timedelta(days=50), NOW + timedelta(days=40), NOW)
    assert rule.is_due(NOW - timedelta(days=70), NOW + timedelta(days=20), NOW)


def test_renew_before_bare_number_means_days() -> None:
    assert RenewBefore.parse("14") == RenewBefore(days=14)
    assert str(RenewBefore.parse("14")) == "14d"


@pytest.mark.parametrize("text", ["", "abc", "30x", "0%", "150%"])
def test_renew_before_rejects_nonsense(text: str) -> None:
    with pytest.raises(InputError, match="renew-before"):
        RenewBefore.parse(text)


def test_report_exit_codes_follow_outcome() -> None:
    target = CfTarget("https://api.x", "o", "s", "a", "si")
    assert Report(Outcome.ROTATED, target).exit_code is ExitCode.OK
    assert Report(Outcome.ROLLED_BACK, target).exit_code is ExitCode.FAILED
    assert Report(Outcome.ROLLBACK_INCOMPLETE, target).exit_code == 3
    assert Report(Outcome.INVALID_INPUT, target).exit_code == 2
    assert Report(Outcome.NOT_DUE, target).to_json()["rotated"] is False
