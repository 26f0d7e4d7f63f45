"""The `due` matrix: one entry per app to rotate, for `strategy.matrix: ${{ fromJSON(...) }}`.

Each entry names the app (`org`, `space`, `app`, `instance`) and the GitHub environment
its rotate job uses (`environment`, from a template). The examples' rule is one
environment per target, with the concurrency group `cpi-cert-rotate-<environment>`, so
the environment name must be unique per app: two apps that the template gives the same
name (GitHub compares environment names without case) would share secrets and queue
behind each other, so both are left out, loudly. GitHub runs at most 256 jobs from one
matrix; beyond the limit the apps that expire last wait for the next run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ..request import rules
from .models import Finding, Problem, ProblemCode

PLACEHOLDERS = rules.ENVIRONMENT_PLACEHOLDERS
MAX_ENVIRONMENT_NAME = 255
"""GitHub: "An environment name may not exceed 255 characters" (Managing environments
for deployment); names are not case sensitive."""
_LATEST = datetime.max.replace(tzinfo=UTC)


def check_template(template: str, *, source: str = "environment") -> str:
    """`template` when it names only known placeholders; else `InputError` (exit 2).
    The rule is `request.rules.environment_template`."""
    return rules.environment_template(template, source)


def environment_of(template: str, finding: Finding) -> str:
    """The template filled in for one finding."""
    return template.format(
        org=finding.org, space=finding.space, app=finding.app, instance=finding.instance
    )


@dataclass(frozen=True)
class Plan:
    """The findings with their environment names and the matrix built from them."""

    findings: tuple[Finding, ...]
    matrix: tuple[dict[str, str], ...]
    left_out: tuple[Finding, ...]


def _urgency(finding: Finding) -> datetime:
    live = finding.live
    return live.not_after if live else _LATEST


def _clashes(findings: Iterable[Finding]) -> dict[int, list[Finding]]:
    """Findings in the matrix that share an environment with another app (by index)."""
    by_name: dict[str, list[tuple[int, Finding]]] = defaultdict(list)
    for index, finding in enumerate(findings):
        if finding.in_matrix:
            by_name[finding.environment.lower()].append((index, finding))
    clashes: dict[int, list[Finding]] = {}
    for group in by_name.values():
        apps = {(f.org, f.space, f.app) for _, f in group}
        if len(apps) > 1:
            for index, finding in group:
                clashes[index] = [f for _, f in group if f is not finding]
    return clashes


def plan(findings: tuple[Finding, ...], template: str, limit: int) -> Plan:
    """Name each finding's environment, then build the matrix (see the module docstring)."""
    named = [replace(f, environment=environment_of(template, f)) for f in findings]
    for index, finding in enumerate(named):
        if len(finding.environment) > MAX_ENVIRONMENT_NAME:
            named[index] = _with_problem(
                finding,
                ProblemCode.ENVIRONMENT_TOO_LONG,
                f"environment name {finding.environment[:40]}... is longer than "
                f"{MAX_ENVIRONMENT_NAME} characters (GitHub's limit): shorten the template",
            )
    for index, others in _clashes(named).items():
        finding = named[index]
        names = ", ".join(f"{o.org}/{o.space}/{o.app}" for o in others)
        named[index] = _with_problem(
            finding,
            ProblemCode.ENVIRONMENT_CLASH,
            f"the environment template gives {finding.environment!r} to {names} too: add "
            "{space} or {org} to it so that each app has its own environment",
        )
    due = sorted((f for f in named if f.in_matrix), key=_urgency)
    entries = tuple(
        {
            "org": f.org,
            "space": f.space,
            "app": f.app,
            "instance": f.instance,
            "environment": f.environment,
        }
        for f in due[:limit]
    )
    return Plan(tuple(named), entries, tuple(due[limit:]))


def _with_problem(finding: Finding, code: ProblemCode, message: str) -> Finding:
    problem = Problem(code, message)
    return replace(finding, problems=(*finding.problems, problem))
