"""The scan action (scan/action.yml): its contract, and runs as the runner starts it.

Static: the metadata names exactly the inputs, defaults and outputs the code reads and
writes, its image is the repository's Dockerfile the way the runner resolves a path
(relative to action.yml; the build context is the Dockerfile's folder), and the examples
pass it only inputs it reads. Runs: `entrypoint.py scan` with the runner's folders and
environment against a sandbox fleet, every run ending with the log audit.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from material_kit import key_lines
from runner_kit import ROOT, ActionRun, RunnerDirs, audit, run_entrypoint

from cf_sandbox import Landscape
from checkout_kit import checkout_env
from cpi_cert_rotate.action.scan.inputs import DEFAULTS, INPUTS, SECRET_INPUTS
from cpi_cert_rotate.action.scan.report import OUTPUTS

SCAN_ACTION = ROOT / "scan" / "action.yml"
FLEET_DOC = ROOT / "docs" / "fleet.md"
EXAMPLES = sorted((ROOT / "examples").glob("*.yml"))


def _metadata() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SCAN_ACTION.read_text())
    return data


class TestContract:
    def test_scan_action_yml_matches_the_github_actions_schema(self) -> None:
        tool = Path(sys.executable).parent / "check-jsonschema"
        done = subprocess.run(
            [str(tool), "--builtin-schema", "vendor.github-actions", str(SCAN_ACTION)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def test_inputs_defaults_and_outputs_match_the_code(self) -> None:
        data = _metadata()
        assert list(data["inputs"]) == list(INPUTS)
        defaults = {k: str(v["default"]) for k, v in data["inputs"].items() if "default" in v}
        assert defaults == DEFAULTS
        assert list(data["outputs"]) == list(OUTPUTS)
        for name, spec in data["inputs"].items():
            assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), name
            assert spec["description"].strip(), name
        assert set(SECRET_INPUTS) <= set(INPUTS)

    @pytest.mark.parametrize(
        "path", [SCAN_ACTION, ROOT / "action.yml"], ids=lambda p: p.parent.name
    )
    def test_no_description_holds_an_expression(self, path: Path) -> None:
        """nektos/act parses `${{ }}` in an action's descriptions as an expression and fails
        the step when it does not parse (seen with `${{ fromJSON(...) }}` in an output's
        description); docs/act.md."""
        assert "${{" not in path.read_text()

    def test_the_image_is_the_repository_dockerfile_and_its_folder_the_context(self) -> None:
        """actions/runner ActionManager.cs: Dockerfile = Path.Combine(action folder, image);
        the build context is Directory.GetParent(Dockerfile). No secret goes to `args`."""
        runs = _metadata()["runs"]
        assert runs == {"using": "docker", "image": "../Dockerfile", "args": ["scan"]}
        dockerfile = (SCAN_ACTION.parent / runs["image"]).resolve()
        assert dockerfile == ROOT / "Dockerfile"
        assert dockerfile.parent == ROOT  # the context the main action builds with too

    @pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
    def test_examples_pass_the_scan_only_inputs_it_reads(self, path: Path) -> None:
        workflow = yaml.safe_load(path.read_text())
        for job in workflow["jobs"].values():
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("org/cpi-cert-rotate/scan@"):
                    assert set(step.get("with", {})) <= set(INPUTS)

    def _doc_names(self, heading: str) -> list[str]:
        section = FLEET_DOC.read_text().split(heading, 1)[1].split("\n## ", 1)[0]
        return re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.MULTILINE)

    def test_the_docs_list_every_input_and_output_in_order(self) -> None:
        assert self._doc_names("\n## Inputs of the scan action") == list(INPUTS)
        assert self._doc_names("\n## Outputs of the scan action") == list(OUTPUTS)


@pytest.fixture(scope="module")
def fleet() -> Any:
    with Landscape(instances=1, fleet_apps=20) as ls:
        yield ls


def _inputs(ls: Landscape, **changes: str) -> dict[str, str]:
    inputs = {
        **DEFAULTS,
        "cf-api": ls.api_url,
        "cf-username": ls.username,
        "cf-password": ls.password,
        "cf-origin": ls.origin,
        "cf-ca-cert": ls.ca_pem,
    }
    inputs.update({k.replace("_", "-"): v for k, v in changes.items()})
    return inputs


def _secrets(ls: Landscape) -> list[str]:
    keys = [a["env"]["CLI_KEY"] for a in ls.state()["apps"] if a["env"].get("CLI_KEY")]
    lines = [
        ln for k in keys for ln in key_lines(serialization.load_pem_private_key(k.encode(), None))
    ]
    return [ls.password, *lines]


def _scan(ls: Landscape, tmp_path: Path, inputs: dict[str, str]) -> ActionRun:
    dirs = RunnerDirs(tmp_path / f"run-{len(list(tmp_path.iterdir()))}")
    result = run_entrypoint(inputs, dirs, args=["scan"])
    audit(result, _secrets(ls), dirs)
    return result


@pytest.mark.e2e
class TestRuns:
    def test_a_scan_outputs_the_due_matrix_the_cli_prints(
        self, fleet: Landscape, tmp_path: Path
    ) -> None:
        result = _scan(fleet, tmp_path, _inputs(fleet))
        assert result.code == 0, result.stdout + result.stderr
        out = result.outputs
        assert "\n" not in out["due"]
        due = json.loads(out["due"])
        assert int(out["due-count"]) == len(due["include"]) >= 5
        assert int(out["held"]) >= 1  # the app bound to two instances
        assert int(out["found"]) > int(out["due-count"])
        assert [e["environment"] for e in due["include"]] == [
            f"cpi-{e['app']}" for e in due["include"]
        ]
        assert result.commands("add-mask") == [fleet.password]
        (notice,) = result.commands("notice")
        assert f"{out['found']} certificate(s)" in notice
        assert result.commands("error") == []
        held = result.commands("warning")
        assert any("several-instances" in w for w in held)
        summary = result.summary
        assert "### 🔄 CPI client certificates" in summary
        assert "#### Every certificate" in summary
        assert "#### Due but held out of the matrix" in summary
        for entry in due["include"]:
            assert f"`{entry['org']}/{entry['space']}/{entry['app']}`" in summary

        cli = subprocess.run(
            [sys.executable, "-m", "cpi_cert_rotate", "scan", "--matrix", "--cf-api",
             fleet.api_url, "--cf-ca-cert", str(_ca(fleet, tmp_path)), "--cf-username",
             fleet.username, "--cf-password-env", "SANDBOX_PW", "--cf-origin", fleet.origin],
            env=checkout_env({"PATH": "/usr/bin:/bin", "SANDBOX_PW": fleet.password}),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout) == due

    def test_bad_inputs_exit_2_and_call_nothing(self, fleet: Landscape, tmp_path: Path) -> None:
        inputs = _inputs(
            fleet,
            renew_before="soon",
            environment="cpi-{application}",
            parallel="99",
            scope="acme/",
            cf_client_id="also-a-client",
        )
        fleet.clear_calls()
        result = _scan(fleet, tmp_path, inputs)
        assert result.code == 2
        assert fleet.calls() == []
        (error,) = result.commands("error")
        for part in ("renew-before", "cpi-{application}", "`parallel`", "'acme/'", "not both"):
            assert part in error, part
        assert result.outputs["due"] == '{"include":[]}'
        assert result.outputs["due-count"] == "0"
        assert "### ❌ Invalid inputs" in result.summary

    def test_fail_if_expires_within_turns_the_step_red(
        self, fleet: Landscape, tmp_path: Path
    ) -> None:
        result = _scan(fleet, tmp_path, _inputs(fleet, fail_if_expires_within="14"))
        assert result.code == 1
        assert result.outputs["due-count"] != "0"  # the plan is still there for a rotate job
        assert any("within fail-if-expires-within (14 days)" in e for e in result.commands("error"))

    def test_an_unreachable_api_fails_with_the_reason(self, tmp_path: Path) -> None:
        inputs = {**DEFAULTS, "cf-api": "https://127.0.0.1:9", "cf-username": "u",
                  "cf-password": "pw-not-shown-1"}  # fmt: skip
        result = run_entrypoint(inputs, RunnerDirs(tmp_path / "x"), args=["scan"])
        audit(result, ["pw-not-shown-1"])
        assert result.code == 1
        (error,) = result.commands("error")
        assert "cannot reach 127.0.0.1:9" in error
        assert result.outputs["due-count"] == "0"


def _ca(ls: Landscape, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text(ls.ca_pem)
    return path


@pytest.mark.e2e
def test_a_passwordless_scan_finds_what_a_password_scan_finds(tmp_path: Path) -> None:
    """`cf-oidc: user` in the scan action (the job's token from the runner's endpoint,
    through IAS to UAA's JWT bearer grant) and `scan --cf-oidc user --cf-assertion-env`
    on the command line: the same due matrix as with a password, no token in any log."""
    from oidc_kit import github_runner_env

    from cf_sandbox.oidc_landscape import PLATFORM_ORIGIN

    with Landscape(instances=1, fleet_apps=6, oidc=True) as ls:
        assert ls.oidc is not None
        with_password = _scan(ls, tmp_path, _inputs(ls))
        assert with_password.code == 0, with_password.stdout + with_password.stderr

        inputs = _inputs(ls, cf_username="", cf_password="", cf_origin=PLATFORM_ORIGIN,
                         cf_oidc="user", cf_oidc_audience=ls.oidc.ias.issuer)  # fmt: skip
        dirs = RunnerDirs(tmp_path / "oidc")
        result = run_entrypoint(inputs, dirs, args=["scan"], env=github_runner_env(ls, tmp_path))
        tokens = [*ls.oidc.github.issued, *ls.oidc.ias.issued, ls.oidc.github.bearer]
        audit(result, [*_secrets(ls), *tokens], dirs)
        assert result.code == 0, result.stdout + result.stderr
        assert result.outputs["due"] == with_password.outputs["due"]
        assert int(result.outputs["due-count"]) >= 2
        assert ls.oidc.github.audiences == [ls.oidc.ias.issuer]
        assert set(ls.oidc.github.issued) <= set(result.commands("add-mask"))

        token = ls.oidc.github.mint(ls.oidc.ias.issuer)
        cli = subprocess.run(
            [sys.executable, "-m", "cpi_cert_rotate", "scan", "--matrix", "--cf-api",
             ls.api_url, "--cf-ca-cert", str(_ca(ls, tmp_path)), "--cf-oidc", "user",
             "--cf-assertion-env", "CI_OIDC_TOKEN", "--cf-origin", PLATFORM_ORIGIN],
            env=checkout_env({"PATH": "/usr/bin:/bin", "CI_OIDC_TOKEN": token}),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert token not in cli.stdout + cli.stderr
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout) == json.loads(result.outputs["due"])
