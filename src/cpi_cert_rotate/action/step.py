"""The GitHub Action: inputs -> `RotationRequest` -> `rotation.rotate` -> outputs and summary.

The order of one run is the point of this module:
  (1) read every input as the runner passes it (`INPUT_CF-API`, hyphens kept);
  (2) mask every secret input, line by line, before anything else is printed;
  (3) check the inputs and load the material; every derived form of the key is masked
      the moment it exists (`inputs.build_settings`);
  (4) only then print: the target, and the engine's log live, one `::group::` per
      engine step (its `on_step` events, `log.StepGroups`), with workflow commands
      stopped around text we do not control;
  (5) render the report: outputs, job summary, annotations, and the exit code.
SIGINT and SIGTERM (how the runner cancels a job) set the engine's cancel event: it
stops at the next safe point and undoes what it changed.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from ..errors import ExitCode, InputError
from ..models import CfTarget, Outcome, Report, RotationRequest
from ..request.build import Settings
from ..request.fields import DEFAULT_WARN_DAYS
from ..signals import signal_note, stop_requested_on_signals
from . import gha
from .inputs import (
    SECRET_INPUTS,
    build_settings,
    chain_key_blocks,
    read_inputs,
    secrets_in_urls,
    target_of,
)
from .log import StepGroups, relayed
from .report import annotations_for, outputs, result_lines, summary
from .targets import run_targets

Rotate = Callable[..., Report]


def main() -> int:
    """Entry point of the container (`entrypoint.py`); returns the exit code."""
    return run(os.environ)


def run(env: Mapping[str, str], rotate: Rotate | None = None) -> int:
    """One Action run; returns the exit code.

    Inputs come from `env`; outputs and the summary go to the files that the process
    environment names (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`), as the runner set them.
    """
    inputs = read_inputs(env)
    for name in SECRET_INPUTS:
        if inputs[name]:
            gha.mask(inputs[name])
    for block in chain_key_blocks(inputs["cert-chain"]):
        gha.mask(block)  # a key pasted into the public chain input
    for password in secrets_in_urls(inputs):
        gha.mask(password)  # `https://user:password@host`, refused below but never shown
    try:
        if inputs["targets"]:
            return run_targets(inputs, env, rotate)
        groups = StepGroups()
        try:
            with relayed():
                return _run(inputs, env, rotate, groups)
        finally:
            groups.end()
    finally:
        gha.resume_commands()


def _run(
    inputs: Mapping[str, str], env: Mapping[str, str], rotate: Rotate | None, groups: StepGroups
) -> int:
    try:
        settings = build_settings(inputs, env, gha.mask)
    except InputError as error:
        return _render(_invalid(target_of(inputs), error), settings=None)
    except Exception as error:  # a bug: still one error line, outputs and a summary
        return _render(_internal(target_of(inputs), error), settings=None)
    # The adapter warns of a soon-expiring new certificate itself, naming the input that
    # sets the threshold; the engine is asked for no second warning of the same thing.
    request = replace(settings.request, warn_days=0)
    _announce(request)
    if rotate is None:
        from ..rotation import rotate as engine_rotate

        rotate = engine_rotate
    cancel = threading.Event()
    with stop_requested_on_signals(cancel) as received:
        try:
            report = rotate(request, cancel=cancel, on_secret=gha.mask, on_step=groups)
        except InputError as error:
            report = _invalid(request.target, error)
        except Exception as error:  # the engine reports failures; this is a bug
            report = _internal(request.target, error)
    note = signal_note(received, report)
    if note:
        gha.info(note[0].upper() + note[1:])
    if settings.warnings:
        report = replace(report, warnings=settings.warnings + report.warnings)
    return _render(report, settings=settings)


def _invalid(target: CfTarget, error: InputError) -> Report:
    """The report of input rejected before the engine changed anything."""
    return Report(
        outcome=Outcome.INVALID_INPUT,
        target=target,
        error=str(error),
        error_code=error.code,
        hint=error.hint(),
        finished_at=datetime.now(UTC),
    )


def _internal(target: CfTarget, error: Exception) -> Report:
    """The report of an unexpected exception; the traceback goes to the log only."""
    gha.info("".join(traceback.format_exception(error)).rstrip())
    return Report(
        outcome=Outcome.FAILED,
        target=target,
        error=f"internal error ({type(error).__name__}): {error}",
        error_code="internal-error",
        hint="This is a bug in cpi-cert-rotate; the traceback is in the log. Check the app "
        "(`cf env`, `cf curl /v3/service_credential_bindings?app_guids=...`) before running "
        "again, and report the issue with the log.",
        finished_at=datetime.now(UTC),
    )


def _announce(request: RotationRequest) -> None:
    target = request.target
    mode = "dry run" if request.dry_run else ("forced" if request.force else "rotate when due")
    renew_before = str(request.renew_before) if request.renew_before else ""
    if request.issuer is not None and not renew_before:
        from ..rotation.decide import ISSUER_RENEW_BEFORE

        renew_before = f"{ISSUER_RENEW_BEFORE} (the default with an issuer)"
    gha.info(
        f"cpi-cert-rotate: app {target.app!r} in {target.org}/{target.space}, "
        f"service instance {target.service_instance!r}, API {target.api_url}"
    )
    gha.info(
        f"strategy {request.strategy}, {mode}"
        + (f", renew-before {renew_before}" if renew_before else "")
        + f", timeout {request.timeout_s:g} s"
    )
    if request.issuer is not None:
        gha.info(f"new certificate: issued by {request.issuer.describe()} when due")
    elif not request.chain:
        gha.info("check only: no new certificate given; the live certificate is reported")


def _render(report: Report, settings: Settings | None) -> int:
    """Outputs, summary, annotations and log lines for `report`; returns the exit code."""
    now = report.finished_at or datetime.now(UTC)
    warn_days = settings.warn_days if settings else DEFAULT_WARN_DAYS
    fail_within = settings.fail_if_expires_within if settings else None
    notes, expiry_failed = annotations_for(
        report, now=now, warn_days=warn_days, fail_within=fail_within
    )
    code = report.exit_code
    if expiry_failed and code is ExitCode.OK:
        code = ExitCode.FAILED
    for name, value in outputs(report, now, code).items():
        gha.set_output(name, value)
    gha.Summary().append(summary(report, now=now, expiry_failed=expiry_failed))
    _log_result(report, now)
    for note in notes:
        if note.kind == "error":
            gha.error(note.message, title=note.title)
        else:
            gha.warning(note.message, title=note.title)
    return int(code)


def _log_result(report: Report, now: datetime) -> None:
    for line in result_lines(report, now):
        gha.info(line)
