"""End-to-end: the engine against the sandbox, 3 instances, probe at 20 calls/s."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from rotation_kit import (
    assert_consistent,
    env_leaf_sha256,
    instance_leaves,
    live_binding_leaves,
    request_for,
    the_app,
    write_calls,
)

from cf_sandbox import Landscape
from cpi_cert_rotate.errors import ExitCode
from cpi_cert_rotate.models import Outcome, RenewBefore, Strategy
from cpi_cert_rotate.rotation import rotate
from cpi_cert_rotate.rotation.annotations import AnnotationKeys

pytestmark = pytest.mark.e2e


def test_overlap_rotates_with_zero_probe_failures(landscape: Landscape) -> None:
    old_leaf = env_leaf_sha256(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    landscape.probe_start(rps=20)
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem, run_id="t1"))
    time.sleep(0.5)  # instances started last are probed too
    landscape.probe_stop()
    probe = landscape.probe()

    assert report.outcome is Outcome.ROTATED, report.error
    assert report.strategy is Strategy.OVERLAP
    assert probe["calls"] > 10
    assert probe["failures"] == 0, probe
    assert env_leaf_sha256(landscape) == minted.leaf_sha256
    assert live_binding_leaves(landscape) == {minted.leaf_sha256}, "old binding not removed"
    assert set(instance_leaves(landscape)) == {minted.leaf_sha256}
    assert len(instance_leaves(landscape)) == 3
    notes = the_app(landscape)["annotations"]
    keys = AnnotationKeys()
    assert notes[keys.fingerprint] == minted.leaf_sha256
    assert notes[keys.not_after] == f"{report.new.not_after:%Y-%m-%dT%H:%M:%SZ}"  # type: ignore[union-attr]
    assert notes[keys.key("run-id")] == "t1"
    assert report.before is not None
    assert report.before.fingerprint_sha256 == old_leaf
    assert [s.name for s in report.steps] == [
        "material",
        "observe",
        "lock",
        "set",
        "test",
        "promote",
        "deploy",
        "finish",
    ]


@pytest.mark.parametrize(
    "options",
    [{"bindings_limit": 1}, {"api_version": "3.204.0"}],
    ids=["limit-1", "cc-3.204"],
)
def test_auto_falls_back_to_swap(
    landscape_factory: Callable[..., Landscape], options: dict[str, object]
) -> None:
    ls = landscape_factory(**options)
    minted = ls.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.ROTATED, report.error
    assert report.strategy is Strategy.SWAP
    assert assert_consistent(ls) == minted.leaf_sha256
    assert live_binding_leaves(ls) == {minted.leaf_sha256}
    assert any("swap" in w for w in report.warnings)


def test_explicit_overlap_on_limit_one_is_bad_input_and_changes_nothing(
    landscape_factory: Callable[..., Landscape],
) -> None:
    ls = landscape_factory(bindings_limit=1)
    before = env_leaf_sha256(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem, strategy=Strategy.OVERLAP))
    assert report.outcome is Outcome.INVALID_INPUT
    assert report.exit_code is ExitCode.BAD_INPUT
    assert report.error_code == "overlap-unavailable"
    assert assert_consistent(ls) == before


def test_rerun_with_same_certificate_is_noop_without_writes(landscape: Landscape) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    first = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    assert first.outcome is Outcome.ROTATED, first.error
    mark = len(landscape.calls())
    again = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    assert again.outcome is Outcome.ALREADY_CURRENT
    assert again.exit_code is ExitCode.OK
    assert write_calls(landscape, since=mark) == []


def test_not_due_with_200_days_left_makes_no_write(landscape: Landscape) -> None:
    long_lived = landscape.mint(cn="ntifext-client", days=230)
    assert rotate(request_for(landscape, long_lived.chain_pem, long_lived.key_pem)).rotated
    mark = len(landscape.calls())
    candidate = landscape.mint(cn="ntifext-client", days=90)
    report = rotate(
        request_for(
            landscape,
            candidate.chain_pem,
            candidate.key_pem,
            renew_before=RenewBefore.parse("30d"),
        )
    )
    assert report.outcome is Outcome.NOT_DUE
    assert write_calls(landscape, since=mark) == []
    forced = rotate(
        request_for(
            landscape,
            candidate.chain_pem,
            candidate.key_pem,
            renew_before=RenewBefore.parse("30d"),
            force=True,
        )
    )
    assert forced.outcome is Outcome.ROTATED, forced.error


def test_dry_run_plans_and_writes_nothing(landscape: Landscape) -> None:
    before = env_leaf_sha256(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem, dry_run=True))
    assert report.outcome is Outcome.DRY_RUN
    assert any("second binding" in line for line in report.plan)
    assert write_calls(landscape) == []
    assert env_leaf_sha256(landscape) == before


def test_refused_by_cpi_rolls_back_before_promotion(
    landscape_factory: Callable[..., Landscape],
) -> None:
    # CPI learns new bindings only after 60 s here, longer than the verification budget.
    ls = landscape_factory(cpi_propagation_s=60.0)
    old_leaf = env_leaf_sha256(ls)
    old_bindings = live_binding_leaves(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.probe_start(rps=20)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem, verify_timeout_s=1.0))
    ls.probe_stop()
    assert report.outcome is Outcome.ROLLED_BACK
    assert report.exit_code is ExitCode.FAILED
    assert "did not accept the new certificate" in (report.error or "")
    assert env_leaf_sha256(ls) == old_leaf
    assert live_binding_leaves(ls) == old_bindings
    assert all(b["leaf_sha256"] != minted.leaf_sha256 for b in ls.state()["bindings"])
    assert ls.probe()["failures"] == 0
    assert not any(s.name == "promote" for s in report.steps)


def test_untrusted_chain_is_refused_before_any_write(landscape: Landscape) -> None:
    """It used to reach the broker, which refused it after the lock and a binding POST."""
    old_leaf = env_leaf_sha256(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90, trusted=False)
    mark = len(landscape.calls())
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.INVALID_INPUT
    assert report.exit_code is ExitCode.BAD_INPUT
    assert report.error_code == "chain-incomplete"
    assert landscape.calls()[mark:] == []
    assert assert_consistent(landscape) == old_leaf


def test_chain_missing_its_intermediate_is_refused_before_any_write(landscape: Landscape) -> None:
    """No verify path and only the leaf: this went live with exit 0 and broke the app."""
    old_leaf = env_leaf_sha256(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    leaf_only = minted.chain_pem.split("-----END CERTIFICATE-----")[0] + (
        "-----END CERTIFICATE-----\n"
    )
    mark = len(landscape.calls())
    report = rotate(request_for(landscape, leaf_only, minted.key_pem, verify_path=None))
    assert report.outcome is Outcome.INVALID_INPUT
    assert report.error_code == "chain-incomplete"
    assert "CN=" in (report.error or "")
    assert write_calls(landscape, since=mark) == []
    assert assert_consistent(landscape) == old_leaf


def test_bad_material_is_exit_2_without_any_call(landscape: Landscape) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    other = landscape.mint(cn="ntifext-client", days=90)
    mark = len(landscape.calls())
    report = rotate(request_for(landscape, minted.chain_pem, other.key_pem))
    assert report.outcome is Outcome.INVALID_INPUT
    assert report.exit_code is ExitCode.BAD_INPUT
    assert report.error_code == "key-mismatch"
    assert landscape.calls()[mark:] == []


def test_survives_expiring_tokens_and_slow_jobs(
    landscape_factory: Callable[..., Landscape],
) -> None:
    ls = landscape_factory(token_ttl_s=2.0, job_steps_s=0.8, start_s=0.3)
    minted = ls.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.ROTATED, report.error
    assert assert_consistent(ls) == minted.leaf_sha256
    assert sum(1 for c in ls.calls() if c["path"] == "/oauth/token") >= 2


def test_in_place_with_pinning_off_keeps_the_binding(
    landscape_factory: Callable[..., Landscape],
) -> None:
    ls = landscape_factory(pinning=False)
    old_bindings = {b["guid"] for b in ls.state()["bindings"]}
    minted = ls.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem, strategy=Strategy.IN_PLACE))
    assert report.outcome is Outcome.ROTATED, report.error
    assert {b["guid"] for b in ls.state()["bindings"]} == old_bindings
    assert env_leaf_sha256(ls) == minted.leaf_sha256
    assert set(instance_leaves(ls)) == {minted.leaf_sha256}
    assert any("unpinned" in w for w in report.warnings)


def test_in_place_with_pinning_on_is_refused_without_change(landscape: Landscape) -> None:
    before = env_leaf_sha256(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    report = rotate(
        request_for(landscape, minted.chain_pem, minted.key_pem, strategy=Strategy.IN_PLACE)
    )
    assert report.outcome is Outcome.INVALID_INPUT
    assert "pinning" in (report.error or "")
    assert write_calls(landscape) == []
    assert env_leaf_sha256(landscape) == before


def test_restage_baseline_rotates_with_an_outage(
    landscape_factory: Callable[..., Landscape],
) -> None:
    ls = landscape_factory(staging_s=0.5, start_s=0.2)
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.probe_start(rps=20)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem, strategy=Strategy.RESTAGE))
    ls.probe_stop()
    assert report.outcome is Outcome.ROTATED, report.error
    assert assert_consistent(ls) == minted.leaf_sha256
    assert ls.probe()["failures"] > 0, "the seed's restage should cost an outage"


def test_survives_rate_limiting_with_retry_after(
    landscape_factory: Callable[..., Landscape],
) -> None:
    ls = landscape_factory(rate_limit=8)
    ls.set_options(rate_limit_window_s=2.0)
    minted = ls.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.ROTATED, report.error
    assert assert_consistent(ls) == minted.leaf_sha256
    assert any(c["status"] == 429 for c in ls.calls()), "the rate limit never bit"


def test_resumes_a_run_that_stopped_after_registering_the_new_leaf(landscape: Landscape) -> None:
    from cpi_cert_rotate import material
    from cpi_cert_rotate.cf import CfClient

    minted = landscape.mint(cn="ntifext-client", days=90)
    request = request_for(landscape, minted.chain_pem, minted.key_pem)
    with CfClient(landscape.api_url, request.auth) as client:
        # What a run killed (SIGKILL) right after step (4) leaves: a second binding with
        # the new leaf, env and instances still on the old certificate.
        client.create_app_binding(
            landscape.app_guid,
            landscape.service_instance_guid,
            name=None,
            parameters=material.binding_parameters(request.chain[0]),
            strategy="multiple",
            deadline=time.monotonic() + 30,
        )
    assert minted.leaf_sha256 in live_binding_leaves(landscape)
    report = rotate(request)
    assert report.outcome is Outcome.ROTATED, report.error
    assert any("reused" in w for w in report.warnings)
    assert assert_consistent(landscape) == minted.leaf_sha256
    assert live_binding_leaves(landscape) == {minted.leaf_sha256}
    assert len(landscape.state()["bindings"]) == 1


def test_auto_with_pinning_off_renews_in_place(
    landscape_factory: Callable[..., Landscape],
) -> None:
    # Overlap would register a clone (same subject and issuer DN), which CPI refuses
    # when pinning is off; the renewal is accepted without a binding change.
    ls = landscape_factory(pinning=False)
    minted = ls.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem))
    assert report.outcome is Outcome.ROTATED, report.error
    assert report.strategy is Strategy.IN_PLACE
    assert env_leaf_sha256(ls) == minted.leaf_sha256


def test_restage_that_fails_after_stopping_the_app_is_undone(
    landscape_factory: Callable[..., Landscape],
) -> None:
    ls = landscape_factory(staging_s=0.2, start_s=0.1)
    old_leaf = env_leaf_sha256(ls)
    minted = ls.mint(cn="ntifext-client", days=90)
    ls.add_fault(
        {"method": "POST", "path": r"^/v3/apps/[^/]+/actions/start$", "status": 500, "times": 1}
    )
    report = rotate(request_for(ls, minted.chain_pem, minted.key_pem, strategy=Strategy.RESTAGE))
    ls.clear_faults()
    assert report.outcome is Outcome.ROLLED_BACK, report.state_left
    assert assert_consistent(ls) == old_leaf
    deadline = time.monotonic() + 10
    while not instance_leaves(ls) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert instance_leaves(ls), "the app was left stopped"
    assert set(instance_leaves(ls)) == {old_leaf}


def test_custom_annotation_prefix_records_the_rotation_under_it(landscape: Landscape) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    report = rotate(
        request_for(
            landscape, minted.chain_pem, minted.key_pem, annotation_prefix="rotation.example.com"
        )
    )
    assert report.outcome is Outcome.ROTATED, report.error
    notes = the_app(landscape)["annotations"]
    assert notes["rotation.example.com/fingerprint-sha256"] == minted.leaf_sha256
    assert not any(key.startswith(AnnotationKeys().prefix) for key in notes)


def test_refused_annotation_prefix_stops_before_any_call(landscape: Landscape) -> None:
    """The prefix every earlier version used: real CC answers 422 to its first write."""
    minted = landscape.mint(cn="ntifext-client", days=90)
    calls = len(landscape.calls())
    report = rotate(
        request_for(
            landscape, minted.chain_pem, minted.key_pem, annotation_prefix="cpi-cert-rotate"
        )
    )
    assert report.outcome is Outcome.INVALID_INPUT
    assert report.exit_code is ExitCode.BAD_INPUT
    assert report.error_code == "bad-annotation-prefix"
    assert "at least one dot" in (report.error or "")
    assert landscape.calls()[calls:] == []


def _leaf_only(chain_pem: str) -> str:
    end = "-----END CERTIFICATE-----"
    return chain_pem.split(end, maxsplit=1)[0] + end + "\n"


def test_tls_refusal_in_the_test_step_is_final_and_names_what_was_refused(
    landscape: Landscape,
) -> None:
    """The leaf alone, its issuing CA passed as a "trusted root" (so material accepts it):
    the broker registers the leaf, CPI's TLS server refuses the chain with UNKNOWN_CA. That
    used to be retried for the whole verify budget as if CPI were still learning the
    binding."""
    from cpi_cert_rotate import material

    old_leaf = env_leaf_sha256(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    issuing_ca = material.load_chain(minted.chain_pem)[1]
    request = request_for(
        landscape,
        _leaf_only(minted.chain_pem),
        minted.key_pem,
        trusted_roots=(issuing_ca,),
        verify_timeout_s=30.0,
    )
    started = time.monotonic()
    report = rotate(request)
    took = time.monotonic() - started

    assert report.outcome is Outcome.ROLLED_BACK, report.error
    assert took < 10, f"a TLS refusal was retried ({took:.1f}s)"
    error = report.error or ""
    assert "refused the new certificate in the TLS handshake" in error
    assert "UNKNOWN_CA" in error
    assert "an intermediate is missing" in error
    assert "with 0 CA certificate(s)" in error
    assert not report.verified
    assert assert_consistent(landscape) == old_leaf
    assert minted.leaf_sha256 not in live_binding_leaves(landscape)


def test_rotation_without_a_test_call_is_reported_unverified(landscape: Landscape) -> None:
    minted = landscape.mint(cn="ntifext-client", days=90)
    report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem, verify_path=None))
    assert report.outcome is Outcome.ROTATED
    assert report.verified is False
    assert report.unproven
    assert report.to_json()["verified"] is False
    assert any(
        w.startswith("NOTHING PROVED THAT THE NEW CERTIFICATE WORKS") for w in report.warnings
    )
    test_step = next(s for s in report.steps if s.name == "test")
    assert (test_step.status, test_step.detail.startswith("NOT TESTED")) == ("skipped", True)
    proven = rotate(
        request_for(landscape, *_fresh(landscape), verify_path="/http/ping", force=True)
    )
    assert proven.outcome is Outcome.ROTATED
    assert proven.verified is True
    assert not proven.unproven


def _fresh(ls: Landscape) -> tuple[str, str]:
    minted = ls.mint(cn="ntifext-client", days=90)
    return minted.chain_pem, minted.key_pem
