"""The job's OIDC token in the runner emulation, and an example workflow's `with:` resolved.

GitHub's token endpoint is the sandbox's stand-in (`cf_sandbox.oidc_issuer`, started by
`Landscape(oidc=True)`): the runner passes `ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN` to a job
with `permissions: id-token: write`, and the Action trusts the endpoint's certificate
through the system store, so `SSL_CERT_FILE` names the sandbox's CA (a public
certificate), as it would a GHES's private CA.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

_EXPRESSION = re.compile(r"^\$\{\{\s*(vars|secrets)\.([A-Z0-9_]+)\s*\}\}$")


def github_runner_env(ls: Any, folder: Path) -> dict[str, str]:
    """What the runner adds for `id-token: write`, pointing at the sandbox's issuer."""
    assert ls.oidc is not None, "start the landscape with oidc=True"
    ca = folder / "sandbox-ca.pem"
    ca.write_text(ls.ca_pem)
    return {**ls.oidc.github.runner_env(), "SSL_CERT_FILE": str(ca)}


def action_step(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(job, `with:`) of the one step of `path` that uses the Action."""
    workflow = yaml.safe_load(path.read_text())
    found = [
        (job, step)
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("org/cpi-cert-rotate@")
    ]
    ((job, step),) = found
    return job, {k: str(v) for k, v in step.get("with", {}).items()}


def resolve(given: dict[str, str], variables: dict[str, str]) -> dict[str, str]:
    """The inputs the runner passes: each `${{ vars.NAME }}` replaced from `variables`.

    A `${{ secrets.* }}` expression fails the test: the workflow must need none.
    """
    inputs = {}
    for name, value in given.items():
        match = _EXPRESSION.match(value)
        if match is None:
            inputs[name] = value
            continue
        kind, variable = match.groups()
        assert kind == "vars", f"{name} reads secrets.{variable}"
        inputs[name] = variables[variable]
    return inputs
