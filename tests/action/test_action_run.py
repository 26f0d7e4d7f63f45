"""`action.run` with the engine replaced: exit codes, outputs and logs for each outcome.

The engine is stubbed here only to reach outcomes a sandbox cannot produce on demand
(an internal error, cleanup-incomplete); everything else runs end to end in
test_action_runner.py.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from material_kit import ClientMaterial
from runner_kit import RunnerDirs, effective_commands, input_env, parse_outputs

from cpi_cert_rotate.action import gha, step
from cpi_cert_rotate.models import (
    Outcome,
    Report,
    RotationRequest,
    StepFinished,
    StepResult,
    StepStarted,
)


@pytest.fixture(autouse=True)
def _fresh_parser_state() -> None:
    gha.resume_commands()


def _env(
    material: ClientMaterial, dirs: RunnerDirs, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The runner's environment; GITHUB_OUTPUT and friends are read from os.environ."""
    inputs = {
        "cf-api": "https://api.cf.example",
        "cf-username": "u",
        "cf-password": "password-1",
        "cf-org": "o",
        "cf-space": "s",
        "app": "a",
        "service-instance": "si",
        "cert-chain": material.chain_pem,
        "private-key": material.key_pem,
    }
    env = {**dirs.env(), **input_env(inputs)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_an_engine_bug_still_gives_outputs_summary_and_one_error(
    client_material: ClientMaterial,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(request: RotationRequest, **_: Any) -> Report:
        raise RuntimeError("unexpected")

    dirs = RunnerDirs(tmp_path)
    assert step.run(_env(client_material, dirs, monkeypatch), rotate=broken) == 1
    out = capsys.readouterr().out
    errors = [m for kind, m in effective_commands(out) if kind == "error"]
    assert errors == [
        "failed [internal-error]: internal error (RuntimeError): unexpected "
        "(the job summary says what to do)"
    ]
    assert "Traceback" in out
    assert parse_outputs(dirs.output_text)["reason"] == "failed"
    assert "This is a bug" in dirs.summary


def test_cleanup_incomplete_is_rotated_but_exit_three(
    client_material: ClientMaterial,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def partly(request: RotationRequest, **kwargs: Any) -> Report:
        kwargs["on_step"](StepStarted("finish"))
        logging.getLogger("cpi_cert_rotate.cf").warning("::error::from CF")
        kwargs["on_step"](StepFinished(StepResult("finish", "ok", 0.5)))
        return Report(
            outcome=Outcome.CLEANUP_INCOMPLETE,
            target=request.target,
            error="the new certificate is live, but an old binding could not be deleted",
            state_left=("old binding b-1 still exists",),
            manual_actions=("cf curl -X DELETE /v3/service_credential_bindings/b-1",),
            finished_at=datetime.now(UTC),
        )

    dirs = RunnerDirs(tmp_path)
    assert step.run(_env(client_material, dirs, monkeypatch), rotate=partly) == 3
    out = capsys.readouterr().out
    commands = effective_commands(out)
    assert ("group", "step finish") in commands
    assert ("error", "from CF") not in commands
    assert "warning: ::error::from CF" in out  # printed as text inside the group
    outputs = parse_outputs(dirs.output_text)
    assert outputs["rotated"] == "true"
    assert outputs["reason"] == "cleanup-incomplete"
    assert "1. cf curl -X DELETE /v3/service_credential_bindings/b-1" in dirs.summary


def test_an_input_warning_reaches_the_annotations_and_the_summary(
    client_material: ClientMaterial,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[RotationRequest] = []

    def not_due(request: RotationRequest, **_: Any) -> Report:
        seen.append(request)
        return Report(outcome=Outcome.NOT_DUE, target=request.target, finished_at=datetime.now(UTC))

    dirs = RunnerDirs(tmp_path)
    env = _env(client_material, dirs, monkeypatch)
    monkeypatch.setenv("INPUT_PRIVATE-KEY-PASSPHRASE", "not-needed-1")
    env["INPUT_PRIVATE-KEY-PASSPHRASE"] = "not-needed-1"
    assert step.run(env, rotate=not_due) == 0
    warnings = [m for kind, m in effective_commands(capsys.readouterr().out) if kind == "warning"]
    assert warnings == [
        "`private-key-passphrase` is set but the private key is not encrypted, so it was not "
        "used: check that this is the key you meant, or drop the passphrase"
    ]
    assert "#### Warnings" in dirs.summary
    assert seen[0].warn_days == 0  # the adapter warns of expiry itself, naming its input
