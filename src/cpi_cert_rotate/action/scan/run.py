"""The scan action: inputs -> `ScanRequest` -> `fleet.scan` -> outputs, summary, annotations.

(1) read every input as the runner passes it and mask the secret ones, line by line,
    before anything is printed;
(2) check the inputs (all problems at once; exit 2, no call made);
(3) scan, with the library's log lines printed as plain text (workflow commands
    stopped around them, see `gha.info`);
(4) outputs (`due`, `due-count`, `found`, `held`), the job summary, annotations, and
    the exit code: 0 when the scan ran, 1 when Cloud Foundry could not be read or
    `fail-if-expires-within` found a certificate within it, 2 for bad inputs.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Mapping

from ...errors import ExitCode, InputError, RotationError
from ...fleet import ScanReport, ScanRequest, scan
from .. import gha
from ..log import relayed
from .inputs import SECRET_INPUTS, build_request, read_inputs
from .report import notes, outputs, summary

Scan = Callable[[ScanRequest], ScanReport]


def main() -> int:
    """Entry point of the container for scan/action.yml; returns the exit code."""
    return run(os.environ)


def run(env: Mapping[str, str], scanner: Scan = scan) -> int:
    """One scan action run; outputs and summary go to the runner's files."""
    inputs = read_inputs(env)
    for name in SECRET_INPUTS:
        if inputs.get(name):
            gha.mask(inputs[name])
    try:
        with relayed(_message):
            return _run(inputs, env, scanner)
    finally:
        gha.resume_commands()


def _run(inputs: Mapping[str, str], env: Mapping[str, str], scanner: Scan) -> int:
    try:
        request = build_request(inputs, env)
    except InputError as error:
        return _failed(error, "Invalid inputs", ExitCode.BAD_INPUT)
    except Exception as error:  # a bug: one error line, the traceback in the log
        return _internal(error)
    where = ", ".join(map(str, request.places)) or "every space the user can see"
    gha.info(
        f"cpi-cert-rotate scan: {request.offering}/{request.plan} bindings in {where}, "
        f"API {request.api_url}, renew-before {request.renew_before}"
    )
    try:
        report = scanner(request)
    except RotationError as error:
        return _failed(error, "Scan failed", error.exit_code)
    except Exception as error:  # a bug: one error line, the traceback in the log
        return _internal(error)
    for name, value in outputs(report).items():
        gha.set_output(name, value)
    gha.Summary().append(summary(report))
    gha.info(
        f"{len(report.findings)} certificate(s), {len(report.due)} due, "
        f"{len(report.matrix)} in the matrix; {report.duration_s:.1f} s"
    )
    for note in notes(report):
        emit = {"error": gha.error, "warning": gha.warning}.get(note.kind, gha.notice)
        emit(note.message, title=note.title)
    return int(report.exit_code)


def _internal(error: Exception) -> int:
    gha.info("".join(traceback.format_exception(error)).rstrip())
    return _failed(
        RotationError(f"internal error ({type(error).__name__}): {error}"),
        "Scan failed",
        ExitCode.FAILED,
    )


def _failed(error: RotationError, title: str, code: ExitCode) -> int:
    """Outputs that feed no job, the hint in the summary, one error annotation."""
    empty = (("due", '{"include":[]}'), ("due-count", "0"), ("found", "0"), ("held", "0"))
    for name, value in empty:
        gha.set_output(name, value)
    gha.Summary().append(f"### ❌ {title}\n\n{error.hint()}\n")
    gha.error(str(error), title=title)
    return int(code)


def _message(record: logging.LogRecord) -> str:
    """A scan's log line: the message alone."""
    return record.getMessage()
