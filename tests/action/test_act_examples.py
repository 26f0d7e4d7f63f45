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

examples/fleet-plan-rotate.yml has a test of its own (`test_plan_then_rotate_under_act`):
its repository copy holds both actions, pinned by the release script's default, the
scan step uses `./scan`, and the rotate matrix comes from the plan job's `due` output.

An example that cannot run under act is listed in CANNOT_RUN with the reason; an
example in none of the tables fails the test. Skips (no podman/act) fail under
CPI_REQUIRE_CONTAINER=1.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import act_kit
import pytest
import registry_kit
import yaml
from act_kit import Act, ActRun
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
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
    "scheduled-vault.yml": Scenario("schedule", "rotated"),
    "scheduled-passwordless.yml": Scenario("schedule", "rotated", fails_by="no-id-token"),
}
OWN_TEST = {
    "fleet-plan-rotate.yml": "test_plan_then_rotate_under_act",
    "fleet-targets.yml": "test_targets_in_one_job_under_act",
}
CANNOT_RUN: dict[str, str] = {}


def _wants_id_token(workflow: dict[str, Any]) -> bool:
    """A job with `permissions: id-token: write`: GitHub's runner gives it the OIDC
    token variables, act gives none (nektos/act has no ACTIONS_ID_TOKEN_REQUEST_URL)."""
    return any(
        (job.get("permissions") or {}).get("id-token") == "write"
        for job in workflow["jobs"].values()
    )


def _runner_oidc_env(ls: Any, workspace: Path) -> dict[str, str]:
    """What the runner adds for `id-token: write`, pointing at the sandbox's stand-in.

    GitHub's token endpoint has a public certificate, its stand-in one from the sandbox's
    CA, which `SSL_CERT_FILE` names (oidc_kit.py). act with `--bind` mounts the workspace
    at its own path in the job's and the Action's containers, so one path serves both.
    """
    assert ls.oidc is not None
    ca = workspace / ".act-ca" / "sandbox-ca.pem"
    ca.parent.mkdir(exist_ok=True)
    ca.write_text(ls.ca_pem)  # a public certificate
    return {**ls.oidc.github.runner_env(), "SSL_CERT_FILE": str(ca)}


def _set_up_vault(bao: Any, ls: Any, given: dict[str, Any], subject: str) -> None:
    """OpenBao as docs/vault.md sets it up, with the example's own names: a PKI mount
    under the sandbox's root, a role, and a JWT auth role bound to the job's `sub` and
    to the example's `vault-audience`."""
    from openbao_kit import sign_policy

    mount, role = str(given["vault-pki-mount"]), str(given["vault-role"])
    bao.enable_pki(mount, ls.sign_intermediate, common_name="Act Issuing CA")
    bao.create_role(mount, role, organization=["Sandbox Clients"], country=["DE"])
    bao.enable_jwt(
        str(given.get("vault-auth-mount", "jwt")),
        ls.oidc.github.key.public_pem(),
        str(given["vault-auth-role"]),
        [str(given["vault-audience"])],
        [bao.policy(sign_policy(mount, role))],
        bound_claims={"sub": subject},
    )


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
                if "vault-addr" in step["with"]:  # OpenBao's CA is the test's own
                    step["with"].setdefault("vault-ca-cert", "${{ vars.VAULT_CA_CERT }}")
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


def _values(ls: Any, minted: Any, bao: Any = None) -> dict[str, str]:
    """Every input's sandbox value, including the forms only some examples use."""
    key = serialization.load_pem_private_key(minted.key_pem.encode(), None)
    chain = x509.load_pem_x509_certificates(minted.chain_pem.encode())
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    p12 = pkcs12.serialize_key_and_certificates(
        b"cpi", key, chain[0], chain[1:], serialization.BestAvailableEncryption(b"p12-pass-1")
    )
    values = {
        **landscape_inputs(ls, minted),
        "cf-client-id": ls.client_id,
        "cf-client-secret": ls.client_secret,
        "pkcs12": base64.b64encode(p12).decode(),
        "pkcs12-password": "p12-pass-1",
    }
    if bao is not None:
        values.update({"vault-addr": bao.address, "vault-namespace": ""})
    return values


def _oidc_values(ls: Any, given: dict[str, Any]) -> dict[str, str]:
    """cf-origin and cf-oidc-audience for an example that logs in to CF with OIDC."""
    from cf_sandbox.oidc_landscape import PLATFORM_ORIGIN

    if "cf-oidc" not in given:
        return {}
    return {"cf-origin": PLATFORM_ORIGIN, "cf-oidc-audience": ls.oidc.ias.issuer}


def test_every_example_has_one_way_to_run() -> None:
    """A new example needs a Scenario, a test of its own or a reason it cannot run."""
    for example in EXAMPLES:
        tables = [t for t in (SCENARIOS, OWN_TEST, CANNOT_RUN) if example.name in t]
        assert len(tables) == 1, f"{example.name}: in {len(tables)} of the tables"


@pytest.mark.parametrize(
    "example", [e for e in EXAMPLES if e.name not in OWN_TEST], ids=lambda p: p.name
)
def test_example_runs_under_act(
    example: Path,
    podman: Podman,
    released: str,
    act: tuple[Act, str],
    tmp_path: Path,
    record_property: Any,
) -> None:
    if example.name in CANNOT_RUN:  # a reason, for an example act cannot run
        pytest.skip(f"cannot run under act: {CANNOT_RUN[example.name]}")
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

    original: dict[str, Any] = yaml.safe_load(example.read_text())
    oidc = _wants_id_token(original)
    with contextlib.ExitStack() as stack:
        ls = stack.enter_context(Landscape(instances=2, oidc=oidc))
        minted = ls.mint(cn="ntifext-client", days=90)
        workflow = _copy(example, ls)
        step = _action_step(workflow)
        bao = None
        if "vault-addr" in step["with"]:
            from cf_sandbox.oidc_issuer import DEFAULT_SUBJECT
            from openbao_kit import OpenBao

            bao = stack.enter_context(OpenBao.start(tmp_path / "openbao"))
            _set_up_vault(bao, ls, step["with"], DEFAULT_SUBJECT)
        values = {**_values(ls, minted, bao), **_oidc_values(ls, step["with"])}
        path = workspace / ".github" / "workflows" / example.name
        path.write_text(yaml.safe_dump(workflow, sort_keys=False))
        wired = _wiring(step, values)
        wired["vars"]["CF_CA_CERT"] = ls.ca_pem
        wired["vars"]["CPI_TRUSTED_ROOTS"] = ls.trusted_root_pem
        if bao is not None:
            wired["vars"]["VAULT_CA_CERT"] = bao.ca_pem
        job_env = _runner_oidc_env(ls, workspace) if oidc else {}
        event = tmp_path / "event.json"
        inputs = {**scenario.dispatch, **wired["inputs"]}
        event.write_text(json.dumps({"inputs": inputs} if inputs else {}))
        matrix = _matrix_leg(workflow, ls.app)
        key = serialization.load_pem_private_key(minted.key_pem.encode(), None)
        secrets = [*key_lines(key), ls.password, ls.client_secret, values["pkcs12"][:64]]

        def go(secret_values: dict[str, str], env: dict[str, str] = job_env) -> ActRun:
            return runner.run(
                workspace,
                path,
                scenario.event,
                job_image=job_image,
                variables=wired["vars"],
                secrets=secret_values,
                event_path=event,
                matrix=matrix,
                job_env=env,
            )

        # (1) the passing run
        run = go(wired["secrets"])
        record_property("act_log_lines", len(run.log.splitlines()))
        if ls.oidc is not None:  # every token GitHub's stand-in and IAS handed out
            secrets += [*ls.oidc.github.issued, *ls.oidc.ias.issued, ls.oidc.github.bearer]
        assert run.code == 0, run.log[-6000:]
        assert run.outputs.get("reason") == scenario.reason, (run.outputs, run.log[-4000:])
        assert run.summary.startswith("### "), run.summary
        if scenario.reason == "rotated":
            app = next(a for a in ls.state()["apps"] if a["name"] == ls.app)
            live = x509.load_pem_x509_certificates(app["env"]["CLI_CHAIN"].encode())[0]
            live_sha256 = live.fingerprint(hashes.SHA256()).hex()
            assert run.outputs["fingerprint-sha256"] == live_sha256
            if bao is None:
                assert live_sha256 == minted.leaf_sha256
            else:  # issued by OpenBao after its JWT login with the job's token
                assert run.outputs["issuer"] == "CN=Act Issuing CA", run.outputs
                new_key = app["env"]["CLI_KEY"].encode()
                secrets += key_lines(serialization.load_pem_private_key(new_key, None))
        if oidc:  # asked for by audience: IAS's for CF (if cf-oidc), then Vault's
            wanted = [values.get("cf-oidc-audience"), step["with"].get("vault-audience")]
            assert ls.oidc.github.audiences == [a for a in wanted if a], ls.oidc.github.audiences
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
        elif scenario.fails_by == "no-id-token":  # the job lacks `id-token: write`
            failed = go(wired["secrets"], {})
            assert failed.outputs.get("reason") == "invalid-input", failed.outputs
            assert "id-token: write" in failed.summary, failed.summary
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


def _pem_key_lines(pems: Iterable[str]) -> list[str]:
    """Every line of these PEM private keys: none may reach act's log."""
    return [
        line
        for pem in pems
        for line in key_lines(serialization.load_pem_private_key(pem.encode(), None))
    ]


def _env_key_lines(apps: Iterable[dict[str, Any]]) -> list[str]:
    """Every line of the keys these sandbox apps hold in their env (CLI_KEY)."""
    return _pem_key_lines(a["env"]["CLI_KEY"] for a in apps if a["env"].get("CLI_KEY"))


def _audit(log: str, secrets: list[str]) -> None:
    for secret in {s for s in secrets if s}:
        assert secret not in log, f"a secret ({len(secret)} chars) is in act's log"


# -- examples/fleet-plan-rotate.yml: plan (the scan action), then the rotate matrix ---------

FLEET = ROOT / "examples" / "fleet-plan-rotate.yml"
FLEET_APPS = 6
"""fleet_seed.py: app-002 and app-005 due, besides the seed app; app-001 and app-004
fresh, app-000 and app-003 not the scan's. A rotation's lock on app-005 holds it."""
SCAN_USES = re.compile(r"^org/cpi-cert-rotate/scan@")
PER_ENVIRONMENT = ("cert-chain", "private-key")
"""The inputs whose values each app's environment holds. act ignores `environment:`
(nektos/act#1714: every job gets the same variables and secrets), so the copy reads each
from a JSON object keyed by environment name: `fromJSON(vars.X)[matrix.environment]`
stands in for `vars.X` of the environment `matrix.environment`."""


def _copy_fleet(workflow: dict[str, Any]) -> dict[str, Any]:
    """A plan-then-rotate example as run here: `./scan` and `./` for the two actions,
    the sandbox's CA (and root, for the rotation; OpenBao's CA, for Vault),
    per-environment values by name, and a collect step per job (`outputs-<job>.json`, or
    `outputs-<app>.json` for a leg of an app matrix)."""
    workflow = json.loads(json.dumps(workflow))
    for name, job in workflow["jobs"].items():
        ids = []
        for step in job["steps"]:
            uses = str(step.get("uses", ""))
            if SCAN_USES.match(uses):
                step["uses"] = "./scan"
            elif USES.match(uses):
                step["uses"] = "./"
                step.setdefault("id", "cpi")
                step["with"]["trusted-roots"] = "${{ vars.CPI_TRUSTED_ROOTS }}"
                if "vault-addr" in step["with"]:  # OpenBao's CA is the test's own
                    step["with"]["vault-ca-cert"] = "${{ vars.VAULT_CA_CERT }}"
                for key in [k for k in PER_ENVIRONMENT if k in step["with"]]:
                    match = EXPRESSION.match(str(step["with"][key]))
                    assert match, (key, step["with"][key])
                    step["with"][key] = (
                        f"${{{{ fromJSON({match[1]}.{match[2]})[matrix.environment] }}}}"
                    )
            else:
                continue
            step["with"]["cf-ca-cert"] = "${{ vars.CF_CA_CERT }}"
            ids.append(step["id"])
        (step_id,) = ids
        job["steps"].append(
            {
                "name": "collect for the test",
                "if": "always()",
                "env": {
                    "OUTPUTS": f"${{{{ toJSON(steps.{step_id}.outputs) }}}}",
                    "TARGET": "${{ matrix.app }}" if job.get("strategy") else name,
                },
                "run": 'printf "%s" "$OUTPUTS" > "$GITHUB_WORKSPACE/.act-out/outputs-$TARGET.json"',
            }
        )
    return workflow


def _fleet_workspace(
    tmp_path: Path, released: str, example: Path
) -> tuple[Path, Path, dict[str, Any]]:
    """(workspace, path of the copy, the example as written): a repository with both
    actions, pinned by the release script's default, and the copy of `example`."""
    workspace = tmp_path / "repo"
    (workspace / ".github" / "workflows").mkdir(parents=True)
    (workspace / "scan").mkdir()
    shutil.copy(ROOT / "action.yml", workspace / "action.yml")
    shutil.copy(ROOT / "scan" / "action.yml", workspace / "scan" / "action.yml")
    done = subprocess.run(  # no file named: the release's default, both actions
        [str(ROOT / "scripts" / "release-pin-action.sh"), released],
        cwd=workspace,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pinned = yaml.safe_load((workspace / "scan" / "action.yml").read_text())["runs"]
    assert pinned == {"using": "docker", "image": f"docker://{released}", "args": ["scan"]}
    original: dict[str, Any] = yaml.safe_load(example.read_text())
    original["on"] = original.pop(True)
    workflow = _copy_fleet(original)
    path = workspace / ".github" / "workflows" / example.name
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    return workspace, path, original


def test_plan_then_rotate_under_act(
    podman: Podman,
    released: str,
    act: tuple[Act, str],
    tmp_path: Path,
    record_property: Any,
) -> None:
    """The plan job's scan (pinned scan/action.yml) finds the due apps, holds the locked
    one, and its `due` output becomes the rotate job's matrix: each entry rotates with its
    own certificate; every other app keeps its own; the log shows no key or password."""
    from cf_sandbox import Landscape
    from cf_sandbox.pki import load_pem_certs, sha256_hex
    from cpi_cert_rotate.cf import CfClient
    from cpi_cert_rotate.models import CfAuth
    from cpi_cert_rotate.rotation import lock
    from fleet_kit import expected

    runner, job_image = act
    workspace, path, original = _fleet_workspace(tmp_path, released, FLEET)

    with Landscape(instances=1, fleet_apps=FLEET_APPS) as ls:
        rows = expected(ls)
        due = sorted({app for (_, _, app, _), (_, is_due) in rows.items() if is_due})
        assert due == ["app-002", "app-005", ls.app]
        held = "app-005"
        apps = {a.name: a for a in ls.store.apps.values()}
        auth = CfAuth(
            username=ls.username, password=ls.password, origin=ls.origin, ca_pem=ls.ca_pem
        )
        with CfClient(ls.api_url, auth) as cf:  # a rotation of app-005 runs elsewhere now
            holder = lock.LockInfo.new("gha:acme/cpi-ops/9001/1", 3600)
            lock.acquire(cf, apps[held].space_guid, held, holder)
        minted = {app: ls.mint(cn=f"{app}-client", days=90, key="ec-p256") for app in due}
        per_environment = {
            "cert-chain": json.dumps({f"cpi-{a}": m.chain_pem for a, m in minted.items()}),
            "private-key": json.dumps({f"cpi-{a}": m.key_pem for a, m in minted.items()}),
        }
        values = {**landscape_inputs(ls, None), **per_environment}
        wired: dict[str, dict[str, str]] = {"vars": {}, "secrets": {}, "inputs": {}}
        for job in original["jobs"].values():
            for step in job["steps"]:
                for kind, found in _wiring(step, values).items():
                    wired[kind].update(found)
        assert set(wired["secrets"]) == {"CF_PASSWORD", "CPI_CLIENT_KEY"}
        wired["vars"]["CF_CA_CERT"] = ls.ca_pem
        wired["vars"]["CPI_TRUSTED_ROOTS"] = ls.trusted_root_pem
        event = tmp_path / "event.json"
        event.write_text("{}")
        state = ls.state()
        before = {a["name"]: a["env"].get("CLI_CHAIN") for a in state["apps"]}
        secrets = [ls.password, *_pem_key_lines(m.key_pem for m in minted.values())]
        secrets += _env_key_lines(state["apps"])

        run = runner.run(
            workspace,
            path,
            "schedule",
            job_image=job_image,
            variables=wired["vars"],
            secrets=wired["secrets"],
            event_path=event,
            timeout=900,
        )
        record_property("act_log_lines", len(run.log.splitlines()))
        assert run.code == 0, run.log[-6000:]
        out = workspace / ".act-out"
        plan = json.loads((out / "outputs-plan.json").read_text())
        matrix = json.loads(plan["due"])["include"]
        rotated = sorted(e["app"] for e in matrix)
        assert rotated == sorted(set(due) - {held})
        assert (plan["due-count"], plan["held"]) == (str(len(rotated)), "1")
        assert all(e["environment"] == f"cpi-{e['app']}" for e in matrix)
        for app in rotated:
            leg = json.loads((out / f"outputs-{app}.json").read_text())
            assert leg["reason"] == "rotated", (app, leg)
            assert leg["fingerprint-sha256"] == minted[app].leaf_sha256
        after = {a["name"]: a["env"].get("CLI_CHAIN") for a in ls.state()["apps"]}
        assert {a for a in after if after[a] != before[a]} == set(rotated)
        for app in rotated:
            assert sha256_hex(load_pem_certs(after[app])[0]) == minted[app].leaf_sha256

    # the summaries: the plan's (the held app and why), then one per rotation
    titles = re.findall(r"^### (.*)$", run.summary, re.M)
    assert len(titles) == 1 + len(rotated), titles
    assert "CPI client certificates: 5 found, 3 due" in titles[0]
    assert sorted(t for t in titles if t.startswith("✅ Certificate rotated")) == sorted(
        f"✅ Certificate rotated: `{app}`" for app in rotated
    )
    assert "#### Due but held out of the matrix" in run.summary
    assert f"/{held}`: a rotation holds the lock cpi-cert-rotate-lock-{held} now" in run.summary
    assert "gha:acme/cpi-ops/9001/1" in run.summary
    _audit(run.shown_log, secrets)
    assert run.log.count(f"image={released}") >= 1 + len(rotated), "act ran the pinned image"


# -- examples/fleet-targets.yml: plan (the scan action), then every due app in one job ------

TARGETS = ROOT / "examples" / "fleet-targets.yml"


def test_targets_in_one_job_under_act(
    podman: Podman,
    released: str,
    act: tuple[Act, str],
    tmp_path: Path,
    record_property: Any,
) -> None:
    """The plan job's scan finds the due apps; its `due` output, through the job's
    outputs, is the rotate job's `targets`; OpenBao issues every due app's certificate
    after a JWT login with the job's OIDC token (the runner's variables, given to act);
    one CF login rotates them all; no other app changes; no key or token in the log."""
    from cf_sandbox import Landscape
    from cf_sandbox.pki import load_pem_certs, sha256_hex
    from fleet_kit import expected
    from openbao_kit import OpenBao

    runner, job_image = act
    workspace, path, original = _fleet_workspace(tmp_path, released, TARGETS)
    rotate_job = original["jobs"]["rotate"]
    assert rotate_job["permissions"]["id-token"] == "write"

    with (
        Landscape(instances=1, fleet_apps=FLEET_APPS, oidc=True) as ls,
        OpenBao.start(tmp_path / "openbao") as bao,
    ):
        assert ls.oidc is not None
        # the job names environment cpi-fleet, so GitHub's token says so in its `sub`
        ls.oidc.github.job.environment = rotate_job["environment"]
        given = next(s for s in rotate_job["steps"] if "vault-addr" in s.get("with", {}))
        _set_up_vault(bao, ls, given["with"], ls.oidc.github.job.subject)
        rows = expected(ls)
        due = sorted({app for (_, _, app, _), (_, is_due) in rows.items() if is_due})
        values = {**landscape_inputs(ls, None), "vault-addr": bao.address}
        wired: dict[str, dict[str, str]] = {"vars": {}, "secrets": {}, "inputs": {}}
        for job in original["jobs"].values():
            for step in job["steps"]:
                for kind, found in _wiring(step, values).items():
                    wired[kind].update(found)
        assert set(wired["secrets"]) == {"CF_PASSWORD"}
        wired["vars"].update(
            {
                "CF_CA_CERT": ls.ca_pem,
                "CPI_TRUSTED_ROOTS": ls.trusted_root_pem,
                "VAULT_CA_CERT": bao.ca_pem,
            }
        )
        event = tmp_path / "event.json"
        event.write_text("{}")
        state = ls.state()
        before = {a["name"]: a["env"].get("CLI_CHAIN") for a in state["apps"]}
        secrets = [ls.password, *_env_key_lines(state["apps"])]
        ls.clear_calls()

        run = runner.run(
            workspace,
            path,
            "schedule",
            job_image=job_image,
            variables=wired["vars"],
            secrets=wired["secrets"],
            event_path=event,
            job_env=_runner_oidc_env(ls, workspace),
            timeout=900,
        )
        record_property("act_log_lines", len(run.log.splitlines()))
        secrets += [*ls.oidc.github.issued, ls.oidc.github.bearer]
        after = {a["name"]: a for a in ls.state()["apps"]}
        secrets += _env_key_lines(after[name] for name in due)
        assert run.code == 0, run.log[-6000:]
        out = workspace / ".act-out"
        plan = json.loads((out / "outputs-plan.json").read_text())
        targets = json.loads(plan["due"])["include"]
        assert sorted(e["app"] for e in targets) == due
        rotated = json.loads((out / "outputs-rotate.json").read_text())
        assert (rotated["rotated"], rotated["reason"]) == ("true", "rotated"), rotated
        results = json.loads(rotated["results"])
        assert sorted((r["app"], r["outcome"]) for r in results) == [(a, "rotated") for a in due]
        changed = {n for n, a in after.items() if a["env"].get("CLI_CHAIN") != before[n]}
        assert changed == set(due)
        by_app = {r["app"]: r for r in results}
        for name in due:
            leaf = load_pem_certs(after[name]["env"]["CLI_CHAIN"])[0]
            assert leaf.issuer.rfc4514_string() == "CN=Act Issuing CA"
            assert by_app[name]["fingerprint_sha256"] == sha256_hex(leaf)
        # one token for Vault, asked for with the example's audience; two CF logins in all:
        # the plan job's and the rotate job's (one for the whole fleet)
        assert set(ls.oidc.github.audiences) == {given["with"]["vault-audience"]}
        assert len([c for c in ls.calls() if c["path"].endswith("/oauth/token")]) == 2

    titles = re.findall(r"^##+ (.*)$", run.summary, re.M)
    assert any(t.startswith(f"✅ {len(due)} target(s)") for t in titles), titles
    _audit(run.shown_log, secrets)
    assert run.log.count(f"image={released}") >= 2, "act ran the pinned image"
