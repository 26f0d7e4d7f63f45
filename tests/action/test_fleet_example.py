"""examples/fleet-plan-rotate.yml run as a runner would, against a sandbox fleet.

The plan job's scan step runs with the inputs its `with:` gives (expressions evaluated
against its environment's variables and secrets, action.yml defaults added, `runs.args`
passed); its `due` output becomes the job output the rotate job's `strategy.matrix`
reads through `fromJSON`; each matrix entry then runs the rotate step in the environment
the entry names, at most `max-parallel` at a time, while a probe calls the iFlow through
that app. Exactly the apps the sandbox's state says are due must rotate, each with zero
failed probe calls; no other app's certificate may change.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from material_kit import key_lines
from runner_kit import ROOT, ActionRun, RunnerDirs, audit, run_entrypoint
from workflow_kit import Contexts, condition, render, with_defaults

from cf_sandbox import Landscape
from cf_sandbox.pki import load_pem_certs, sha256_hex
from cf_sandbox.probe import Probe
from fleet_kit import expected

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLE = ROOT / "examples" / "fleet-plan-rotate.yml"
APPS = 50
PROBE_RPS = 10
SETTLE_S = 0.5  # the probe keeps calling after the step, so late failures count


def _yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _step(job: dict[str, Any], uses: str) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith(uses)]
    return step


def _key_lines(pem: str) -> list[str]:
    return key_lines(serialization.load_pem_private_key(pem.encode(), None))


def test_plan_then_rotate_rotates_exactly_the_due_apps_with_no_failed_call(
    landscape_factory: Callable[..., Landscape], tmp_path: Path
) -> None:
    ls = landscape_factory(instances=1, fleet_apps=APPS)
    workflow, scan_action, main_action = (
        _yaml(EXAMPLE),
        _yaml(ROOT / "scan" / "action.yml"),
        _yaml(ROOT / "action.yml"),
    )
    # The runner trusts the sandbox's CA as a self-hosted runner trusts a private one.
    ca_file = tmp_path / "sandbox-ca.pem"
    ca_file.write_text(ls.ca_pem)
    runner_env = {"SSL_CERT_FILE": str(ca_file)}
    login = {"CF_API": ls.api_url, "CF_USERNAME": ls.username, "CF_ORIGIN": ls.origin}
    environments: dict[str, tuple[dict[str, str], dict[str, str]]] = {
        "cpi-fleet-plan": (dict(login), {"CF_PASSWORD": ls.password})
    }
    state = ls.state()
    before = {a["guid"]: a["env"].get("CLI_CHAIN") for a in state["apps"]}
    minted = {}
    for _, _, app, _ in expected(ls):
        new = ls.mint(cn=f"{app}-client", days=90, key="ec-p256")
        minted[app] = new
        environments[f"cpi-{app}"] = (
            {**login, "CPI_CLIENT_CHAIN": new.chain_pem},
            {"CF_PASSWORD": ls.password, "CPI_CLIENT_KEY": new.key_pem},
        )
    secrets = [ls.password] + [ln for m in minted.values() for ln in _key_lines(m.key_pem)]
    secrets += [
        ln
        for a in state["apps"]
        if a["env"].get("CLI_KEY")
        for ln in _key_lines(a["env"]["CLI_KEY"])
    ]
    workflow_env = workflow["env"]
    missing: list[str] = []

    def contexts(environment: str | None, **more: Any) -> Contexts:
        variables, secret_values = environments[environment] if environment else ({}, {})
        values = {"vars": variables, "secrets": secret_values, "env": workflow_env, **more}
        return Contexts(values, missing)

    # -- the plan job ---------------------------------------------------------------------
    plan = workflow["jobs"]["plan"]
    plan_env = plan["environment"]
    scan_step = _step(plan, "org/cpi-cert-rotate/scan@")
    inputs = with_defaults(render(scan_step["with"], contexts(plan_env)), scan_action)
    planned = run_entrypoint(
        inputs, RunnerDirs(tmp_path / "plan"), env=runner_env, args=scan_action["runs"]["args"]
    )
    audit(planned, secrets)
    assert planned.code == 0, planned.stdout + planned.stderr
    steps = {scan_step["id"]: {"outputs": planned.outputs, "outcome": "success"}}
    job_outputs = render(plan["outputs"], Contexts({"steps": steps}, missing))
    needs = {"plan": {"outputs": job_outputs, "result": "success"}}

    # -- the rotate job: condition, matrix, environment and group per entry -----------------
    rotate = workflow["jobs"]["rotate"]
    assert condition(rotate["if"], Contexts({"needs": needs}, missing))
    matrix = render(rotate["strategy"]["matrix"], Contexts({"needs": needs}, missing))
    assert set(matrix) == {"include"}
    entries: list[dict[str, str]] = matrix["include"]
    rows = expected(ls)
    bound = Counter((org, space, app) for org, space, app, _ in rows)
    want_due = {
        (org, space, app)
        for (org, space, app, _), (_, due) in rows.items()
        if due and bound[(org, space, app)] == 1  # an app on two instances is held
    }
    assert {(e["org"], e["space"], e["app"]) for e in entries} == want_due
    assert len(want_due) >= 5

    guids = {(a["name"]): a["guid"] for a in state["apps"]}
    groups: dict[str, str] = {}

    def run_entry(entry: dict[str, str]) -> tuple[dict[str, str], ActionRun, dict[str, Any]]:
        job_contexts = Contexts({"matrix": entry, "needs": needs, "vars": {}}, missing)
        environment = render(rotate["environment"], job_contexts)
        groups[entry["app"]] = render(rotate["concurrency"]["group"], job_contexts)
        step = _step(rotate, "org/cpi-cert-rotate@")
        step_contexts = contexts(environment, matrix=entry, needs=needs)
        inputs = with_defaults(render(step["with"], step_contexts), main_action)
        # the sandbox's root stands in for one on SAP's list, which it cannot be on
        inputs["trusted-roots"] = ls.trusted_root_pem
        probe = Probe(ls.runtime, guids[entry["app"]], ls.ca_pem)
        probe.start(PROBE_RPS)
        try:
            result = run_entrypoint(inputs, RunnerDirs(tmp_path / entry["app"]), env=runner_env)
            time.sleep(SETTLE_S)
        finally:
            probe.stop()
        return entry, result, probe.result()

    with ThreadPoolExecutor(max_workers=int(rotate["strategy"]["max-parallel"])) as pool:
        results = list(pool.map(run_entry, entries))

    for entry, result, probe in results:
        audit(result, secrets)
        where = f"{entry['app']}: {result.stdout[-2000:]}{result.stderr[-1000:]}"
        assert result.code == 0, where
        assert result.outputs["reason"] == "rotated", where
        assert result.outputs["fingerprint-sha256"] == minted[entry["app"]].leaf_sha256
        assert probe["calls"] >= PROBE_RPS // 2, entry["app"]
        assert probe["failures"] == 0, (entry["app"], probe["timeline"][:5])
        assert groups[entry["app"]] == f"cpi-cert-rotate-{entry['environment']}"
    assert len(set(groups.values())) == len(entries)  # one queue per app
    assert missing == []  # every vars/secrets/matrix/needs lookup found its value

    # exactly the due apps changed their certificate; every other app kept its own
    after = {a["guid"]: a["env"].get("CLI_CHAIN") for a in ls.state()["apps"]}
    changed = {g for g in after if after[g] != before[g]}
    assert changed == {guids[app] for _, _, app in want_due}
    for _, _, app in want_due:
        leaf = load_pem_certs(after[guids[app]])[0]
        assert sha256_hex(leaf) == minted[app].leaf_sha256
