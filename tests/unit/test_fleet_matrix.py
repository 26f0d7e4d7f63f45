"""fleet.matrix and fleet.models: environment names, the due matrix, input checks."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cpi_cert_rotate.errors import ExitCode, InputError
from cpi_cert_rotate.fleet import (
    Finding,
    Overlap,
    Place,
    Problem,
    ProblemCode,
    ScanReport,
    ScanRequest,
    check_template,
)
from cpi_cert_rotate.fleet.matrix import plan
from cpi_cert_rotate.models import CertFacts, CfAuth, Fingerprint, RenewBefore

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _facts(days_left: int) -> CertFacts:
    return CertFacts(
        subject="CN=x",
        issuer="CN=ca",
        serial="01",
        not_before=NOW - dt.timedelta(days=90 - days_left),
        not_after=NOW + dt.timedelta(days=days_left),
        fingerprint_sha256=Fingerprint("00" * 32),
        key_type="EC",
        key_size=256,
    )


def _finding(
    app: str, *, space: str = "prod", days_left: int = 5, due: bool | None = True, **kw: object
) -> Finding:
    values: dict[str, object] = {
        "org": "acme",
        "space": space,
        "app": app,
        "app_guid": f"guid-{space}-{app}",
        "instance": "cpi-rt",
        "instance_guid": "si",
        "binding_guids": ("b",),
        "live_binding_guid": "b",
        "registered": _facts(days_left),
        "env": None,
        "pinning": True,
        "overlap": Overlap.POSSIBLE,
        "overlap_note": "",
        "last_rotation": None,
        "due": due,
    }
    values.update(kw)
    return Finding(**values)  # type: ignore[arg-type]


def _entry(app: str, environment: str) -> dict[str, str]:
    return {
        "org": "acme",
        "space": "prod",
        "app": app,
        "instance": "cpi-rt",
        "environment": environment,
    }


class TestTemplate:
    @pytest.mark.parametrize(
        "template", ["cpi-{app}", "cpi-{org}-{space}-{app}", "{instance}", "x{{y}}"]
    )
    def test_known_placeholders_pass(self, template: str) -> None:
        assert check_template(template) == template

    @pytest.mark.parametrize(
        ("template", "why"),
        [
            ("cpi-{application}", "unknown placeholder"),
            ("cpi-{app", "expected '}'"),
            ("  ", "empty"),
        ],
    )
    def test_anything_else_is_an_input_error(self, template: str, why: str) -> None:
        with pytest.raises(InputError, match=why) as caught:
            check_template(template)
        assert caught.value.code == "bad-environment"
        assert caught.value.exit_code is ExitCode.BAD_INPUT


class TestPlan:
    def test_due_apps_are_ordered_most_urgent_first_with_their_environment(self) -> None:
        found = (
            _finding("b", days_left=20),
            _finding("a", days_left=3),
            _finding("c", due=False, days_left=80),
        )
        planned = plan(found, "cpi-{space}-{app}", 256)
        assert planned.matrix == (_entry("a", "cpi-prod-a"), _entry("b", "cpi-prod-b"))
        assert [f.environment for f in planned.findings] == [
            "cpi-prod-b",
            "cpi-prod-a",
            "cpi-prod-c",
        ]
        assert planned.left_out == ()

    def test_beyond_the_limit_the_latest_expiries_wait(self) -> None:
        found = tuple(_finding(f"app-{i}", days_left=i) for i in range(5))
        planned = plan(found, "cpi-{app}", 3)
        assert [e["app"] for e in planned.matrix] == ["app-0", "app-1", "app-2"]
        assert [f.app for f in planned.left_out] == ["app-3", "app-4"]

    def test_two_apps_with_one_environment_name_are_both_held(self) -> None:
        """GitHub compares environment names without case: `Orders` and `orders` clash."""
        found = (
            _finding("orders", space="dev"),
            _finding("Orders", space="prod"),
            _finding("invoices"),
        )
        planned = plan(found, "cpi-{app}", 256)
        assert [e["app"] for e in planned.matrix] == ["invoices"]
        clashing = [f for f in planned.findings if f.has(ProblemCode.ENVIRONMENT_CLASH)]
        assert [f.space for f in clashing] == ["dev", "prod"]
        assert "acme/prod/Orders" in clashing[0].problems[-1].message
        assert "{space}" in clashing[0].problems[-1].message

    def test_the_same_app_twice_is_no_clash(self) -> None:
        """One app bound to two instances gets one environment (and is held for that)."""
        blocked = Problem(ProblemCode.SEVERAL_INSTANCES, "x")
        found = (
            _finding("orders", problems=(blocked,)),
            _finding("orders", instance="cpi-rt-2", problems=(blocked,)),
        )
        planned = plan(found, "cpi-{app}", 256)
        assert not any(f.has(ProblemCode.ENVIRONMENT_CLASH) for f in planned.findings)
        assert planned.matrix == ()

    def test_a_name_longer_than_github_allows_is_held(self) -> None:
        planned = plan((_finding("x" * 300),), "cpi-{app}", 256)
        assert planned.matrix == ()
        assert planned.findings[0].has(ProblemCode.ENVIRONMENT_TOO_LONG)


class TestModels:
    @pytest.mark.parametrize(
        ("text", "org", "space"),
        [("acme", "acme", None), ("acme/prod", "acme", "prod"), (" acme / prod ", "acme", "prod")],
    )
    def test_a_place_is_an_org_or_an_org_and_space(
        self, text: str, org: str, space: str | None
    ) -> None:
        assert Place.parse(text) == Place(org, space)

    @pytest.mark.parametrize("text", ["", "/prod", "acme/", "a,b", "acme/a,b"])
    def test_a_bad_place_says_how_to_write_one(self, text: str) -> None:
        with pytest.raises(InputError, match="is not an org or org/space") as caught:
            Place.parse(text)
        assert caught.value.code == "bad-place"
        assert "`ORG/SPACE`" in caught.value.fix

    @pytest.mark.parametrize(
        ("field", "value"),
        [("parallel", 0), ("parallel", 17), ("timeout_s", 0), ("matrix_limit", 257), ("plan", "")],
    )
    def test_a_request_refuses_values_out_of_range(self, field: str, value: object) -> None:
        with pytest.raises(InputError):
            ScanRequest("https://api.example", CfAuth(), **{field: value})  # type: ignore[arg-type]

    def test_the_report_fails_only_when_asked_and_a_certificate_is_within_the_limit(
        self,
    ) -> None:
        findings = (_finding("a", days_left=10), _finding("b", days_left=40, due=False))
        report = ScanReport(
            api_url="https://api.example",
            api_version="3.228.0",
            scanned_at=NOW,
            duration_s=1.0,
            renew_before=RenewBefore(days=30),
            findings=findings,
        )
        assert report.exit_code is ExitCode.OK
        strict = ScanReport(**{**report.__dict__, "fail_within_days": 14})
        assert [f.app for f in strict.expiring_within_limit] == ["a"]
        assert strict.exit_code is ExitCode.FAILED
        unknown = ScanReport(
            **{
                **report.__dict__,
                "fail_within_days": 1,
                "findings": (_finding("c", registered=None),),
            }
        )
        assert unknown.exit_code is ExitCode.FAILED  # an unknown expiry fails the check too

    def test_the_report_json_carries_the_matrix_as_the_output_takes_it(self) -> None:
        report = ScanReport(
            api_url="https://api.example",
            api_version="3.228.0",
            scanned_at=NOW,
            duration_s=1.0,
            renew_before=RenewBefore(days=30),
            findings=(_finding("a", days_left=10),),
            matrix=(_entry("a", "cpi-a"),),
        )
        data = json.loads(json.dumps(report.to_json()))
        assert data["due"] == {"include": [dict(report.matrix[0])]}
        assert data["apps"][0]["days_left"] == 10
        assert data["apps"][0]["not_after"] == "2026-12-11T12:00:00Z"
        assert data["apps"][0]["source"] == "binding"
        assert data["due_count"] == 1
