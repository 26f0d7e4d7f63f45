"""fleet.assess: due as rotate decides it, overlap, problems; fleet.read's classification."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from cryptography import x509

from cpi_cert_rotate import material
from cpi_cert_rotate.cf import App, Binding, ServiceInstance
from cpi_cert_rotate.fleet import Overlap
from cpi_cert_rotate.fleet.assess import assess, overlap_of
from cpi_cert_rotate.fleet.discover import Candidate
from cpi_cert_rotate.fleet.models import LockSeen
from cpi_cert_rotate.fleet.read import Kind, Reading, _classify
from cpi_cert_rotate.models import RenewBefore
from cpi_cert_rotate.rotation.annotations import AnnotationKeys
from cpi_cert_rotate.rotation.lock import LockInfo
from pki_factory import CA, pem

NOW = dt.datetime.now(dt.UTC)
KEYS = AnnotationKeys()
CA_ = CA.root("Fleet Test Root").intermediate("Fleet Test Issuing CA")


def _leaf(cn: str, *, days_left: float, lifetime: float = 90) -> x509.Certificate:
    start = NOW - dt.timedelta(days=lifetime - days_left)
    end = NOW + dt.timedelta(days=days_left)
    return CA_.issue(cn, key_kind="ec-p256", not_before=start, not_after=end).cert


def _binding(guid: str, *, state: str = "succeeded", minute: int = 0) -> Binding:
    return Binding(
        guid=guid,
        name=None,
        state=state,
        operation="create",
        created_at=NOW.replace(microsecond=0) + dt.timedelta(minutes=minute),
        app_guid="app-1",
        service_instance_guid="si-1",
    )


def _candidate(
    *bindings: Binding, annotations: dict[str, str] | None = None, siblings: tuple[str, ...] = ()
) -> Candidate:
    app = App(guid="app-1", name="orders", state="STARTED", annotations=annotations or {})
    instance = ServiceInstance(guid="si-1", name="cpi-rt", type="managed")
    return Candidate("acme", "prod", app, instance, bindings or (_binding("b-1"),), siblings)


def _assess(candidate: Candidate, reading: Reading, **changes: object):  # type: ignore[no-untyped-def]
    options: dict[str, object] = {
        "api_version": (3, 228, 0),
        "renew_before": RenewBefore(days=30),
        "chain_env_var": "CLI_CHAIN",
        "warn_days": 30,
        "keys": KEYS,
        "now": NOW,
    }
    options.update(changes)
    return assess(candidate, reading, **options)  # type: ignore[arg-type]


def _codes(finding: object) -> list[str]:
    return [str(p.code) for p in finding.problems]  # type: ignore[attr-defined]


def _same(leaf: x509.Certificate, **changes: object) -> Reading:
    reading = Reading(Kind.EXTERNAL, registered=leaf, pinning=True, env_leaf=leaf, env_set=True)
    return replace(reading, **changes)  # type: ignore[arg-type]


class TestDue:
    def test_a_certificate_within_renew_before_is_due_and_expiring(self) -> None:
        finding = _assess(_candidate(), _same(_leaf("a", days_left=10)))
        assert finding.due is True
        assert finding.in_matrix
        assert _codes(finding) == ["expiring"]
        assert finding.live is not None
        assert finding.live.days_remaining(NOW) == 9

    def test_a_fresh_certificate_is_not_due_and_has_no_problem(self) -> None:
        finding = _assess(_candidate(), _same(_leaf("a", days_left=80)))
        assert finding.due is False
        assert not finding.in_matrix
        assert finding.problems == ()

    def test_a_share_of_the_lifetime_decides_like_rotate(self) -> None:
        leaf = _leaf("a", days_left=40, lifetime=100)  # 40% left
        assert _assess(_candidate(), _same(leaf), renew_before=RenewBefore(percent=50)).due
        assert not _assess(_candidate(), _same(leaf), renew_before=RenewBefore(percent=33)).due

    def test_an_expired_certificate_is_due_and_says_so(self) -> None:
        finding = _assess(_candidate(), _same(_leaf("a", days_left=-2)))
        assert finding.due is True
        assert _codes(finding) == ["expired"]

    def test_the_env_var_decides_over_the_binding(self) -> None:
        """rotation/decide.py: the env var's leaf is the live certificate."""
        registered, env = _leaf("old", days_left=80), _leaf("new", days_left=5)
        reading = Reading(Kind.EXTERNAL, registered=registered, env_leaf=env, env_set=True)
        finding = _assess(_candidate(), reading)
        assert finding.due is True
        assert finding.source == "env"
        assert "env-mismatch" in _codes(finding)

    def test_without_env_the_annotations_decide_then_the_binding(self) -> None:
        registered = _leaf("a", days_left=80)
        soon = (NOW + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        annotated = {KEYS.fingerprint: "ab" * 32, KEYS.not_after: soon}
        reading = Reading(Kind.EXTERNAL, registered=registered)
        assert _assess(_candidate(annotations=annotated), reading).due is True
        assert _assess(_candidate(), reading).due is False
        missing = _assess(_candidate(), reading)
        assert "env-missing" in _codes(missing)

    def test_nothing_readable_means_due_unknown_and_held(self) -> None:
        reading = Reading(Kind.UNREADABLE, details_error="binding credentials not readable (404)")
        finding = _assess(_candidate(), reading, chain_env_var="")
        assert finding.due is None
        assert finding.live is None
        assert _codes(finding) == ["unreadable"]


class TestOverlap:
    def test_an_old_api_has_no_second_binding(self) -> None:
        verdict, note = overlap_of((3, 204, 0), True, 1)
        assert verdict is Overlap.NO
        assert "3.204.0" in note
        assert "3.205.0" in note

    def test_pinning_off_means_in_place(self) -> None:
        verdict, note = overlap_of((3, 228, 0), False, 1)
        assert verdict is Overlap.NO
        assert "in place" in note

    def test_two_bindings_prove_the_operator_limit(self) -> None:
        assert overlap_of((3, 228, 0), True, 2)[0] is Overlap.PROVEN

    def test_otherwise_the_limit_is_unknowable(self) -> None:
        verdict, note = overlap_of((3, 228, 0), True, 1)
        assert verdict is Overlap.POSSIBLE
        assert "max_service_credential_bindings_per_app_service_instance" in note


class TestProblems:
    def test_two_bindings_name_the_live_one_and_are_a_problem(self) -> None:
        old, new = _binding("b-old"), _binding("b-new", minute=1)
        finding = _assess(_candidate(old, new), _same(_leaf("a", days_left=60)))
        assert finding.live_binding_guid == "b-new"
        assert finding.binding_guids == ("b-old", "b-new")
        assert finding.overlap is Overlap.PROVEN
        assert _codes(finding) == ["several-bindings"]
        assert finding.in_matrix is False  # not due; the problem itself does not block

    def test_a_failed_binding_is_not_live(self) -> None:
        failed = _binding("b-1", state="failed")
        finding = _assess(_candidate(failed), Reading(Kind.NO_LIVE_BINDING))
        assert finding.live_binding_guid is None
        assert "no-live-binding" in _codes(finding)

    def test_a_broken_env_chain_is_named(self) -> None:
        reading = Reading(Kind.EXTERNAL, registered=_leaf("a", days_left=60), env_set=True)
        finding = _assess(_candidate(), replace(reading, env_broken=True))
        assert _codes(finding) == ["env-broken"]

    def test_another_instances_env_var_is_not_held_against_this_row(self) -> None:
        mine, other = _leaf("mine", days_left=70), _leaf("other", days_left=5)
        reading = Reading(Kind.EXTERNAL, registered=mine, env_leaf=other, env_set=True)
        finding = _assess(_candidate(siblings=("cpi-rt-2",)), reading)
        assert finding.live is not None
        assert finding.live.fingerprint_sha256 == material.fingerprint(mine)
        assert finding.due is False
        assert _codes(finding) == ["several-instances"]

    def test_several_instances_keep_a_due_app_out_of_the_matrix(self) -> None:
        leaf = _leaf("a", days_left=5)
        finding = _assess(_candidate(siblings=("cpi-rt-2",)), _same(leaf))
        assert finding.due is True
        assert not finding.in_matrix
        assert [str(p.code) for p in finding.blocked_by] == ["several-instances"]

    def test_last_rotation_comes_from_the_annotations(self) -> None:
        notes = {
            KEYS.key("rotated-at"): "2026-10-01T10:00:00Z",
            KEYS.key("run-id"): "gha:acme/ops/7/1",
            KEYS.fingerprint: "cd" * 32,
        }
        finding = _assess(_candidate(annotations=notes), _same(_leaf("a", days_left=60)))
        assert finding.last_rotation is not None
        assert finding.last_rotation.rotated_at == "2026-10-01T10:00:00Z"
        assert finding.last_rotation.run_id == "gha:acme/ops/7/1"
        other_prefix = AnnotationKeys("rotation.example.com")
        assert _assess(_candidate(annotations=notes), _same(_leaf("a", days_left=60)),
                       keys=other_prefix).last_rotation is None  # fmt: skip


def _lock(tags: tuple[str, ...]) -> LockSeen:
    """The lock instance as the scan lists it: tags parsed by the rotation's parser."""
    return LockSeen("cpi-cert-rotate-lock-orders", "si-lock", LockInfo.from_tags(tags))


def _held_for(seconds: float) -> tuple[str, ...]:
    """The tags a rotation's lock carries (`LockInfo.new`), expiring in `seconds`."""
    return LockInfo.new("gha:acme/ops/42/1", seconds, clock=lambda: NOW).tags()


class TestLock:
    """rotation/lock.py's lock instance, as the scan reads it; BLOCKING says why a live
    lock holds a due app and an expired one does not."""

    def test_a_live_lock_holds_a_due_app_and_names_holder_and_expiry(self) -> None:
        lock = _lock(_held_for(1800))
        finding = _assess(_candidate(), _same(_leaf("a", days_left=5)), lock=lock)
        assert finding.due is True
        assert _codes(finding) == ["expiring", "locked"]
        assert [str(p.code) for p in finding.blocked_by] == ["locked"]
        assert not finding.in_matrix
        message = finding.problems[1].message
        until = (NOW + dt.timedelta(seconds=1800)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert "gha:acme/ops/42/1" in message
        assert until in message
        assert "cpi-cert-rotate-lock-orders" in message
        shown = finding.to_json(NOW)["lock"]
        assert shown == {
            "name": "cpi-cert-rotate-lock-orders",
            "guid": "si-lock",
            "owner": "gha:acme/ops/42/1",
            "expires": until,
            "expired": False,
        }

    def test_an_expired_lock_is_reported_and_the_app_stays_in_the_matrix(self) -> None:
        finding = _assess(_candidate(), _same(_leaf("a", days_left=5)), lock=_lock(_held_for(-60)))
        assert _codes(finding) == ["expiring", "lock-expired"]
        assert finding.in_matrix  # the next rotation takes it over
        assert "ended without removing it" in finding.problems[1].message
        assert finding.to_json(NOW)["lock"]["expired"] is True

    def test_a_lock_without_a_readable_expiry_is_taken_over_too(self) -> None:
        tags = tuple(t if not t.startswith("expires=") else "expires=soon" for t in _held_for(60))
        finding = _assess(_candidate(), _same(_leaf("a", days_left=5)), lock=_lock(tags))
        assert _codes(finding) == ["expiring", "lock-expired"]
        assert "no readable expiry" in finding.problems[1].message
        assert finding.in_matrix

    def test_an_instance_with_the_locks_name_that_is_no_lock_holds_the_app(self) -> None:
        lock = _lock(("logging", "owner=someone"))  # no cpi-cert-rotate-lock tag
        assert lock.holder is None
        finding = _assess(_candidate(), _same(_leaf("a", days_left=5)), lock=lock)
        assert [str(p.code) for p in finding.blocked_by] == ["lock-name-taken"]
        assert "cf rename-service cpi-cert-rotate-lock-orders" in finding.problems[1].message
        assert finding.to_json(NOW)["lock"]["owner"] is None

    def test_a_live_lock_on_an_app_not_due_is_reported_only(self) -> None:
        lock = _lock(_held_for(600))
        finding = _assess(_candidate(), _same(_leaf("a", days_left=70)), lock=lock)
        assert _codes(finding) == ["locked"]
        assert finding.due is False

    def test_no_lock_no_problem(self) -> None:
        finding = _assess(_candidate(), _same(_leaf("a", days_left=70)))
        assert finding.problems == ()
        assert finding.to_json(NOW)["lock"] is None


class TestClassify:
    def test_an_external_certificate_has_no_key(self) -> None:
        leaf = _leaf("a", days_left=60)
        raw = {"oauth": {"certificate": pem(leaf).decode(), "certificate-pinning": "false"}}
        found = _classify(raw)
        assert found.kind is Kind.EXTERNAL
        assert found.leaf == leaf
        assert found.pinning is False

    def test_a_certificate_sap_generated_comes_with_its_key(self) -> None:
        leaf = _leaf("a", days_left=60)
        raw = {"oauth": {"certificate": pem(leaf).decode(), "key": "-----BEGIN..."}}
        assert _classify(raw).kind is Kind.GENERATED

    @pytest.mark.parametrize(
        "raw",
        [{"oauth": {"clientid": "x", "clientsecret": "y"}}, {"clientid": "x"}, {}],
        ids=["secret", "flat", "empty"],
    )
    def test_no_certificate_is_not_ours(self, raw: dict[str, object]) -> None:
        assert _classify(raw).kind is Kind.NO_CERTIFICATE
