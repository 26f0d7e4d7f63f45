"""The scan action's inputs (scan/action.yml): read as the runner passes them, checked.

The login inputs have the main action's names and rules (`request.build.cf_login`: exactly one
way to log in, hints for empty secrets); the rest is the scan's own. Every problem is
collected and reported at once, before any call; secrets are masked by the caller
before this module runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from ...errors import InputError
from ...fleet import (
    DEFAULT_ENVIRONMENT,
    DEFAULT_OFFERING,
    DEFAULT_PLAN,
    DEFAULT_RENEW_BEFORE,
    MATRIX_LIMIT,
    Place,
    ScanRequest,
    check_template,
)
from ...fleet.models import MAX_PARALLEL
from ...models import RenewBefore
from ...request.build import cf_login
from ...request.problems import Problems
from ...rotation.annotations import check_prefix
from ..inputs import dialect

INPUTS: tuple[str, ...] = (
    "cf-api",
    "cf-username",
    "cf-password",
    "cf-origin",
    "cf-client-id",
    "cf-client-secret",
    "cf-ca-cert",
    "scope",
    "offering",
    "plan",
    "chain-env-var",
    "renew-before",
    "annotation-prefix",
    "environment",
    "matrix-limit",
    "fail-if-expires-within",
    "parallel",
    "timeout",
)
"""Every input of scan/action.yml, in its order (a test keeps the two in step)."""

SECRET_INPUTS: tuple[str, ...] = ("cf-password", "cf-client-secret")
"""Masked before anything is printed. The scan takes no key: it reads, it never rotates."""

DEFAULTS: dict[str, str] = {
    "offering": DEFAULT_OFFERING,
    "plan": DEFAULT_PLAN,
    "chain-env-var": "CLI_CHAIN",
    "renew-before": "30d",
    "environment": DEFAULT_ENVIRONMENT,
    "matrix-limit": str(MATRIX_LIMIT),
    "parallel": "4",
    "timeout": "300",
}
"""The defaults of scan/action.yml (the runner passes them; a test keeps them in step)."""

T = TypeVar("T")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def read_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """Every input from `env`, trimmed ('' when unset): `cf-api` is `INPUT_CF-API`."""
    return {name: env.get("INPUT_" + name.upper(), "").strip() for name in INPUTS}


def _number(inputs: Mapping[str, str], name: str, problems: Problems, low: int, high: int) -> int:
    raw = inputs.get(name) or DEFAULTS.get(name, "")
    if raw.isdigit() and low <= int(raw) <= high:
        return int(raw)
    problems.add(
        f"input `{name}` must be a whole number from {low} to {high}, not {raw!r}",
        code="bad-number",
        fix=f"Give for example `{DEFAULTS.get(name, low)}`.",
    )
    return low


def _places(text: str, problems: Problems) -> tuple[Place, ...]:
    places = []
    for item in text.replace(",", " ").split():
        try:
            places.append(Place.parse(item))
        except InputError as error:
            problems.errors.append(error)
    return tuple(places)


def _checked(check: Callable[[], T], problems: Problems, fallback: T) -> T:
    """Run a check that raises `InputError`; collect the error and go on with `fallback`."""
    try:
        return check()
    except InputError as error:
        problems.errors.append(error)
        return fallback


def build_request(inputs: Mapping[str, str], env: Mapping[str, str]) -> ScanRequest:
    """Check every input and build the scan; one `InputError` lists every problem."""
    problems = Problems(dialect(env))
    api = inputs.get("cf-api", "").rstrip("/")
    if not api:
        problems.missing("cf-api")
    auth = cf_login(inputs, problems)
    chain_var = inputs.get("chain-env-var") or DEFAULTS["chain-env-var"]
    if not _ENV_NAME.match(chain_var):
        problems.add(
            f"input `chain-env-var` must be an environment variable name, not {chain_var!r}",
            code="bad-env-var-name",
            fix="Use letters, digits and `_`, not starting with a digit (e.g. `CLI_CHAIN`).",
        )
    raw_renew = inputs.get("renew-before") or DEFAULTS["renew-before"]
    renew_before = _checked(lambda: RenewBefore.parse(raw_renew), problems, DEFAULT_RENEW_BEFORE)
    prefix = inputs.get("annotation-prefix") or None
    if prefix is not None:
        _checked(lambda: check_prefix(prefix, source="input `annotation-prefix`"), problems, "")
    template = inputs.get("environment") or DEFAULTS["environment"]
    _checked(lambda: check_template(template, source="input `environment`"), problems, "")
    fail_raw = inputs.get("fail-if-expires-within", "")
    fail_within = _number(inputs, "fail-if-expires-within", problems, 0, 3650) if fail_raw else None
    limit = _number(inputs, "matrix-limit", problems, 1, MATRIX_LIMIT)
    parallel = _number(inputs, "parallel", problems, 1, MAX_PARALLEL)
    timeout = _number(inputs, "timeout", problems, 1, 3600)
    places = _places(inputs.get("scope", ""), problems)
    problems.raise_if_any()
    assert auth is not None
    return ScanRequest(
        api_url=api,
        auth=auth,
        places=places,
        offering=inputs.get("offering") or DEFAULTS["offering"],
        plan=inputs.get("plan") or DEFAULTS["plan"],
        chain_env_var=chain_var,
        renew_before=renew_before,
        annotation_prefix=prefix,
        environment=template,
        parallel=parallel,
        timeout_s=float(timeout),
        fail_within_days=fail_within,
        matrix_limit=limit,
    )
