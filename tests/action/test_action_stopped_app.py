"""The Action rotates a stopped app without starting it, and says so (outputs, summary).

Cloud Controller starts a stopped app when a deployment is created for it
(cloud_controller_ng app/actions/deployment_create.rb); the sandbox does the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from material_kit import key_lines
from runner_kit import RunnerDirs, audit, landscape_inputs, run_entrypoint

from cpi_cert_rotate.cf import CfClient
from cpi_cert_rotate.models import CfAuth

pytestmark = pytest.mark.e2e


def _app(ls: Any) -> dict[str, Any]:
    return next(a for a in ls.state()["apps"] if a["name"] == ls.app)


def test_the_action_rotates_a_stopped_app_and_leaves_it_stopped(
    landscape: Any, tmp_path: Path
) -> None:
    ls = landscape
    app_guid = _app(ls)["guid"]
    old = {b["leaf_sha256"] for b in ls.state()["bindings"] if b["app_guid"] == app_guid}
    auth = CfAuth(username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem)
    with CfClient(ls.api_url, auth) as cf:
        cf.stop_app(app_guid)
    since = len(ls.calls())
    minted = ls.mint(cn="ntifext-client", days=90)
    secrets = key_lines(serialization.load_pem_private_key(minted.key_pem.encode(), None))
    result = run_entrypoint(landscape_inputs(ls, minted), RunnerDirs(tmp_path / "run"))
    audit(result, [*secrets, ls.password])

    assert result.code == 0, result.stdout + result.stderr
    assert _app(ls)["state"] == "STOPPED", "the Action started a stopped app"
    posts = [c["path"] for c in ls.calls()[since:] if c["method"] == "POST"]
    assert not [p for p in posts if p == "/v3/deployments" or p.endswith(("/start", "/restart"))]
    env = _app(ls)["env"]
    assert minted.chain_pem.split("-----END CERTIFICATE-----")[0] in env["CLI_CHAIN"]
    live = {
        b["leaf_sha256"]
        for b in ls.state()["bindings"]
        if b["app_guid"] == app_guid and b["state"] == "succeeded"
    }
    assert live == {minted.leaf_sha256}
    assert not old & live
    out = result.outputs
    assert (out["rotated"], out["verified"], out["reason"]) == ("true", "true", "rotated")
    assert out["app-stopped"] == "true"
    assert out["deployment-guid"] == ""
    assert '"app_stopped":true' in out["results"]
    assert "the app is stopped and was left stopped" in result.summary
    assert "will present the new certificate when it is started" in result.summary
    warnings = result.commands("warning")
    assert any("will present the new certificate when it is started" in w for w in warnings)
