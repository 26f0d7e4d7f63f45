"""The Action's inputs: read as the runner passes them, checked by `request.build`.

The runner enforces neither `required: true` nor any type, and hands every input over
as a string in `INPUT_<NAME>` (hyphens kept: `INPUT_CF-API`). Every rule lives in
`request`; this module only reads the inputs, names them the Action's way ("input
`cf-api`"), adds what only a workflow can explain (why a secret may be empty there) and
supplies the job's OIDC token for a Vault JWT login and a Cloud Foundry OIDC login
(`cf-oidc`), each requested for its own audience.

Masking comes first: the caller masks the raw secret inputs (`SECRET_INPUTS`) and the
password of a URL that holds one before anything is printed, and the builder masks every
derived form of a given key the moment it is parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from ..models import CfTarget
from ..request.build import Settings, build
from ..request.certificate import chain_key_blocks
from ..request.fields import INPUTS, SECRET_INPUTS
from ..request.problems import Dialect
from ..request.rules import display_url
from ..request.targets import Batch, build_batch, document
from . import gha

__all__ = [
    "INPUTS",
    "SECRET_INPUTS",
    "build_settings",
    "build_targets",
    "chain_key_blocks",
    "read_inputs",
    "secrets_in_urls",
    "target_of",
]

IdToken = Callable[[str | None], str]
"""Fetches the job's OIDC token for an audience (`gha.id_token`)."""

_URL_INPUTS = ("cf-api", "verify-url", "vault-addr")

_FORK_HINT = (
    "If the value comes from `secrets.*`: secrets are not passed to workflows triggered "
    "from forks (this includes Dependabot pull requests), environment secrets reach only "
    "jobs that name that `environment:`, and a misspelt secret name gives an empty string "
    "without any error."
)
_VARS_HINT = (
    "If the value comes from `vars.*`: environment variables reach only jobs that name "
    "that `environment:`, and a misspelt name gives an empty string without any error."
)


def read_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """Every known input from `env`, trimmed, '' when unset (the runner's naming rule)."""
    return {name: env.get(_env_name(name), "").strip() for name in INPUTS}


def _env_name(name: str) -> str:
    """`cf-api` -> `INPUT_CF-API`: spaces become `_`, upper case, hyphens kept."""
    return "INPUT_" + name.replace(" ", "_").upper()


def secrets_in_urls(inputs: Mapping[str, str]) -> list[str]:
    """Passwords written into a URL input (`https://user:pw@host`), to mask them first."""
    found = []
    for name in _URL_INPUTS:
        try:
            password = urlsplit(inputs.get(name, "")).password
        except ValueError:
            continue
        if password:
            found.append(password)
    return found


def target_of(inputs: Mapping[str, str]) -> CfTarget:
    """The target as given, even when incomplete (for the report of bad input); the API
    URL without any credentials, query or fragment it may hold."""
    api = inputs.get("cf-api", "")
    return CfTarget(
        api_url=display_url(api).rstrip("/") if api else "",
        org=inputs.get("cf-org", ""),
        space=inputs.get("cf-space", ""),
        app=inputs.get("app", ""),
        service_instance=inputs.get("service-instance", ""),
    )


def build_settings(
    inputs: Mapping[str, str],
    env: Mapping[str, str],
    mask: Callable[[str], None],
    id_token: IdToken | None = None,
) -> Settings:
    """Check every input and build the engine's request; raise one `InputError` for all.

    `mask` is called with every derived form of a given private key as soon as it is
    parsed, before this function returns (and so before the caller prints anything).
    `id_token` fetches the job's OIDC token (default `gha.id_token`, which masks it):
    for a Vault JWT login only when a certificate is issued, for `cf-oidc` at every
    Cloud Foundry login.
    """
    token = OidcToken(env, id_token or gha.id_token)
    return build(
        inputs,
        dialect(env),
        mask=mask,
        jwt=token,
        cf_jwt=token,
        run_id=_run_id(env),
    )


def build_targets(
    inputs: Mapping[str, str],
    env: Mapping[str, str],
    mask: Callable[[str], None],
    id_token: IdToken | None = None,
) -> Batch:
    """Check the `targets` file (a path from the workspace, or the YAML itself) and every
    target in it, as `build_settings` checks one run; raise one `InputError` for all.

    Variables that `-env` keys name come from `env`; what they hold is masked at once.
    """
    doc = document(inputs["targets"], "input `targets`", Path.cwd())
    token = OidcToken(env, id_token or gha.id_token)
    return build_batch(
        inputs,
        dialect(env),
        doc,
        env=env,
        mask=mask,
        jwt=token,
        cf_jwt=token,
        run_id=_run_id(env),
    )


def dialect(env: Mapping[str, str], inputs: tuple[str, ...] = INPUTS) -> Dialect:
    """How an action with `inputs` names them, with the hints for empty `secrets.*`/`vars.*`."""
    names = frozenset(inputs)

    def empty_hint(secret: bool) -> str:
        if not secret:
            return _VARS_HINT
        event, actor = env.get("GITHUB_EVENT_NAME", ""), env.get("GITHUB_ACTOR", "")
        if actor == "dependabot[bot]" or event.startswith("pull_request"):
            return f"This run was triggered by `{event}` (actor `{actor}`). " + _FORK_HINT
        return _FORK_HINT

    return Dialect(
        spell=lambda name: f"`{name}`" if name in names else None,
        noun="input ",
        empty="is empty",
        chain_is_public=True,
        empty_hint=empty_hint,
    )


class OidcToken:
    """The job's GitHub OIDC token: present only with `permissions: id-token: write`."""

    def __init__(self, env: Mapping[str, str], fetch: IdToken) -> None:
        self._env = env
        self._fetch = fetch

    def check(self) -> None:
        gha.id_token_request(self._env)

    def __call__(self, audience: str | None) -> str:
        return self._fetch(audience)

    def describe(self, audience: str | None) -> str:
        aud = f"audience `{audience}`" if audience else "GitHub's default audience"
        return f"the job's GitHub OIDC token ({aud})"


def _run_id(env: Mapping[str, str]) -> str:
    """Identifies this run in the app's annotations and the lock (empty outside Actions)."""
    run_id = env.get("GITHUB_RUN_ID", "")
    if not run_id:
        return ""
    repo = env.get("GITHUB_REPOSITORY", "")
    return f"gha:{repo}/{run_id}/{env.get('GITHUB_RUN_ATTEMPT', '1')}"
