"""The Action with `targets`, as the runner starts it (`entrypoint.py`), on a sandbox fleet.

- examples/fleet-targets.yml run as a runner would: the plan job's scan, its `due`
  output through the job outputs into the rotate job's `targets` input, every due app's
  certificate issued by a real OpenBao after a JWT login with the job's OIDC token (a
  loopback stand-in for GitHub's endpoint);
- a targets file in the workspace with per-target material from files and variables,
  and a check-only target beside them;
- a bad file: every problem with its line, exit 2, no call.
Every run ends with the log audit (runner_kit.audit): no key line, password, token or
JWT anywhere but in `::add-mask::` commands, and each of those before its first use.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from material_kit import key_lines
from oidc_kit import github_runner_env
from runner_kit import ROOT, RunnerDirs, audit, run_entrypoint
from workflow_kit import Contexts, condition, render, with_defaults

from cf_sandbox import Landscape
from cf_sandbox.pki import load_pem_certs, sha256_hex
from openbao_kit import OpenBao, sign_policy

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "fleet-targets.yml"
APPS = 10
ROLE = "cpi-client"


def _yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _step(job: dict[str, Any], uses: str) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith(uses)]
    return step


def _apps(ls: Landscape) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in ls.state()["apps"]}


def _env_key_lines(ls: Landscape) -> list[str]:
    keys = [a["env"]["CLI_KEY"] for a in _apps(ls).values() if a["env"].get("CLI_KEY")]
    return [
        ln for k in keys for ln in key_lines(serialization.load_pem_private_key(k.encode(), None))
    ]


def test_the_targets_example_rotates_every_due_app_in_one_job_from_vault(
    landscape_factory: Callable[..., Landscape],
    openbao: OpenBao,
    tmp_path: Path,
) -> None:
    ls = landscape_factory(instances=1, fleet_apps=APPS, oidc=True)
    assert ls.oidc is not None
    github = ls.oidc.github  # the sandbox's stand-in for GitHub's OIDC token endpoint
    mount = "pki-" + secrets.token_hex(4)
    issuing = openbao.enable_pki(mount, ls.sign_intermediate, common_name="Bao Fleet CA")
    openbao.create_role(mount, ROLE, organization=["Sandbox Clients"], country=["DE"])
    # The runner trusts the sandbox's (which serves the OIDC stand-in too) and OpenBao's
    # CAs, as a self-hosted runner trusts private ones.
    bundle = tmp_path / "trusted.pem"
    bundle.write_text(ls.ca_pem + openbao.ca_pem)
    runner_env = {**github_runner_env(ls, tmp_path), "SSL_CERT_FILE": str(bundle)}

    workflow = _yaml(EXAMPLE)
    scan_action, main_action = _yaml(ROOT / "scan" / "action.yml"), _yaml(ROOT / "action.yml")
    missing: list[str] = []
    variables = {"CF_API": ls.api_url, "CF_USERNAME": ls.username, "CF_ORIGIN": ls.origin,
                 "VAULT_ADDR": openbao.address}  # fmt: skip

    def contexts(**more: Any) -> Contexts:
        values = {"vars": variables, "secrets": {"CF_PASSWORD": ls.password},
                  "env": workflow["env"], **more}  # fmt: skip
        return Contexts(values, missing)

    before = {name: app["env"].get("CLI_CHAIN") for name, app in _apps(ls).items()}
    old_keys = _env_key_lines(ls)

    # -- plan -----------------------------------------------------------------------------
    plan = workflow["jobs"]["plan"]
    scan_step = _step(plan, "org/cpi-cert-rotate/scan@")
    inputs = with_defaults(render(scan_step["with"], contexts()), scan_action)
    planned = run_entrypoint(
        inputs, RunnerDirs(tmp_path / "plan"), env=runner_env, args=scan_action["runs"]["args"]
    )
    audit(planned, [ls.password, *old_keys])
    assert planned.code == 0, planned.stdout + planned.stderr
    steps = {scan_step["id"]: {"outputs": planned.outputs}}
    needs = {"plan": {"outputs": render(plan["outputs"], Contexts({"steps": steps}, missing))}}
    due = json.loads(needs["plan"]["outputs"]["due"])["include"]
    assert len(due) >= 3

    # -- rotate: one job, the due list as its targets ---------------------------------------
    rotate = workflow["jobs"]["rotate"]
    assert condition(rotate["if"], Contexts({"needs": needs}, missing))
    step = _step(rotate, "org/cpi-cert-rotate@")
    given = render(step["with"], contexts(needs=needs))
    # OpenBao's JWT role as the example's comments describe it: its name and audience
    auth_mount = "jwt-" + secrets.token_hex(4)
    openbao.enable_jwt(
        auth_mount,
        github.key.public_pem(),
        given["vault-auth-role"],
        [given["vault-audience"]],
        [openbao.policy(sign_policy(mount, ROLE))],
        bound_claims={"sub": "repo:acme/cpi-ops:environment:cpi-production"},
    )
    # the values the example marks `<-` (to be adjusted), as this test's OpenBao has them
    given.update({"vault-pki-mount": mount, "vault-role": ROLE, "vault-auth-mount": auth_mount})
    inputs = with_defaults(given, main_action)
    # the sandbox's root stands in for one on SAP's list, which it cannot be on
    inputs["trusted-roots"] = ls.trusted_root_pem
    assert inputs["targets"] == needs["plan"]["outputs"]["due"]  # one line of JSON
    ls.clear_calls()
    dirs = RunnerDirs(tmp_path / "rotate")
    result = run_entrypoint(inputs, dirs, env=runner_env, timeout=300)
    new_keys = _env_key_lines(ls)
    audit(result, [ls.password, *old_keys, *new_keys, *github.issued, github.bearer], dirs)
    assert missing == []

    assert result.code == 0, result.stdout[-3000:] + result.stderr
    rows = json.loads(result.outputs["results"])
    assert [(r["app"], r["outcome"], r["exit_code"]) for r in rows] == [
        (e["app"], "rotated", 0) for e in due
    ]
    assert (result.outputs["rotated"], result.outputs["reason"]) == ("true", "rotated")
    assert result.outputs["fingerprint-sha256"] == ""  # one certificate's outputs: empty
    after = _apps(ls)
    issuer = x509.load_pem_x509_certificate(issuing.encode())
    for entry, row in zip(due, rows, strict=True):
        leaf = load_pem_certs(after[entry["app"]]["env"]["CLI_CHAIN"])[0]
        leaf.verify_directly_issued_by(issuer)
        assert row["fingerprint_sha256"] == sha256_hex(leaf)
    changed = {name for name, app in after.items() if app["env"].get("CLI_CHAIN") != before[name]}
    assert changed == {e["app"] for e in due}
    assert len(openbao.issued_serials(mount)) == len(due)
    # one Cloud Foundry login for the whole fleet
    assert len([c for c in ls.calls() if c["path"].endswith("/oauth/token")]) == 1

    log = result.stdout
    for entry in due:
        label = f"{entry['org']}/{entry['space']}/{entry['app']}"
        assert f"[{label}] " in log
        assert f"target {label}: rotated" in result.commands("group")
        assert f"`{label} ({entry['instance']})`" in result.summary
    assert f"## ✅ {len(due)} target(s) from input `targets`: {len(due)} rotated" in (
        result.summary
    )
    assert result.summary.count("### ✅ Certificate rotated") == len(due)
    assert result.commands("error") == []


@pytest.fixture
def fleet(landscape_factory: Callable[..., Landscape]) -> Landscape:
    return landscape_factory(instances=1, fleet_apps=APPS)


def _login(ls: Landscape) -> dict[str, str]:
    """The step's `with:` for a targets run: the login only; the runner adds defaults."""
    given = {"cf-api": ls.api_url, "cf-username": ls.username, "cf-password": ls.password,
             "cf-origin": ls.origin, "cf-ca-cert": ls.ca_pem,
             "trusted-roots": ls.trusted_root_pem}  # fmt: skip
    return with_defaults(given, _yaml(ROOT / "action.yml"))


def test_a_workspace_file_with_material_per_target_and_a_check_beside_them(
    fleet: Landscape, tmp_path: Path
) -> None:
    apps = ["app-002", "app-005", "app-008"]
    dirs = RunnerDirs(tmp_path / "run")
    workspace = dirs.base / "workspace"
    (workspace / "cpi" / "certs").mkdir(parents=True)
    env, minted, targets = {}, {}, []
    for number, app in enumerate(apps[:2]):
        minted[app] = fleet.mint(cn=f"{app}-client", days=90, key="ec-p256")
        (workspace / "cpi" / "certs" / f"{app}.pem").write_text(minted[app].chain_pem)
        env[f"KEY_{number}"] = minted[app].key_pem  # the step's `env:`, from a secret
        targets.append({"app": app, "cert-chain-file": f"certs/{app}.pem",
                        "private-key-env": f"KEY_{number}"})  # fmt: skip
    targets.append({"app": apps[2], "dry-run": "true"})  # check only: no material
    document = {
        "defaults": {"org": "fleet-org-01", "space": "space-1", "instance": "cpi-rt",
                     "verify-path": "/http/ping", "strategy": "overlap"},
        "targets": targets,
    }  # fmt: skip
    (workspace / "cpi" / "targets.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    old_keys = _env_key_lines(fleet)
    result = run_entrypoint(
        {**_login(fleet), "targets": "cpi/targets.yml", "parallel": "2"}, dirs, env=env
    )
    new_keys = [ln for m in minted.values() for ln in key_lines(_key(m.key_pem))]
    audit(result, [fleet.password, *old_keys, *new_keys], dirs)

    assert result.code == 0, result.stdout[-3000:] + result.stderr
    rows = json.loads(result.outputs["results"])
    assert [(r["app"], r["outcome"], r["strategy"], r["line"]) for r in rows] == [
        ("app-002", "rotated", "overlap", 8),
        ("app-005", "rotated", "overlap", 11),
        ("app-008", "dry-run", None, 14),
    ]
    after = _apps(fleet)
    for app, new in minted.items():
        assert sha256_hex(load_pem_certs(after[app]["env"]["CLI_CHAIN"])[0]) == new.leaf_sha256
    masked = set(result.commands("add-mask"))
    assert set(new_keys) <= masked  # read from the variables, masked before anything else
    assert "## ✅ 3 target(s) from cpi/targets.yml: 2 rotated, 0 failed" in result.summary
    assert "### 🔎 Dry run: nothing changed: `app-008`" in result.summary


def test_the_overview_says_which_rotations_no_test_call_proved(
    fleet: Landscape, tmp_path: Path
) -> None:
    """One target with a verify-path, one without. Its own section already said "rotated,
    but NOT verified"; the overview's count and table said `rotated` for both."""
    dirs = RunnerDirs(tmp_path / "run")
    workspace = dirs.base / "workspace"
    env, targets = {}, []
    for number, app in enumerate(("app-001", "app-006")):
        minted = fleet.mint(cn=f"{app}-client", days=90, key="ec-p256")
        (workspace / f"{app}.pem").write_text(minted.chain_pem)
        env[f"KEY_{number}"] = minted.key_pem
        targets.append({"app": app, "cert-chain-file": f"{app}.pem",
                        "private-key-env": f"KEY_{number}"})  # fmt: skip
    targets[0]["verify-path"] = "/http/ping"
    document = {"defaults": {"org": "fleet-org-01", "space": "space-1", "instance": "cpi-rt"},
                "targets": targets}  # fmt: skip
    (workspace / "targets.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    result = run_entrypoint(
        {**_login(fleet), "targets": "targets.yml", "parallel": "2"}, dirs, env=env
    )
    assert result.code == 0, result.stdout[-3000:] + result.stderr
    rows = json.loads(result.outputs["results"])
    assert [(r["app"], r["outcome"], r["verified"]) for r in rows] == [
        ("app-001", "rotated", True),
        ("app-006", "rotated", False),
    ]
    assert "2 target(s) from targets.yml: 2 rotated (1 not verified), 0 failed" in (result.summary)
    table = [ln.split(" | ") for ln in result.summary.splitlines() if ln.startswith("| `")]
    assert [(row[0], row[2]) for row in table] == [
        ("| `fleet-org-01/space-1/app-001 (cpi-rt)`", "rotated"),
        ("| `fleet-org-01/space-1/app-006 (cpi-rt)`", "rotated, not verified"),
    ]
    assert "target fleet-org-01/space-1/app-006: rotated, not verified" in result.commands("group")


def test_a_bad_targets_file_is_every_problem_with_its_line_and_no_call(
    fleet: Landscape, tmp_path: Path
) -> None:
    text = (
        "targets:\n"  # 1
        "  - org: fleet-org-01\n"  # 2
        "    space: space-1\n"  # 3
        "    app: app-002\n"  # 4
        "    instance: cpi-rt\n"  # 5
        "    private-key: '-----BEGIN PRIVATE KEY----- MIIEvQ'\n"  # 6
        "    strategy: sideways\n"  # 7
        "  - {org: fleet-org-01, space: space-1, app: app-005}\n"  # 8
    )
    fleet.clear_calls()
    dirs = RunnerDirs(tmp_path / "run")
    result = run_entrypoint({**_login(fleet), "targets": text, "app": "app-009"}, dirs)
    audit(result, [fleet.password, "MIIEvQ"], dirs)

    assert result.code == 2
    assert fleet.calls() == []
    (error,) = result.commands("error")
    for part in (
        "input `app` is set beside `targets`",
        "input `targets` line 6: `private-key:`",
        "input `targets` line 8: the target does not say its `instance:`",
        "input `targets` line 2 (fleet-org-01/space-1/app-002): `strategy:` (line 7) must be",
    ):
        assert part in error, part
    assert result.outputs["results"] == "[]"
    assert result.outputs["reason"] == "invalid-input"
    assert "### ❌ Invalid inputs" in result.summary


@pytest.mark.parametrize(
    ("text", "says"),
    [
        # was `batch.targets[0]` of no targets: an internal error (exit 1)
        ("targets: []\n# every app is up to date\n", "input `targets` line 1: holds no targets"),
        # one line (the runner trims it): was read as the path `targets: []`
        ("targets: []", "input `targets` line 1: holds no targets"),
        (
            "x: &shared {org: fleet-org-01, space: space-1}\n"
            "targets:\n  - {<<: *shared, app: app-002, instance: cpi-rt}\n",
            "input `targets` line 3: YAML merge keys (`<<:`) are not read",
        ),
    ],
    ids=["empty-list", "one-line", "merge-key"],
)
def test_a_targets_value_with_no_usable_target_is_refused_before_any_call(
    fleet: Landscape, tmp_path: Path, text: str, says: str
) -> None:
    fleet.clear_calls()
    dirs = RunnerDirs(tmp_path / "run")
    result = run_entrypoint({**_login(fleet), "targets": text}, dirs)
    audit(result, [fleet.password], dirs)
    assert result.code == 2, result.stdout[-2000:]
    assert fleet.calls() == []
    (error,) = result.commands("error")
    assert says in error
    assert "Traceback" not in result.stdout + result.stderr
    assert "### ❌ Invalid inputs" in result.summary


def _key(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), None)


def test_a_refused_login_stops_the_run_before_any_target(fleet: Landscape, tmp_path: Path) -> None:
    """One login for the run, tried once: a wrong password fails it before any target
    starts, instead of once per target (UAA locks a user after a few refused logins)."""
    text = "targets:\n" + "".join(
        f"  - {{org: fleet-org-01, space: space-1, app: app-00{i}, instance: cpi-rt, "
        "dry-run: 'true'}\n"
        for i in (2, 5, 8)
    )
    fleet.clear_calls()
    dirs = RunnerDirs(tmp_path / "run")
    inputs = {**_login(fleet), "cf-password": "wrong-password-1", "targets": text}
    result = run_entrypoint(inputs, dirs)
    audit(result, ["wrong-password-1", fleet.password], dirs)

    assert result.code == 1
    logins = [c for c in fleet.calls() if c["path"].endswith("/oauth/token")]
    assert [c["status"] for c in logins] == [401]
    assert [c for c in fleet.calls() if c["path"].startswith("/v3/")] == []
    (error,) = result.commands("error")
    assert "UAA refused to log in user" in error
    assert "### ❌ Login failed: no target was rotated" in result.summary
    assert (result.outputs["results"], result.outputs["reason"]) == ("[]", "failed")
