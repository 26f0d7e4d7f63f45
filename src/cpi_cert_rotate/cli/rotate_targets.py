"""`rotate --targets FILE`: every app of a targets file, `--parallel` at a time, one login.

The other flags give every target's defaults (the login, and what the file does not say),
checked per target by the same `request.build` a single run uses (`request.targets`).
Each target's report is printed when it ends (with `--json`: one document at the end);
then one line per target in file order and the run's exit code, the worst target's
(`fleet.batch.worst`: 3, then 1, then 2, then 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ExitCode, InputError, RotationError
from ..fleet.batch import (
    TargetResult,
    current_target,
    outcome_label,
    rotate_batch,
    rotated_count,
    worst,
)
from ..models import Report
from ..request.rules import TARGETS_FILE_MAX
from ..request.targets import Batch, Document, build_batch
from ..signals import stop_requested_on_signals
from .cf_args import cf_assertion
from .local_inputs import read_input
from .progress import progress
from .render import expiry_failure, render_report
from .rotate_values import values_from_args
from .spelling import dialect, for_cli


def run_targets(args: argparse.Namespace) -> int:
    """Check the file and every target (exit 2, nothing called), rotate, print."""
    values, used, jwt = values_from_args(args)
    batch = build_batch(
        values,
        dialect(used),
        _document(args.targets),
        env=os.environ,
        jwt=jwt,
        cf_jwt=cf_assertion(args),
    )
    printer = _Printer(as_json=args.json)
    cancel = threading.Event()
    with _labelled_logs(), stop_requested_on_signals(cancel) as received:
        try:
            results = rotate_batch(batch, cancel=cancel, on_step=progress, on_done=printer.done)
        except RotationError as error:  # the one login: no target started
            if not args.json:
                raise
            document = {"source": batch.source, "targets": [], "error": str(error),
                        "hint": error.hint(), "exit_code": int(error.exit_code)}  # fmt: skip
            json.dump(document, sys.stdout, indent=2)
            print()
            return int(error.exit_code)
    if received:
        print(f"received {', '.join(received)}: stopped at a safe point", file=sys.stderr)
    return printer.finish(batch, results)


def _document(path: str) -> Document:
    """The file at `path` (`-`: standard input); its relative paths start at its folder."""
    data = read_input(path, what="targets", flag="--targets", limit=TARGETS_FILE_MAX)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            "`--targets` is not UTF-8 text", code="bad-text", fix="Save the file as UTF-8."
        ) from error
    if path == "-":
        return Document(text, "standard input", Path.cwd())
    return Document(text, path, Path(path).parent)


class _Printer:
    """Each report as its target ends (text), the run's end (text or JSON)."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self._lock = threading.Lock()

    def done(self, result: TargetResult) -> None:
        if self.as_json:
            return
        report = _with_warnings(result)
        with self._lock:
            print(f"== {result.target.label} (line {result.target.line}) ==")
            print(render_report(report), flush=True)

    def finish(self, batch: Batch, results: list[TargetResult]) -> int:
        codes, failures = [], []
        for result in results:
            report = _with_warnings(result)
            now = report.finished_at or datetime.now(UTC)
            expiring = expiry_failure(report, now, result.target.settings.fail_if_expires_within)
            code = report.exit_code
            if expiring and code is ExitCode.OK:
                code = ExitCode.FAILED
            codes.append(code)
            failures.append(expiring)
        run_code = worst(codes)
        if self.as_json:
            document = {
                "source": batch.source,
                "parallel": batch.parallel,
                "targets": [
                    {
                        "label": r.target.label,
                        "line": r.target.line,
                        **_with_warnings(r).to_json(),
                        "exit_code": int(code),
                        "expiry_failure": expiring,
                    }
                    for r, code, expiring in zip(results, codes, failures, strict=True)
                ],
                "exit_code": int(run_code),
            }
            json.dump(document, sys.stdout, indent=2)
            print()
            return int(run_code)
        rotated = rotated_count(r.report for r in results)
        failed = sum(1 for code in codes if code is not ExitCode.OK)
        print(
            f"\n{len(results)} target(s) from {batch.source}, {batch.parallel} at a time: "
            f"{rotated}, {failed} failed; exit code {int(run_code)}"
        )
        for result, code in zip(results, codes, strict=True):
            report = result.report
            why = f"  [{report.error_code}]" if report.error_code else ""
            print(f"  {outcome_label(report):<21} {code:d}  {result.target.label}{why}")
        for result, expiring in zip(results, failures, strict=True):
            report = result.report
            if report.error:
                code_text = f" [{report.error_code}]" if report.error_code else ""
                hint = for_cli(report.hint or "", report.error_code)
                error = for_cli(report.error, report.error_code)
                fix = hint.removeprefix(report.error).removeprefix(error).strip()
                print(
                    f"error: {result.target.label}: {error}{code_text}"
                    + (f"\n  {fix}" if fix else ""),
                    file=sys.stderr,
                )
            if expiring:
                print(f"error: {result.target.label}: {expiring}", file=sys.stderr)
        return int(run_code)


def _with_warnings(result: TargetResult) -> Report:
    warnings = result.target.settings.warnings
    if not warnings:
        return result.report
    return replace(result.report, warnings=warnings + result.report.warnings)


class _Prefix(logging.Filter):
    """Puts the target's label before a record's message, once per record."""

    def filter(self, record: logging.LogRecord) -> bool:
        label = current_target.get()
        if label and isinstance(record.msg, str) and not hasattr(record, "target"):
            record.target = label  # once, whatever number of handlers it passes
            record.msg = f"[{label.replace('%', '%%')}] {record.msg}"
        return True


@contextmanager
def _labelled_logs() -> Iterator[None]:
    """Every log line on stderr starts with its target's label while the run lasts."""
    prefix = _Prefix()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(prefix)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(prefix)
