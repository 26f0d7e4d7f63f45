"""Every examples/*.yml under nektos/act, against the sandbox, with the released image.

For each example a copy is run where:
- `uses: org/cpi-cert-rotate@v1` becomes `uses: ./`, a checkout whose action.yml was
  pinned by scripts/release-pin-action.sh to the image that scripts/release-image.sh
  pushed to the loopback registry (the release form; pulled back by digest);
- the target names (orders-app, cpi-runtime) become the sandbox's, and `cf-ca-cert`
  is added (the sandbox's CF API has a private CA; SAP BTP's does not need one), and
  `trusted-roots` (the sandbox's root cannot be on SAP's list of approved roots);
- a last step (`if: always()`) saves the Action's outputs, as the workflow's expression
  engine sees them, to the workspace. The job summary is read from act's JSON log (act
  logs each step's summary file after the step).
Variables, secrets and dispatch inputs are derived from the `with:` block: whatever
`vars.X`, `secrets.X` or `inputs.X` feeds an input gets the sandbox's value for it.

Asserted: the outcome and outputs, the summary, the log audit (no key line, password
or token in act's log), and for examples with an `if: failure()` step, a failing run
(a wrong password) whose notice step runs with the Action's `reason`.

An example that cannot run under act is listed in CANNOT_RUN with the reason; an
example in neither table fails the test. Skips (no podman/act) fail under
CPI_REQUIRE_CONTAINER=1.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import act_kit
import pytest
import registry_kit
import yaml
from act_kit import Act, ActRun
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from material_kit import key_lines
from podman_kit import CACHE, ROOT, Podman, unavailable_reason
from registry_kit import Registry, publish_once
from runner_kit import RunnerDirs, landscape_inputs, run_entrypoint

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(1800)]

EXAMPLES = sorted((ROOT / "examples").glob("*.yml"))
USES = re.compile(r"^org/cpi-cert-rotate@")
EXPRESSION = re.compile(r"^\$\{\{\s*(vars|secrets|inputs)\.([A-Za-z0-9_-]+)\s*\}\}$")


@dataclass(frozen=True)
class Scenario:
    """How an example runs here: the outcome of its passing run, and how one fails.

    `fails_by`: "wrong-password" (the CF login is refused) or "expiring" (the live
    certificate is first rotated to one that expires in 10 days, which the check's
    `fail-if-expires-within` must turn red).
    """

    event: str
    reason: str
    dispatch: dict[str, str] = field(default_factory=dict)
    fails_by: str = "wrong-password"


SCENARIOS = {
    "scheduled-rotation.yml": Scenario("schedule", "rotated"),
    "fleet-rotation.yml": Scenario("schedule", "rotated"),
    "check-expiry.yml": Scenario("schedule", "dry-run", fails_by="expiring"),
    "manual-rotation.yml": Scenario(
        "workflow_dispatch",
        "rotated",
        {"environment": "cpi-sandbox", "dry-run": "false", "force": "true", "strategy": "auto"},
    ),
}
CANNOT_RUN = {
    "fleet-plan-rotate.yml": (
        "its plan job uses the scan action (scan/action.yml), which this test does not pin to "
        "the released image yet; tests/action/test_fleet_example.py runs the plan and the "
        "rotate matrix under the runner emulation"
    ),
    "fleet-targets.yml": (
        "its plan job uses the scan action and its rotate job logs in to Vault with the job's "
        "GitHub OIDC token, which act does not provide; tests/action/test_action_targets.py "
        "runs both jobs under the runner emulation against a real OpenBao"
    ),
    "scheduled-vault.yml": (
        "logs in to Vault with the job's GitHub OIDC token; act provides no "
        "ACTIONS_ID_TOKEN_REQUEST_URL (tests/action/test_action_runner_vault.py runs this "
        "login against a real OpenBao with the runner emulation)"
    ),
    "scheduled-passwordless.yml": (
        "logs in to Cloud Foundry and Vault with the job's GitHub OIDC token; act provides "
        "no ACTIONS_ID_TOKEN_REQUEST_URL (tests/action/test_action_runner_oidc.py runs its "
        "`with:` as written with the runner emulation, and the container test runs the same "
        "logins in the image)"
    ),
}


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    reason = (
        unavailable_reason() or registry_kit.unavailable_reason() or act_kit.unavailable_reason()
    )
    if reason is not None:
        if os.environ.get("CPI_REQUIRE_CONTAINER") == "1":
            pytest.fail(f"CPI_REQUIRE_CONTAINER=1 but the act test cannot run: {reason}")
        pytest.skip(f"act test not run: {reason} (CPI_REQUIRE_CONTAINER=1 makes this fail)")
    return Podman(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def released(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The image reference by digest, pulled from the loopback registry into podman."""
    published = publish_once(podman, CACHE)
    with Registry(tmp_path_factory.mktemp("registry"), published.storage) as registry:
        reference = published.reference(registry)
        podman("pull", "--quiet", "--cert-dir", str(registry.cert_dir), reference)
        yield reference


@pytest.fixture(scope="module")
def act(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Act, str]]:
    with Act(podman, tmp_path_factory.mktemp("act")) as runner:
        yield runner, runner.job_image(podman.base_image())
    # act removes its job containers (also after a failed job, with --rm); none may stay
    listed = podman("ps", "--all", "--filter", f"label={runner.label}", "--format", "{{.Names}}")
    leftovers = listed.stdout.split()
    for name in leftovers:
        podman("rm", "--force", name, check=False)
    assert not leftovers, leftovers


def _copy(example: Path, ls: Any) -> dict[str, Any]:
    """The example as this test runs it (see the module docstring)."""
    text = (
        example.read_text()
        .replace("orders-app", ls.app)
        .replace("cpi-runtime", ls.service_instance)
    )
    workflow: dict[str, Any] = yaml.safe_load(text)
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if USES.match(str(step.get("uses", ""))):
                step["uses"] = "./"
                step.setdefault("id", "cpi")
                step["with"].setdefault("cf-ca-cert", "${{ vars.CF_CA_CERT }}")
                # the sandbox's root stands in for one on SAP's list, which it cannot be on
                step["with"].setdefault("trusted-roots", "${{ vars.CPI_TRUSTED_ROOTS }}")
                step_id = step["id"]
        job["steps"].append(
            {
                "name": "collect for the test",
                "if": "always()",
                "env": {"OUTPUTS": f"${{{{ toJSON(steps.{step_id}.outputs) }}}}"},
                "run": 'printf "%s" "$OUTPUTS" > "$GITHUB_WORKSPACE/.act-out/outputs.json"\n',
            }
        )
    return workflow


def _action_step(workflow: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for j in workflow["jobs"].values() for s in j["steps"] if s.get("uses") == "./"]
    return step


def _wiring(step: dict[str, Any], values: dict[str, str]) -> dict[str, dict[str, str]]:
    """vars, secrets and dispatch inputs that feed the Action's inputs their values."""
    wired: dict[str, dict[str, str]] = {"vars": {}, "secrets": {}, "inputs": {}}
    for name, given in step["with"].items():
        match = EXPRESSION.match(str(given))
        if match:
            wired[match.group(1)][match.group(2)] = values.get(name, "")
    return wired


def _values(ls: Any, minted: Any) -> dict[str, str]:
    """Every input's sandbox value, including the forms only some examples use."""
    key = serialization.load_pem_private_key(minted.key_pem.encode(), None)
    chain = x509.load_pem_x509_certificates(minted.chain_pem.encode())
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    p12 = pkcs12.serialize_key_and_certificates(
        b"cpi", key, chain[0], chain[1:], serialization.BestAvailableEncryption(b"p12-pass-1")
    )
    return {
        **landscape_inputs(ls, minted),
        "cf-client-id": ls.client_id,
        "cf-client-secret": ls.client_secret,
        "pkcs12": base64.b64encode(p12).decode(),
        "pkcs12-password": "p12-pass-1",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_under_act(
    example: Path,
    podman: Podman,
    released: str,
    act: tuple[Act, str],
    tmp_path: Path,
    record_property: Any,
) -> None:
    if example.name in CANNOT_RUN:
        pytest.skip(f"cannot run under act: {CANNOT_RUN[example.name]}")
    assert example.name in SCENARIOS, f"{example.name}: add a Scenario (or a CANNOT_RUN reason)"
    scenario = SCENARIOS[example.name]
    runner, job_image = act

    from cf_sandbox import Landscape

    workspace = tmp_path / "repo"
    (workspace / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / "action.yml", workspace / "action.yml")
    pin = [str(ROOT / "scripts" / "release-pin-action.sh"), released]
    done = subprocess.run(
        [*pin, "action.yml"], cwd=workspace, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr

    with Landscape(instances=2) as ls:
        minted = ls.mint(cn="ntifext-client", days=90)
        values = _values(ls, minted)
        workflow = _copy(example, ls)
        step = _action_step(workflow)
        path = workspace / ".github" / "workflows" / example.name
        path.write_text(yaml.safe_dump(workflow, sort_keys=False))
        wired = _wiring(step, values)
        wired["vars"]["CF_CA_CERT"] = ls.ca_pem
        wired["vars"]["CPI_TRUSTED_ROOTS"] = ls.trusted_root_pem
        event = tmp_path / "event.json"
        inputs = {**scenario.dispatch, **wired["inputs"]}
        event.write_text(json.dumps({"inputs": inputs} if inputs else {}))
        matrix = _matrix_leg(workflow, ls.app)
        key = serialization.load_pem_private_key(minted.key_pem.encode(), None)
        secrets = [*key_lines(key), ls.password, ls.client_secret, values["pkcs12"][:64]]

        def go(secret_values: dict[str, str]) -> ActRun:
            return runner.run(
                workspace,
                path,
                scenario.event,
                job_image=job_image,
                variables=wired["vars"],
                secrets=secret_values,
                event_path=event,
                matrix=matrix,
            )

        # (1) the passing run
        run = go(wired["secrets"])
        record_property("act_log_lines", len(run.log.splitlines()))
        assert run.code == 0, run.log[-6000:]
        assert run.outputs.get("reason") == scenario.reason, (run.outputs, run.log[-4000:])
        assert run.summary.startswith("### "), run.summary
        if scenario.reason == "rotated":
            app = next(a for a in ls.state()["apps"] if a["name"] == ls.app)
            assert run.outputs["fingerprint-sha256"] == minted.leaf_sha256
            assert app["env"]["CLI_CHAIN"].startswith("-----BEGIN CERTIFICATE-----")
        _audit(run.shown_log, secrets)
        assert f"image={released}" in run.log  # act ran the pinned image, by digest

        # (2) a failing run, when the example has a notice step for it
        notices = [
            s
            for j in workflow["jobs"].values()
            for s in j["steps"]
            if str(s.get("if", "")).strip() == "failure()"
        ]
        if not notices:
            return
        if scenario.fails_by == "expiring":
            _rotate_to_a_certificate_expiring_in_10_days(ls, tmp_path)
            failed = go(wired["secrets"])
            assert failed.outputs.get("days-remaining") in ("9", "10"), failed.outputs
        else:
            wrong = dict.fromkeys(_password_secrets(step), "wrong-password")
            failed = go({**wired["secrets"], **wrong})
            assert failed.outputs.get("reason") == "failed", failed.outputs
        assert failed.code != 0, failed.log[-4000:]
        assert "❌" in failed.summary, failed.summary
        # the notice ran once, with the Action's outputs that its env names in its text
        (notice,) = notices
        (call,) = failed.gh_calls
        assert call[:2] == ["issue", "create"]
        shown = [
            failed.outputs.get(match.group(1), "")
            for value in notice.get("env", {}).values()
            if (match := re.search(r"steps\.[\w-]+\.outputs\.([\w-]+)", str(value)))
        ]
        assert any(shown), (notice, failed.outputs)
        for value in filter(None, shown):
            assert any(value in argument for argument in call), (value, call)
        _audit(failed.shown_log, secrets)


def _rotate_to_a_certificate_expiring_in_10_days(ls: Any, tmp_path: Path) -> None:
    """Make the live certificate a 10-day one (the runner emulation runs the Action)."""
    short = ls.mint(cn="ntifext-client", days=10)
    dirs = RunnerDirs(tmp_path / "pre-rotate")
    done = run_entrypoint(landscape_inputs(ls, short, force="true"), dirs)
    assert done.code == 0, done.stdout + done.stderr
    assert done.outputs["rotated"] == "true"


def _password_secrets(step: dict[str, Any]) -> list[str]:
    names = []
    for name in ("cf-password", "cf-client-secret"):
        match = EXPRESSION.match(str(step["with"].get(name, "")))
        if match and match.group(1) == "secrets":
            names.append(match.group(2))
    assert names, "the example passes no CF password or client secret from a secret"
    return names


def _matrix_leg(workflow: dict[str, Any], app: str) -> str | None:
    """`app:<sandbox app>` for a job with an app matrix: the one leg the sandbox has."""
    for job in workflow["jobs"].values():
        apps = job.get("strategy", {}).get("matrix", {}).get("app")
        if apps:
            assert app in apps
            return f"app:{app}"
    return None


def _audit(log: str, secrets: list[str]) -> None:
    for secret in {s for s in secrets if s}:
        assert secret not in log, f"a secret ({len(secret)} chars) is in act's log"
