"""The Action with `targets`: many apps in one step, one login, one report per target.

The order of a single run (`step`) holds, per target and for the whole file:
  (1) the secret inputs are masked by `step.run` before this module runs;
  (2) the file and every target are checked (`inputs.build_targets`): every problem at
      once, exit 2, nothing called; keys and secrets read through `-file`/`-env` keys are
      masked the moment they are read;
  (3) the targets rotate, `parallel` at a time (`fleet.batch`); the log shows each line
      with its target's label (no step groups: the lines of several targets interleave),
      then one group per target with its result;
  (4) the summary has a table of every target, then each target's own section; the
      annotations carry the target's label; the exit code is the worst target's
      (`fleet.batch.worst`).
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from ..errors import ExitCode, InputError, RotationError
from ..fleet.batch import TargetResult, outcome_label, rotate_batch, rotated_count, worst
from ..models import Report
from ..request.targets import Batch
from ..signals import stop_requested_on_signals
from . import gha
from .inputs import build_targets
from .log import labelled_line, relayed, step_lines
from .report import OUTPUTS, Annotation, annotations_for, result_lines, result_row, summary

Rotate = Callable[..., Report]

SUMMARY_BUDGET = 900 * 1024
"""GitHub refuses a step summary over 1 MiB; the sections of targets that ended well are
left out beyond this size (the table above them still lists every target)."""

ANNOTATIONS_PER_KIND = 10
"""GitHub shows at most 10 error and 10 warning annotations of a step and drops the rest
silently; beyond, one annotation says how many more the summary lists."""


def run_targets(inputs: Mapping[str, str], env: Mapping[str, str], rotate: Rotate | None) -> int:
    """One Action run over a targets file; returns the run's exit code."""
    try:
        batch = build_targets(inputs, env, gha.mask)
    except InputError as error:
        return _stopped(error, "Invalid inputs", ExitCode.BAD_INPUT)
    except Exception as error:  # a bug: one error line, the traceback in the log
        gha.info("".join(traceback.format_exception(error)).rstrip())
        failure = RotationError(f"internal error ({type(error).__name__}): {error}")
        return _stopped(failure, "Internal error", ExitCode.FAILED)
    # As in a single run, the adapter warns of a soon-expiring new certificate itself.
    batch = replace(
        batch,
        targets=tuple(
            replace(
                t, settings=replace(t.settings, request=replace(t.settings.request, warn_days=0))
            )
            for t in batch.targets
        ),
    )
    first = batch.targets[0].settings.request
    gha.info(
        f"cpi-cert-rotate: {len(batch.targets)} target(s) from {batch.source}, "
        f"{batch.parallel} at a time, API {first.target.api_url}"
    )
    cancel = threading.Event()
    with relayed(labelled_line), stop_requested_on_signals(cancel) as received:
        try:
            results = rotate_batch(
                batch,
                cancel=cancel,
                on_secret=gha.mask,
                on_step=step_lines,
                on_done=_finished,
                rotate=rotate,
            )
        except RotationError as error:  # the one login: no target started
            return _stopped(error, "Login failed: no target was rotated", error.exit_code)
    if received:
        gha.info(f"Received {', '.join(received)}: running targets stopped at a safe point.")
    return _render(batch, results)


def _finished(result: TargetResult) -> None:
    gha.info(f"[{result.target.label}] finished: {outcome_label(result.report)}")


def _render(batch: Batch, results: list[TargetResult]) -> int:
    """Per target: log group, annotations and summary section; outputs; the exit code."""
    now = datetime.now(UTC)
    codes: list[ExitCode] = []
    notes: list[Annotation] = []
    sections: list[str] = []
    rows: list[dict[str, object]] = []
    for result in results:
        settings, report = result.target.settings, result.report
        if settings.warnings:
            report = replace(report, warnings=settings.warnings + report.warnings)
        at = report.finished_at or now
        target_notes, expiry_failed = annotations_for(
            report,
            now=at,
            warn_days=settings.warn_days,
            fail_within=settings.fail_if_expires_within,
        )
        code = (
            ExitCode.FAILED
            if expiry_failed and report.exit_code is ExitCode.OK
            else report.exit_code
        )
        codes.append(code)
        label = result.target.label
        notes += [replace(n, title=f"{label}: {n.title}") for n in target_notes]
        sections.append(summary(report, now=at, expiry_failed=expiry_failed))
        rows.append(result_row(report, code, at, line=result.target.line))
        gha.start_group(f"target {label}: {outcome_label(report)}")
        for line in result_lines(report, at):
            gha.info(line)
        gha.end_group()
    run_code = worst(codes)
    for name, value in _outputs(results, rows, codes, run_code).items():
        gha.set_output(name, value)
    overview = _overview(batch, [r.report for r in results], rows, run_code)
    gha.Summary().append(overview + _within_budget(sections, codes, len(overview)))
    _annotate(notes)
    return int(run_code)


def _outputs(
    results: list[TargetResult],
    rows: list[dict[str, object]],
    codes: list[ExitCode],
    run_code: ExitCode,
) -> dict[str, str]:
    """`results` (one line of JSON), `rotated` (any target), `reason` (the outcome of the
    first target with the run's exit code); the outputs of one certificate stay empty."""
    decisive = next(r.report for r, c in zip(results, codes, strict=True) if c is run_code)
    values = dict.fromkeys(OUTPUTS, "")
    values["rotated"] = "true" if any(r.report.rotated for r in results) else "false"
    values["reason"] = str(decisive.outcome)
    values["results"] = json.dumps(rows, separators=(",", ":"))
    return values


def _overview(
    batch: Batch, reports: list[Report], rows: list[dict[str, object]], run_code: ExitCode
) -> str:
    rotated = rotated_count(reports)
    failed = sum(1 for r in rows if r["exit_code"])
    icon = (
        "✅"
        if run_code is ExitCode.OK
        else ("🚨" if run_code is ExitCode.ROLLBACK_INCOMPLETE else "❌")
    )
    lines = [
        f"## {icon} {len(rows)} target(s) from {gha.md_cell(batch.source)}: {rotated}, "
        f"{failed} failed; exit code {int(run_code)}",
        "",
        "| target | line | outcome | strategy | expires | exit code |",
        "|---|---|---|---|---|---|",
    ]
    for report, row in zip(reports, rows, strict=True):
        where = f"{row['org']}/{row['space']}/{row['app']} ({row['instance']})"
        lines.append(
            f"| `{gha.md_cell(where)}` | {row['line']} | {outcome_label(report)} | "
            f"{row['strategy'] or ''} | {row['expires_at'] or ''} | {row['exit_code']} |"
        )
    return "\n".join(lines) + "\n\n"


def _within_budget(sections: list[str], codes: list[ExitCode], used: int) -> str:
    """The sections in file order; past `SUMMARY_BUDGET` only those of failed targets."""
    kept, left_out = [], 0
    for section, code in zip(sections, codes, strict=True):
        size = len(section.encode())
        if code is not ExitCode.OK or used + size <= SUMMARY_BUDGET:
            kept.append(section)
            used += size
        else:
            left_out += 1
    if left_out:
        kept.append(
            f"_{left_out} section(s) of targets that ended well are left out: GitHub takes "
            "at most 1 MiB of summary per step. The table above lists every target._\n"
        )
    return "\n".join(kept)


def _annotate(notes: list[Annotation]) -> None:
    """At most `ANNOTATIONS_PER_KIND` of each kind, then one that counts the rest."""
    for kind, emit in (("error", gha.error), ("warning", gha.warning)):
        of_kind = [n for n in notes if n.kind == kind]
        shown = (
            of_kind if len(of_kind) <= ANNOTATIONS_PER_KIND else of_kind[: ANNOTATIONS_PER_KIND - 1]
        )
        for note in shown:
            emit(note.message, title=note.title)
        if len(of_kind) > len(shown):
            emit(
                f"{len(of_kind) - len(shown)} more {kind}(s): the job summary lists every target",
                title=f"More {kind}s",
            )


def _stopped(error: RotationError, title: str, code: ExitCode) -> int:
    """The file could not be run at all: outputs that say so, the fix, one error."""
    values = dict.fromkeys(OUTPUTS, "")
    values.update(
        {
            "rotated": "false",
            "reason": "invalid-input" if code is ExitCode.BAD_INPUT else "failed",
            "results": "[]",
        }
    )
    for name, value in values.items():
        gha.set_output(name, value)
    gha.Summary().append(f"### ❌ {title}\n\n{error.hint()}\n")
    gha.error(str(error), title=title)
    return int(code)
