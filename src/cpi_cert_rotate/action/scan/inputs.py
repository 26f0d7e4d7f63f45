"""The scan action's inputs (scan/action.yml): read as the runner passes them, checked by
`request.scan.build_scan`.

Every field, default and rule lives in `request` (the `SCAN` section of its fields); this
module only reads the inputs and names them the Action's way, with the hints for empty
`secrets.*`/`vars.*` the main action gives. Secrets are masked by the caller before
this module runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...fleet import ScanRequest
from ...request.fields import SCAN
from ...request.scan import build_scan
from .. import gha
from ..inputs import OidcToken, dialect

INPUTS: tuple[str, ...] = SCAN.inputs
"""Every input of scan/action.yml, in its order (a test keeps the two in step)."""

SECRET_INPUTS: tuple[str, ...] = SCAN.secret_inputs
"""Masked before anything is printed. The scan takes no key: it reads, it never rotates."""

DEFAULTS: dict[str, str] = SCAN.action_defaults
"""The defaults of scan/action.yml (the runner passes them; a test keeps them in step)."""


def read_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """Every input the runner passed, trimmed: `cf-api` is `INPUT_CF-API`. An input the
    runner did not pass is left out (its default applies); one given empty is ''."""
    return {
        name: env["INPUT_" + name.upper()].strip()
        for name in INPUTS
        if "INPUT_" + name.upper() in env
    }


def build_request(inputs: Mapping[str, str], env: Mapping[str, str]) -> ScanRequest:
    """Check every input and build the scan; one `InputError` lists every problem."""
    token = OidcToken(env, gha.id_token)
    return build_scan(inputs, dialect(env, INPUTS), cf_jwt=token, mask=gha.mask)
