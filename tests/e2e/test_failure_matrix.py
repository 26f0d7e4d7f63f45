"""Every write call of the swap strategy, each kind of failure: rotated or rolled back.

(Or failed before the first change, which leaves nothing to roll back.) Overlap, the
default, has its own full matrix with the probe and re-runs (`test_fault_matrix.py`); swap
differs in its set step, which deletes the old binding before the new one exists.

"Half-way" means the app's env holds a chain and key that do not pair, or a leaf that no
live binding registers, or instances left on a certificate CPI no longer accepts.
"""

from __future__ import annotations

from typing import Any

import pytest
from rotation_kit import assert_consistent, instance_leaves, live_binding_leaves, request_for

from cf_sandbox import Landscape
from cpi_cert_rotate.cf import CfClient
from cpi_cert_rotate.models import Outcome, Strategy
from cpi_cert_rotate.rotation import rotate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WRITES = {
    "create-binding": ("POST", r"^/v3/service_credential_bindings$"),
    "delete-binding": ("DELETE", r"^/v3/service_credential_bindings/[^/]+$"),
    "patch-env": ("PATCH", r"^/v3/apps/[^/]+/environment_variables$"),
    "create-deployment": ("POST", r"^/v3/deployments$"),
    "patch-metadata": ("PATCH", r"^/v3/apps/[^/]+$"),
}


def _http_faults() -> list[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, dict[str, Any]]] = []
    for name, (method, path) in WRITES.items():
        base = {"method": method, "path": path, "times": 1}
        cases.append((f"{name}-500", {**base, "status": 500}))
        cases.append((f"{name}-drop-before", {**base, "drop_connection": True}))
        cases.append((f"{name}-drop-after", {**base, "drop_connection": True, "after_apply": True}))
    return cases


FAULTS = [
    *_http_faults(),
    ("bind-job-fails", {"job": "service_bindings.create", "fail": True, "times": 1}),
    ("unbind-job-fails", {"job": "service_bindings.delete", "fail": True, "times": 1}),
    ("deployment-canceled", {"deployment": "cancel", "times": 1}),
]


@pytest.fixture(autouse=True)
def _quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's retry backoff scaled down: where a run ends matters here, not when."""
    from cpi_cert_rotate.cf import http

    monkeypatch.setattr(http, "_BACKOFF_FACTOR_S", 0.05)
    monkeypatch.setattr(http, "_BACKOFF_JITTER_S", 0.0)


@pytest.mark.parametrize("strategy", [Strategy.SWAP], ids=str)
@pytest.mark.parametrize(("fault_name", "fault"), FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_ends_rotated_or_rolled_back(
    landscape: Landscape, strategy: Strategy, fault_name: str, fault: dict[str, Any]
) -> None:
    old_leaf = assert_consistent(landscape)
    minted = landscape.mint(cn="ntifext-client", days=90)
    landscape.add_fault(fault)
    report = rotate(
        request_for(landscape, minted.chain_pem, minted.key_pem, strategy=strategy),
        client_factory=lambda r: CfClient(r.target.api_url, r.auth, timeout_s=3.0),
    )
    assert [rule["fired"] for rule in landscape.faults()] == [1], "the fault never fired"
    landscape.clear_faults()

    assert report.outcome in (Outcome.ROTATED, Outcome.ROLLED_BACK, Outcome.FAILED), (
        f"{fault_name}: {report.outcome}: {report.error} {report.state_left}"
    )
    live_leaf = assert_consistent(landscape)
    expected = minted.leaf_sha256 if report.outcome is Outcome.ROTATED else old_leaf
    assert live_leaf == expected
    assert set(instance_leaves(landscape)) == {expected}
    if report.outcome is Outcome.FAILED:
        # Failed before the first change (e.g. the lock could not be written).
        assert not any(step.name == "set" for step in report.steps)
    if report.outcome in (Outcome.ROLLED_BACK, Outcome.FAILED):
        assert minted.leaf_sha256 not in live_binding_leaves(landscape)
        assert report.exit_code == 1
    else:
        assert live_binding_leaves(landscape) == {minted.leaf_sha256}
