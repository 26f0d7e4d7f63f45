"""The engine's pure parts: the undo journal, the lock value, the decision."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from cpi_cert_rotate import material
from cpi_cert_rotate.cf import App, Binding, ServiceInstance
from cpi_cert_rotate.errors import CfApiError
from cpi_cert_rotate.models import CfAuth, CfTarget, Outcome, RenewBefore, RotationRequest, Strategy
from cpi_cert_rotate.rotation.annotations import AnnotationKeys
from cpi_cert_rotate.rotation.decide import decide
from cpi_cert_rotate.rotation.journal import Compensation, Journal
from cpi_cert_rotate.rotation.lock import LOCK_TAG, LockInfo, lock_name
from cpi_cert_rotate.rotation.observe import Observation, RegisteredCert
from cpi_cert_rotate.rotation.strategies import registry, select
from cpi_cert_rotate.rotation.strategies.in_place import blockers as in_place_blockers
from pki_factory import CA, client_pki, utcnow

FINGERPRINT_KEY = AnnotationKeys().fingerprint

NOW = utcnow()


class TestJournal:
    def test_rollback_runs_in_reverse_and_reports_what_failed(self) -> None:
        done: list[str] = []
        journal = Journal()

        def fail() -> None:
            raise CfApiError("boom", status=500)

        journal.push(Compensation("first", lambda: done.append("first"), "s1", "m1"))
        journal.push(Compensation("second", fail, "binding X remains", "delete X"))
        journal.push(Compensation("third", lambda: done.append("third"), "s3", "m3"))
        outcome = journal.rollback()
        assert done == ["third", "first"], "a failed undo must not stop the others"
        assert not outcome.complete
        assert outcome.undone == ("third", "first")
        assert outcome.state_left == ("binding X remains (undo failed: boom)",)
        assert outcome.manual_actions == ("delete X",)
        assert journal.steps[-1].name == "rollback"
        assert journal.steps[-1].status == "failed"

    def test_failed_step_is_recorded_and_reraised(self) -> None:
        journal = Journal()
        with pytest.raises(ValueError, match="nope"), journal.step("set"):
            raise ValueError("nope")
        assert [(s.name, s.status) for s in journal.steps] == [("set", "failed")]
        assert not journal.changed


class TestLockInfo:
    def test_tags_round_trip(self) -> None:
        info = LockInfo(
            "gha:acme/ops/42/1", dt.datetime(2026, 11, 27, 1, 2, 3, tzinfo=dt.UTC), "ab12"
        )
        assert info.tags() == (
            LOCK_TAG,
            "owner=gha:acme/ops/42/1",
            "expires=2026-11-27T01:02:03Z",
            "token=ab12",
            "process=:0",
        )
        assert LockInfo.from_tags(info.tags()) == info
        made = LockInfo.new("run-1", 60)
        assert LockInfo.from_tags(made.tags()) == made
        assert made.pid == os.getpid()
        assert len(made.host) == 16  # a digest: the machine's name is not shown

    def test_an_instance_without_the_lock_tag_is_no_lock(self) -> None:
        assert LockInfo.from_tags(("owner=x", "token=y")) is None

    def test_tokens_differ_between_runs_of_one_owner(self) -> None:
        assert LockInfo.new("run-1", 60).token != LockInfo.new("run-1", 60).token

    def test_only_an_expired_lock_or_an_earlier_attempt_is_taken_over(self) -> None:
        now = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
        later = now + dt.timedelta(minutes=5)
        held = LockInfo("gha:acme/ops/42/1", later, "t")
        assert held.superseded_by("run-x", now) is None
        assert held.superseded_by("gha:acme/ops/43/2", now) is None  # another run
        assert held.superseded_by("gha:acme/ops/42/1", now) is None  # the same attempt
        assert "earlier attempt" in (held.superseded_by("gha:acme/ops/42/2", now) or "")
        assert held.superseded_by("run-x", later) == "it expired"
        unreadable = LockInfo.from_tags((LOCK_TAG, "owner=x", "expires=soon", "token=t"))
        assert unreadable is not None
        assert unreadable.superseded_by("run-x", now) == "its expiry is unreadable"

    def test_a_lock_of_an_ended_process_on_this_machine_is_taken_over(self) -> None:
        now = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
        until = now + dt.timedelta(minutes=5)
        child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                               capture_output=True, text=True, check=True)  # fmt: skip
        ended = int(child.stdout)
        host = LockInfo.new("x", 1).host
        gone = LockInfo("run-old", until, "t", host, ended)
        assert (
            gone.superseded_by("run-new", now) == f"its process ({ended}) on this machine has ended"
        )
        alive = LockInfo("run-old", until, "t", host, os.getppid())
        assert alive.superseded_by("run-new", now) is None
        elsewhere = LockInfo("run-old", until, "t", "0" * 16, ended)
        assert elsewhere.superseded_by("run-new", now) is None

    def test_lock_name_is_the_apps_within_ccs_limit(self) -> None:
        assert lock_name("ntifext") == "cpi-cert-rotate-lock-ntifext"
        long = lock_name("a" * 300)
        assert len(long) == 255
        assert long != lock_name("a" * 299)


def _observation(
    *,
    env_leaf: object = None,
    registered: object = None,
    pinning: bool | None = True,
    annotations: dict[str, str] | None = None,
    supports_strategy: bool = True,
) -> Observation:
    binding = Binding("b-1", None, "succeeded", "create", NOW)
    return Observation(
        api_version=(3, 228, 0),
        supports_strategy=supports_strategy,
        org_guid="o",
        space_guid="s",
        app=App("a", "ntifext", "STARTED", annotations=annotations or {}),
        instance=ServiceInstance("si", "iflowext", "managed"),
        bindings=(binding,),
        live_binding=binding,
        registered=RegisteredCert(registered, "https://cpi", pinning),  # type: ignore[arg-type]
        env={},
        env_leaf=env_leaf,  # type: ignore[arg-type]
    )


def _request(leaf_pki: object, **changes: object) -> RotationRequest:
    pki = leaf_pki
    request = RotationRequest(
        target=CfTarget("https://api", "o", "s", "ntifext", "iflowext"),
        auth=CfAuth(username="u", password="p"),
        chain=pki.env_chain,  # type: ignore[attr-defined]
        key=pki.leaf.key,  # type: ignore[attr-defined]
    )
    return replace(request, **changes)  # type: ignore[arg-type]


class TestDecide:
    def test_same_certificate_is_already_current(self) -> None:
        pki = client_pki()
        new = material.facts(pki.leaf.cert)
        obs = _observation(env_leaf=pki.leaf.cert, registered=pki.leaf.cert)
        assert decide(_request(pki), obs, new, NOW).outcome is Outcome.ALREADY_CURRENT

    def test_env_wins_over_a_stale_annotation(self) -> None:
        old, new_pki = client_pki(), client_pki()
        new = material.facts(new_pki.leaf.cert)
        obs = _observation(
            env_leaf=old.leaf.cert,
            annotations={FINGERPRINT_KEY: new.fingerprint_sha256},
        )
        decision = decide(_request(new_pki), obs, new, NOW)
        assert decision.outcome is None
        assert any("changed by hand" in w for w in decision.warnings)

    def test_not_due_unless_forced(self) -> None:
        live = client_pki().intermediate.issue(days=200)
        new_pki = client_pki()
        new = material.facts(new_pki.leaf.cert)
        obs = _observation(env_leaf=live.cert, registered=live.cert)
        rule = RenewBefore.parse("30d")
        assert decide(_request(new_pki, renew_before=rule), obs, new, NOW).outcome is (
            Outcome.NOT_DUE
        )
        forced = decide(_request(new_pki, renew_before=rule, force=True), obs, new, NOW)
        assert forced.outcome is None

    def test_annotation_alone_decides_when_env_is_unreadable(self) -> None:
        pki = client_pki()
        new = material.facts(pki.leaf.cert)
        obs = _observation(annotations={FINGERPRINT_KEY: new.fingerprint_sha256})
        assert decide(_request(pki), obs, new, NOW).outcome is Outcome.ALREADY_CURRENT


class TestStrategyChoice:
    def test_every_strategy_has_its_module(self) -> None:
        named = {s for s in Strategy if s is not Strategy.AUTO}
        assert set(registry()) == named
        assert all(registry()[name].name is name for name in named)

    def test_auto_prefers_overlap_then_swap(self) -> None:
        pki = client_pki()
        assert select(_request(pki), _observation(), pki.leaf.cert).name is Strategy.OVERLAP
        old_cc = _observation(supports_strategy=False)
        assert select(_request(pki), old_cc, pki.leaf.cert).name is Strategy.SWAP

    def test_auto_renews_in_place_when_pinning_is_off(self) -> None:
        ca = CA.root().intermediate()
        old = ca.issue("client", not_before=NOW - dt.timedelta(days=60), slot=1)
        new = ca.issue("client", not_before=NOW - dt.timedelta(minutes=5), slot=2)
        obs = _observation(env_leaf=old.cert, registered=old.cert, pinning=False)
        pki = client_pki()
        assert in_place_blockers(obs, new.cert) == []
        assert select(_request(pki), obs, new.cert).name is Strategy.IN_PLACE

    def test_in_place_blockers_name_each_reason(self) -> None:
        old = client_pki().leaf.cert
        other = client_pki("someone-else", intermediate_name="Other Issuing CA").leaf.cert
        reasons = in_place_blockers(_observation(registered=old, pinning=True), other)
        assert any("pinning on" in r for r in reasons)
        assert any("subject DN" in r for r in reasons)
        assert any("issuer DN" in r for r in reasons)
