"""Static checks of the Action's files: schemas, zizmor, hadolint, and our own rules.

The three linters run offline from the dev virtualenv (reference/github-actions.md
section 5); they are tests so that `scripts/test` (and so `.ci/run`) always runs them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from cpi_cert_rotate.action.inputs import INPUTS
from cpi_cert_rotate.action.report import OUTPUTS
from cpi_cert_rotate.cli import ARGUMENT_CODES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
EXAMPLES = sorted((ROOT / "examples").glob("*.yml"))


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    tool = BIN / command[0]
    assert tool.exists(), f"{command[0]} is not installed in the dev venv"
    return subprocess.run(
        [str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, check=False
    )


def _action() -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load((ROOT / "action.yml").read_text())
    return data


def test_action_yml_matches_the_github_actions_schema() -> None:
    result = _run("check-jsonschema", "--builtin-schema", "vendor.github-actions", "action.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_and_examples_match_the_workflow_schema() -> None:
    assert len(WORKFLOWS) >= 2
    assert len(EXAMPLES) >= 3
    files = [str(p.relative_to(ROOT)) for p in WORKFLOWS + EXAMPLES]
    result = _run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing() -> None:
    examples = [str(p.relative_to(ROOT)) for p in EXAMPLES]
    result = _run("zizmor", "--offline", "--no-progress", ".", *examples)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_nothing() -> None:
    result = _run("hadolint", "--no-color", "--failure-threshold", "info", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_is_a_dockerfile_container_without_args() -> None:
    runs = _action()["runs"]
    assert runs == {"using": "docker", "image": "Dockerfile"}  # no secrets in `args`


def test_outputs_match_the_renderer() -> None:
    outputs = _action()["outputs"]
    assert isinstance(outputs, dict)
    assert list(outputs) == list(OUTPUTS)


def test_inputs_are_kebab_case_and_described() -> None:
    inputs = _action()["inputs"]
    assert isinstance(inputs, dict)
    for name, spec in inputs.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), name
        assert spec["description"].strip(), name


ACTION_DOC = ROOT / "docs" / "action.md"


def _docs_table(heading: str) -> list[str]:
    table = ACTION_DOC.read_text().split(heading, 1)[1]
    names = []
    for line in table.splitlines()[1:]:
        if not line.strip():
            if names:
                break
            continue
        match = re.match(r"^\| `([a-z0-9-]+)` \|", line)
        if match:
            names.append(match.group(1))
    return names


def test_docs_list_every_input_and_output_in_order() -> None:
    assert _docs_table("\n## Inputs") == list(INPUTS)
    assert _docs_table("\n## Outputs") == list(OUTPUTS)


def test_docs_input_defaults_match_action_yml() -> None:
    inputs = _action()["inputs"]
    assert isinstance(inputs, dict)
    text = ACTION_DOC.read_text()
    for name, spec in inputs.items():
        row = re.search(rf"^\| `{name}` \|([^|]*)\|([^|]*)\|", text, re.MULTILINE)
        assert row, name
        required, default = row.group(1).strip(), row.group(2).strip()
        assert (required == "yes") == bool(spec.get("required")), name
        expected = f"`{spec['default']}`" if "default" in spec else ""
        assert default == expected, name


class TestDockerfile:
    text = (ROOT / "Dockerfile").read_text()
    instructions: ClassVar[list[list[str]]] = [
        line.split(None, 1)
        for line in text.splitlines()
        if line and not line.startswith((" ", "#")) and line.split()[0].isupper()
    ]

    def test_base_is_pinned_by_digest_through_an_arg(self) -> None:
        assert re.search(
            r"^ARG BASE_IMAGE=debian:bookworm-slim@sha256:[0-9a-f]{64}$", self.text, re.M
        )
        froms = [args for op, args in self.instructions if op == "FROM"]
        assert froms == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]  # build stage, runtime

    def test_no_user_and_no_workdir(self) -> None:
        ops = {op for op, _ in self.instructions}
        assert "USER" not in ops
        assert "WORKDIR" not in ops

    def test_entrypoint_is_absolute_exec_form(self) -> None:
        (entrypoint,) = [args for op, args in self.instructions if op == "ENTRYPOINT"]
        argv = yaml.safe_load(entrypoint)
        assert isinstance(argv, list)
        assert argv[0].startswith("/")
        assert argv[-1] == "/action/entrypoint.py"

    def test_copies_only_the_package_the_entrypoint_and_the_pins(self) -> None:
        copies = [args.split() for op, args in self.instructions if op == "COPY"]
        sources = sorted(c[0] for c in copies if not c[0].startswith("--from="))
        assert sources == [
            "entrypoint.py",
            "requirements/runtime.txt",
            "scripts/image_modules.py",  # build stage only: lists what to byte-compile
            "src/cpi_cert_rotate",
        ]
        staged = sorted(c[1] for c in copies if c[0] == "--from=build")
        assert staged == ["/action", "/opt/venv", "/tmp/stdlib.txt"]

    def test_installs_with_hashes_only(self) -> None:
        assert "--require-hashes" in self.text
        assert "--only-binary=:all:" in self.text


def test_dockerignore_admits_only_what_is_copied() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "requirements/runtime.txt",
        "src/cpi_cert_rotate",
        "entrypoint.py",
        "scripts/image_modules.py",
    }


def _pins() -> dict[str, str]:
    text = (ROOT / "requirements" / "runtime.txt").read_text()
    return dict(re.findall(r"^([a-z0-9-]+)==(\S+) \\$", text, re.MULTILINE))


def test_every_runtime_requirement_is_pinned_with_hashes() -> None:
    text = (ROOT / "requirements" / "runtime.txt").read_text()
    blocks = re.split(r"\n(?=[a-z])", text.split("\n", 6)[-1])
    requirements = [b for b in blocks if re.match(r"^[a-z0-9-]+==", b)]
    assert requirements
    for block in requirements:
        assert "--hash=sha256:" in block, block.splitlines()[0]


def test_runtime_in_explains_each_direct_dependency_and_pins_cover_it() -> None:
    lines = (ROOT / "requirements" / "runtime.in").read_text().splitlines()
    pins = _pins()
    direct = [(i, ln) for i, ln in enumerate(lines) if ln and not ln.startswith("#")]
    for index, line in direct:
        name = re.split(r"[=<>\[ ]", line, maxsplit=1)[0].lower()
        assert name in pins, name
        assert lines[index - 1].startswith("#"), f"{name} has no # NOTE: above it"
        above = "\n".join(lines[max(0, index - 4) : index])
        assert "# NOTE:" in above, name
    # declared by actions-toolkit and cffi, never imported: left out of the image on purpose
    for unused in ("pygithub", "pynacl", "pyjwt", "pycparser"):
        assert unused not in pins, unused


def test_pyproject_dependencies_are_in_runtime_in() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = (ROOT / "requirements" / "runtime.in").read_text().lower()
    for requirement in project["dependencies"]:
        name = re.split(r"[=<>\[ ]", requirement, maxsplit=1)[0].lower()
        assert re.search(rf"^{re.escape(name)}\b", direct, re.MULTILINE), name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_our_workflows_are_least_privilege(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            if "uses" in step:
                assert re.search(r"@[0-9a-f]{40}$", step["uses"]), step["uses"]


def test_troubleshooting_names_every_problem_code() -> None:
    from cpi_cert_rotate.material.problems import PROBLEMS

    section = (ROOT / "docs" / "troubleshooting.md").read_text()
    package = ROOT / "src" / "cpi_cert_rotate"
    sources = [
        *sorted((package / "request").glob("*.py")),
        *sorted((package / "action").glob("*.py")),
        *sorted((package / "cli").glob("*.py")),
        package / "issuers" / "vault.py",
        package / "rotation" / "annotations.py",
        package / "models.py",
    ]
    source = "\n".join(path.read_text() for path in sources)
    input_codes = set(re.findall(r'code="([a-z-]+)"', source)) | {"invalid-inputs"}
    input_codes |= {code for _, code in ARGUMENT_CODES} | {"bad-arguments"}
    for code in sorted(input_codes | set(PROBLEMS)):
        assert f"`{code}`" in section, code


def _action_steps(path: Path) -> list[tuple[dict[str, object], dict[str, object]]]:
    """(job, step) for every step of `path` that uses this action."""
    workflow = yaml.safe_load(path.read_text())
    return [
        (job, step)
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("org/cpi-cert-rotate@")
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_only_inputs_the_action_reads(path: Path) -> None:
    steps = _action_steps(path)
    assert steps, "the example does not use the action"
    for job, step in steps:
        given = step.get("with", {})
        assert isinstance(given, dict)
        assert set(given) <= set(INPUTS), set(given) - set(INPUTS)
        if "vault-auth-role" in given:  # the JWT login needs the job's OIDC token
            permissions = job.get("permissions")
            assert isinstance(permissions, dict)
            assert permissions.get("id-token") == "write"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_queue_runs_of_one_target_in_one_group(path: Path) -> None:
    """Every rotating job shares the group `cpi-cert-rotate-<its environment>`.

    A group built from `vars.*` at workflow level sees only repository variables (the
    environment's are not in scope there), so it would put every target in one group or
    split one target over several; the same name in the manual, scheduled and fleet
    workflows makes a manual run wait for a scheduled run of the same target.
    """
    workflow = yaml.safe_load(path.read_text())
    for job, step in _action_steps(path):
        if str(step.get("with", {}).get("dry-run")).lower() == "true":  # type: ignore[union-attr]
            continue  # a check changes nothing and needs no queue
        concurrency = job.get("concurrency") or workflow.get("concurrency")
        assert isinstance(concurrency, dict), "a rotating workflow needs a concurrency group"
        assert concurrency.get("cancel-in-progress") is False
        environment = job.get("environment")
        assert isinstance(environment, str)
        assert concurrency["group"] == f"cpi-cert-rotate-{environment}"
        assert "vars." not in concurrency["group"]


def test_docs_list_every_secret_and_variable_the_examples_use() -> None:
    section = ACTION_DOC.read_text().split("## Secrets and variables the examples use", 1)[1]
    for path in EXAMPLES:
        for kind, name in re.findall(r"\b(secrets|vars)\.([A-Z][A-Z0-9_]*)", path.read_text()):
            row = next((line for line in section.splitlines() if f"`{name}`" in line), None)
            assert row, f"{path.name}: {kind}.{name} is not listed in docs/action.md"
            assert ("secret" if kind == "secrets" else "variable") in row, name
