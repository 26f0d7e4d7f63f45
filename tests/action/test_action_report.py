"""Rendering a report: outputs, annotations and the job summary for every outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cpi_cert_rotate.action.report import OUTPUTS, annotations_for, outputs, summary
from cpi_cert_rotate.models import (
    CertFacts,
    CfTarget,
    Fingerprint,
    Outcome,
    Report,
    StepResult,
    Strategy,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TARGET = CfTarget("https://api.cf.example", "acme", "prod", "orders", "cpi-rt")


def _facts(cn: str, days_left: float, fp: str) -> CertFacts:
    return CertFacts(
        subject=f"CN={cn},O=Acme",
        issuer="CN=Acme Issuing CA",
        serial="1a2b",
        not_before=NOW - timedelta(days=10),
        not_after=NOW + timedelta(days=days_left),
        fingerprint_sha256=Fingerprint(fp * 64),
        key_type="RSA",
        key_size=2048,
    )


OLD = _facts("old", 12, "a")
NEW = _facts("new", 365, "b")
STEPS = (
    StepResult("material", "ok", 0.01),
    StepResult("observe", "ok", 0.4, "CC API 3.210.0, 1 binding(s)"),
    StepResult("set", "ok", 2.5, "binding g-new holds the new leaf (overlap)"),
)


def _report(outcome: Outcome, **kw: object) -> Report:
    base: dict[str, object] = {
        "outcome": outcome,
        "target": TARGET,
        "strategy": Strategy.OVERLAP,
        "before": OLD,
        "new": NEW,
        "steps": STEPS,
        "leaf_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "finished_at": NOW,
        "verified": outcome in (Outcome.ROTATED, Outcome.CLEANUP_INCOMPLETE),
    }
    base.update(kw)
    return Report(**base)  # type: ignore[arg-type]


def test_rotated_outputs_describe_the_new_certificate() -> None:
    out = outputs(_report(Outcome.ROTATED, binding_guid="g-new", deployment_guid="d-1"), NOW)
    assert list(out) == list(OUTPUTS)
    assert out["rotated"] == "true"
    assert out["reason"] == "rotated"
    assert out["strategy"] == "overlap"
    assert out["expires-at"] == "2027-05-01T12:00:00Z"
    assert out["days-remaining"] == "365"
    assert out["fingerprint-sha256"] == "b" * 64
    assert out["previous-fingerprint-sha256"] == "a" * 64
    assert out["previous-expires-at"] == "2026-05-13T12:00:00Z"
    assert out["binding-guid"] == "g-new"
    assert out["deployment-guid"] == "d-1"
    assert out["leaf-pem"].startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("outcome", [Outcome.NOT_DUE, Outcome.DRY_RUN, Outcome.ROLLED_BACK])
def test_unchanged_outputs_describe_the_live_certificate(outcome: Outcome) -> None:
    out = outputs(_report(outcome), NOW)
    assert out["rotated"] == "false"
    assert out["reason"] == str(outcome)
    assert out["fingerprint-sha256"] == "a" * 64
    assert out["days-remaining"] == "12"
    assert out["leaf-pem"] == ""  # the supplied leaf is not in force


def test_rollback_incomplete_claims_no_certificate_in_force() -> None:
    report = _report(Outcome.ROLLBACK_INCOMPLETE, error="undo failed")
    assert report.in_force is None
    out = outputs(report, NOW)
    assert out["expires-at"] == ""
    assert out["previous-fingerprint-sha256"] == "a" * 64


def test_invalid_input_outputs_are_empty_but_present() -> None:
    report = Report(Outcome.INVALID_INPUT, TARGET, error="bad", error_code="missing-input")
    out = outputs(report, NOW)
    assert set(out) == set(OUTPUTS)
    assert out["reason"] == "invalid-input"
    assert out["verified"] == "false"
    assert out["app-stopped"] == "false"
    always = ("rotated", "verified", "app-stopped", "reason", "results")
    assert all(out[k] == "" for k in OUTPUTS if k not in always)
    (row,) = json.loads(out["results"])
    assert (row["outcome"], row["exit_code"], row["error_code"]) == (
        "invalid-input",
        2,
        "missing-input",
    )


def test_rotation_without_a_test_call_says_so_in_headline_and_output() -> None:
    report = _report(Outcome.ROTATED, verified=False)
    out = outputs(report, NOW)
    assert (out["rotated"], out["verified"]) == ("true", "false")
    text = summary(report, now=NOW)
    assert text.startswith("### ⚠️ Certificate rotated, but NOT verified: nothing proved it works")
    assert "no call with it reached the iFlow before promotion" in text
    assert "✅" not in text.splitlines()[0]
    proven = _report(Outcome.ROTATED)
    assert outputs(proven, NOW)["verified"] == "true"
    assert summary(proven, now=NOW).startswith("### ✅ Certificate rotated")


def test_short_lived_new_certificate_warns_with_the_threshold() -> None:
    report = _report(Outcome.ROTATED, new=_facts("new", 20, "b"))
    notes, failed = annotations_for(report, now=NOW, warn_days=30, fail_within=None)
    assert not failed
    assert [n.kind for n in notes] == ["warning"]
    assert "in 20 days (threshold 30 days)" in notes[0].message


def test_long_lived_new_certificate_does_not_warn() -> None:
    notes, failed = annotations_for(
        _report(Outcome.ROTATED), now=NOW, warn_days=30, fail_within=None
    )
    assert (notes, failed) == ([], False)


def test_fail_if_expires_within_checks_the_certificate_in_force() -> None:
    # not due: the live certificate (12 days) stays in force, within 14 days -> fail
    notes, failed = annotations_for(_report(Outcome.NOT_DUE), now=NOW, warn_days=14, fail_within=14)
    assert failed
    assert notes[-1].kind == "error"
    assert "within fail-if-expires-within (14 days)" in notes[-1].message
    # rotated: the new certificate (365 days) is in force -> no failure
    _, failed = annotations_for(_report(Outcome.ROTATED), now=NOW, warn_days=14, fail_within=14)
    assert not failed


def test_failure_gives_one_error_annotation_with_code_and_reason() -> None:
    report = _report(
        Outcome.ROLLED_BACK,
        error="the iFlow refused the new certificate (HTTP 401)",
        error_code="verification-failed",
        warnings=("CC says: deprecated",),
    )
    notes, _ = annotations_for(report, now=NOW, warn_days=30, fail_within=None)
    assert [n.kind for n in notes] == ["warning", "error"]
    assert notes[1].message.startswith("rolled-back [verification-failed]: the iFlow refused")
    assert notes[1].title == "Failed and rolled back"


def test_summary_of_a_rotation_has_table_steps_and_strategy() -> None:
    md = summary(_report(Outcome.ROTATED, warnings=("x",)), now=NOW)
    assert "### ✅ Certificate rotated: `orders`" in md
    assert "| | before | after |" in md
    assert "| SHA-256 | " + "a" * 64 + " | " + "b" * 64 + " |" in md
    assert "| not after | 2026-05-13T12:00:00Z (12 days) | 2027-05-01T12:00:00Z (365 days) |" in md
    assert "| set | ✅ ok | 2.50 s | binding g-new holds the new leaf (overlap) |" in md
    assert "strategy **overlap**" in md
    assert "#### Warnings\n\n- x" in md


def test_summary_of_a_split_state_lists_state_and_manual_steps() -> None:
    md = summary(
        _report(
            Outcome.ROLLBACK_INCOMPLETE,
            error="rollback failed",
            error_code="rollback-error",
            hint="rollback failed\n\nCall your platform team.",
            state_left=("binding g-new (new leaf) still exists",),
            manual_actions=("cf curl -X DELETE /v3/service_credential_bindings/g-new",),
        ),
        now=NOW,
    )
    assert "🚨" in md
    assert "**rollback failed** (`rollback-error`)\n\nCall your platform team." in md
    assert "**State left behind**\n\n- binding g-new (new leaf) still exists" in md
    assert "1. cf curl -X DELETE /v3/service_credential_bindings/g-new" in md
    assert "exit code 3" in md


def test_summary_of_a_dry_run_shows_the_plan() -> None:
    md = summary(_report(Outcome.DRY_RUN, plan=("create binding", "2. patch env")), now=NOW)
    assert "#### Plan (dry run: nothing was changed)\n\n1. create binding\n2. patch env" in md
    assert "| | live (unchanged) | new (not applied) |" in md


ISSUER_PLAN = (
    "generate a key here and have Vault PKI https://vault.example (pki/sign/cpi) sign a CSR",
    "create a second binding with the new leaf",
)


@pytest.mark.parametrize("outcome", [Outcome.DRY_RUN, Outcome.NOT_DUE])
def test_nothing_issued_renders_every_output_and_the_live_certificate(outcome: Outcome) -> None:
    """With an issuer, a dry run or a not-due run has no new certificate at all."""
    report = _report(outcome, new=None, leaf_pem=None, strategy=None, plan=ISSUER_PLAN)
    out = outputs(report, NOW)
    assert list(out) == list(OUTPUTS)
    assert out["reason"] == str(outcome)
    assert out["rotated"] == "false"
    assert out["fingerprint-sha256"] == "a" * 64  # the live one, still in force
    assert out["expires-at"] == "2026-05-13T12:00:00Z"
    assert out["leaf-pem"] == ""
    assert out["strategy"] == ""
    notes, failed = annotations_for(report, now=NOW, warn_days=30, fail_within=None)
    assert notes == []  # no "new certificate expires soon" without a new certificate
    assert failed is False
    md = summary(report, now=NOW)
    assert "| | live (unchanged) |\n|---|---|\n| subject | CN=old,O=Acme |" in md
    assert "new (not applied)" not in md
    if outcome is Outcome.DRY_RUN:
        assert "#### Plan (dry run: nothing was changed)\n\n1. generate a key here" in md
    else:
        assert "<summary>Plan</summary>" in md


def test_nothing_issued_and_no_live_certificate_has_no_table() -> None:
    md = summary(_report(Outcome.DRY_RUN, new=None, before=None, plan=ISSUER_PLAN), now=NOW)
    assert "| subject |" not in md
    assert "1. generate a key here" in md


def test_summary_cells_cannot_break_the_table() -> None:
    md = summary(_report(Outcome.ROTATED, steps=(StepResult("x", "ok", 1, "a|b\nc"),)), now=NOW)
    assert "| x | ✅ ok | 1.00 s | a\\|b<br>c |" in md
