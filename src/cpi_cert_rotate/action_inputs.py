"""The Action's inputs: read as the runner passes them, checked, turned into a request.

The runner enforces neither `required: true` nor any type, and hands every input over as
a string in `INPUT_<NAME>` (hyphens kept: `INPUT_CF-API`). So every rule lives here:
exactly one way to authenticate, exactly one source of the certificate
(`action_issuer_inputs`), strict booleans and numbers, and messages that say what is
missing and how to fix it. All problems are collected and reported together, so one
run shows every fix needed.

Masking happens here too, because it must come before anything is printed: the caller
masks the raw secret inputs (`SECRET_INPUTS`) first, and `build_settings` masks every
derived form of a given key the moment it is parsed (`material.secret_forms`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509

from .action_issuer_inputs import (
    CERTIFICATE_INPUTS,
    CERTIFICATE_SECRET_INPUTS,
    IdToken,
    chain_key_blocks,
    new_certificate,
)
from .errors import InputError
from .models import CfAuth, CfTarget, RenewBefore, RotationRequest, Strategy
from .rotation.annotations import check_prefix

__all__ = [
    "INPUTS",
    "SECRET_INPUTS",
    "ActionSettings",
    "Problems",
    "build_settings",
    "chain_key_blocks",
    "read_inputs",
    "target_of",
]

INPUTS: tuple[str, ...] = (
    "cf-api",
    "cf-username",
    "cf-password",
    "cf-origin",
    "cf-client-id",
    "cf-client-secret",
    "cf-ca-cert",
    "cf-org",
    "cf-space",
    "app",
    "service-instance",
    *CERTIFICATE_INPUTS,
    "trusted-roots",
    "chain-env-var",
    "key-env-var",
    "strategy",
    "renew-before",
    "force",
    "dry-run",
    "verify-path",
    "verify-url",
    "keep-root",
    "fail-if-expires-within",
    "timeout",
    "annotation-prefix",
)
"""Every input of action.yml, in its order (a test keeps the two in step)."""

SECRET_INPUTS: tuple[str, ...] = (
    "cf-password",
    "cf-client-secret",
    *CERTIFICATE_SECRET_INPUTS,
)
"""Inputs masked line by line before anything else is printed."""

DEFAULT_WARN_DAYS = 30
"""Warn when the new certificate expires within this many days (unless
`fail-if-expires-within` gives another threshold)."""

DEFAULT_TIMEOUT_S = 900.0

VERIFY_TIMEOUT_S = 60.0
"""Test before promote retries while CPI picks up the new binding: up to a tenth of
`timeout`, at most this long."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})

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


@dataclass(frozen=True)
class ActionSettings:
    """The request for the engine plus what only the adapter acts on."""

    request: RotationRequest
    warn_days: int = DEFAULT_WARN_DAYS
    """Warn when the new certificate expires within this many days (the adapter warns
    itself, naming the Action's inputs, so the request asks material for no such warning)."""
    fail_if_expires_within: int | None = None
    """Fail the run when the certificate in force afterwards expires within this many days."""


def read_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """Every known input from `env`, trimmed, '' when unset (the runner's naming rule)."""
    return {name: env.get(_env_name(name), "").strip() for name in INPUTS}


def _env_name(name: str) -> str:
    """`cf-api` -> `INPUT_CF-API`: spaces become `_`, upper case, hyphens kept."""
    return "INPUT_" + name.replace(" ", "_").upper()


def target_of(inputs: Mapping[str, str]) -> CfTarget:
    """The target as given, even when incomplete (for the report of bad input)."""
    return CfTarget(
        api_url=inputs.get("cf-api", "").rstrip("/"),
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
) -> ActionSettings:
    """Check every input and build the engine's request; raise one `InputError` for all.

    `mask` is called with every derived form of a given private key as soon as it is
    parsed, before this function returns (and so before the caller prints anything).
    `id_token` fetches the job's OIDC token for a Vault JWT login (default
    `gha.id_token`); it is called only when a certificate is issued.
    """
    problems = Problems(env)
    target = target_of(inputs)
    for name in ("cf-api", "cf-org", "cf-space", "app", "service-instance"):
        if not inputs.get(name):
            problems.missing(name)
    if target.api_url:
        problems.check_https(target.api_url, "cf-api")
    auth = _auth(inputs, problems)
    strategy = _choice(inputs, "strategy", problems)
    renew_before = _renew_before(inputs, problems)
    force = _bool(inputs, "force", problems)
    dry_run = _bool(inputs, "dry-run", problems)
    keep_root = _bool(inputs, "keep-root", problems)
    fail_within = _int(inputs, "fail-if-expires-within", problems, minimum=0)
    timeout = _timeout(inputs, problems)
    verify_path, verify_url = _verify(inputs, problems)
    chain_var = inputs.get("chain-env-var") or "CLI_CHAIN"
    key_var = inputs.get("key-env-var") or "CLI_KEY"
    for name, value in (("chain-env-var", chain_var), ("key-env-var", key_var)):
        if not _ENV_NAME.match(value):
            problems.add(
                f"input `{name}` must be an environment variable name, not {value!r}",
                code="bad-env-var-name",
                fix="Use letters, digits and `_`, not starting with a digit (e.g. `CLI_CHAIN`).",
            )
    if chain_var == key_var:
        problems.add(
            "inputs `chain-env-var` and `key-env-var` name the same variable",
            code="bad-env-var-name",
            fix="The chain and the key need two different environment variables.",
        )
    prefix = inputs.get("annotation-prefix") or None
    if prefix is not None:
        try:
            check_prefix(prefix, source="input `annotation-prefix`")
        except InputError as error:
            problems.errors.append(error)
    trusted_roots = _trusted_roots(inputs, problems)
    new = new_certificate(inputs, env, problems, mask, id_token, check_only_allowed=dry_run)
    problems.raise_if_any()
    assert auth is not None
    assert new is not None
    assert strategy is not None
    warn_days = fail_within if fail_within is not None else DEFAULT_WARN_DAYS
    request = RotationRequest(
        target=target,
        auth=auth,
        chain=new.chain,
        key=new.key,
        issuer=new.issuer,
        chain_env_var=chain_var,
        key_env_var=key_var,
        strategy=strategy,
        renew_before=renew_before,
        force=force,
        dry_run=dry_run,
        verify_path=verify_path,
        verify_url=verify_url,
        keep_root=keep_root,
        trusted_roots=trusted_roots,
        warn_days=0,
        timeout_s=timeout,
        verify_timeout_s=min(VERIFY_TIMEOUT_S, timeout / 10),
        run_id=_run_id(env),
        annotation_prefix=prefix,
    )
    return ActionSettings(request=request, warn_days=warn_days, fail_if_expires_within=fail_within)


class Problems:
    """Collects input problems so that one run reports all of them.

    The hints about empty `secrets.*`/`vars.*` are given once, after every problem.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[InputError] = []
        self.hints: dict[str, None] = {}

    def add(self, message: str, *, code: str, fix: str = "") -> None:
        self.errors.append(InputError(message, code=code, fix=fix))

    def missing(self, name: str, *, why: str = "") -> None:
        secret = name in SECRET_INPUTS
        self.add(f"input `{name}` is empty{why}", code="missing-input", fix=f"Set `{name}`.")
        self.empty_hint(secret=secret)

    def empty_hint(self, *, secret: bool) -> None:
        hint = _FORK_HINT if secret else _VARS_HINT
        event = self.env.get("GITHUB_EVENT_NAME", "")
        actor = self.env.get("GITHUB_ACTOR", "")
        if secret and (actor == "dependabot[bot]" or event.startswith("pull_request")):
            hint = f"This run was triggered by `{event}` (actor `{actor}`). " + hint
        self.hints[hint] = None

    def check_https(self, url: str, name: str, *, ca_input: str = "cf-ca-cert") -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.netloc:
            self.add(
                f"input `{name}` must be an https:// URL, not {url!r}",
                code="bad-url",
                fix="TLS is always verified; give the https URL (for a private CA also "
                f"`{ca_input}`).",
            )

    def check_ca(self, pem: str, name: str, server: str) -> None:
        """`pem` must hold at least one PEM certificate: the CA that issued `server`."""
        try:
            x509.load_pem_x509_certificates(pem.encode())
        except ValueError:
            self.add(
                f"input `{name}` is not a PEM certificate (bundle)",
                code="bad-ca-cert",
                fix=f"Give the PEM of the CA that issued {server}.",
            )

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        hints = "\n\n".join(self.hints)
        if len(self.errors) == 1:
            error = self.errors[0]
            fix = "\n\n".join(part for part in (error.fix, hints) if part)
            raise InputError(str(error), code=error.code, fix=fix) from error
        message = f"{len(self.errors)} input problems: " + "; ".join(map(str, self.errors))
        lines = [f"- {e}" + (f": {e.fix}" if e.fix else "") for e in self.errors]
        fix = "\n".join(lines) + (f"\n\n{hints}" if hints else "")
        raise InputError(message, code="invalid-inputs", fix=fix)


def _auth(inputs: Mapping[str, str], problems: Problems) -> CfAuth | None:
    """Exactly one of: user and password, or client id and secret."""
    user, password = inputs.get("cf-username", ""), inputs.get("cf-password", "")
    client, secret = inputs.get("cf-client-id", ""), inputs.get("cf-client-secret", "")
    origin = inputs.get("cf-origin", "")
    ca_pem = inputs.get("cf-ca-cert") or None
    if ca_pem is not None:
        problems.check_ca(ca_pem, "cf-ca-cert", "the CF API's server certificate")
    if (user or password) and (client or secret):
        problems.add(
            "give either `cf-username`/`cf-password` or `cf-client-id`/`cf-client-secret`, "
            "not both",
            code="ambiguous-auth",
            fix="Remove the pair you do not use from the step's `with:`.",
        )
        return None
    if client or secret:
        if not client:
            problems.missing("cf-client-id", why=" but `cf-client-secret` is set")
        if not secret:
            problems.missing("cf-client-secret", why=" but `cf-client-id` is set")
        if origin:
            problems.add(
                "input `cf-origin` applies only to `cf-username`/`cf-password`",
                code="origin-without-user",
                fix="Remove `cf-origin`; a UAA client has no identity provider origin.",
            )
        return CfAuth(client_id=client, client_secret=secret, ca_pem=ca_pem)
    if user or password:
        if not user:
            problems.missing("cf-username", why=" but `cf-password` is set")
        if not password:
            problems.missing("cf-password", why=" but `cf-username` is set")
        return CfAuth(username=user, password=password, origin=origin, ca_pem=ca_pem)
    problems.add(
        "no Cloud Foundry credentials: `cf-username`/`cf-password` and "
        "`cf-client-id`/`cf-client-secret` are all empty",
        code="missing-credentials",
        fix="Give a technical user (`cf-username`, `cf-password`, and `cf-origin` for a "
        "custom identity provider) or a UAA client (`cf-client-id`, `cf-client-secret`).",
    )
    problems.empty_hint(secret=True)
    return None


def _bool(inputs: Mapping[str, str], name: str, problems: Problems) -> bool:
    """YAML 1.2 core booleans only; anything else is an error, never a silent false."""
    raw = inputs.get(name, "")
    if raw in _TRUE:
        return True
    if raw in _FALSE or raw == "":
        return False
    problems.add(
        f"input `{name}` must be `true` or `false`, not {raw!r}",
        code="bad-boolean",
        fix=f"Write `{name}: true` or `{name}: false`.",
    )
    return False


def _int(inputs: Mapping[str, str], name: str, problems: Problems, *, minimum: int) -> int | None:
    raw = inputs.get(name, "")
    if raw == "":
        return None
    if not raw.isdigit() or int(raw) < minimum:
        problems.add(
            f"input `{name}` must be a whole number of days, not {raw!r}",
            code="bad-number",
            fix=f"Write for example `{name}: 14`.",
        )
        return None
    return int(raw)


def _timeout(inputs: Mapping[str, str], problems: Problems) -> float:
    raw = inputs.get("timeout", "")
    if raw == "":
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 6 * 3600:
        problems.add(
            f"input `timeout` must be a number of seconds between 1 and 21600, not {raw!r}",
            code="bad-number",
            fix="Write for example `timeout: 900` (15 minutes, the default).",
        )
        return DEFAULT_TIMEOUT_S
    return value


def _choice(inputs: Mapping[str, str], name: str, problems: Problems) -> Strategy | None:
    raw = inputs.get(name, "") or Strategy.AUTO.value
    try:
        return Strategy(raw)
    except ValueError:
        choices = ", ".join(f"`{s.value}`" for s in Strategy)
        problems.add(
            f"input `{name}` must be one of {choices}, not {raw!r}",
            code="bad-strategy",
            fix="Leave it unset (`auto`) unless you need a particular strategy.",
        )
        return None


def _renew_before(inputs: Mapping[str, str], problems: Problems) -> RenewBefore | None:
    raw = inputs.get("renew-before", "")
    if not raw:
        return None
    try:
        return RenewBefore.parse(raw)
    except InputError as error:
        problems.errors.append(error)
        return None


def _verify(inputs: Mapping[str, str], problems: Problems) -> tuple[str | None, str | None]:
    path, url = inputs.get("verify-path", ""), inputs.get("verify-url", "")
    if path and url:
        problems.add(
            "give either `verify-path` or `verify-url`, not both",
            code="ambiguous-verify",
            fix="`verify-path` is appended to the iFlow URL of the new binding; "
            "`verify-url` is a full URL.",
        )
    if url:
        problems.check_https(url, "verify-url")
    if path and "://" in path:
        problems.add(
            "input `verify-path` looks like a URL",
            code="bad-verify-path",
            fix="Give the path (`/http/ping`) in `verify-path`, or the URL in `verify-url`.",
        )
    if path and not path.startswith("/"):
        path = "/" + path
    return path or None, url or None


def _trusted_roots(inputs: Mapping[str, str], problems: Problems) -> tuple[x509.Certificate, ...]:
    """`trusted-roots`: a PEM bundle; empty means SAP's list (see `material.trust`)."""
    raw = inputs.get("trusted-roots", "")
    if not raw:
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(raw.encode()))
    except ValueError:
        problems.add(
            "input `trusted-roots` is not a PEM certificate bundle",
            code="bad-trusted-roots",
            fix="Give the PEM of the root CA(s) the new chain must end in, or leave it empty "
            "to check against SAP's list of approved roots.",
        )
        return ()


def _run_id(env: Mapping[str, str]) -> str:
    """Identifies this run in the app's annotations and the lock (empty outside Actions)."""
    run_id = env.get("GITHUB_RUN_ID", "")
    if not run_id:
        return ""
    repo = env.get("GITHUB_REPOSITORY", "")
    return f"gha:{repo}/{run_id}/{env.get('GITHUB_RUN_ATTEMPT', '1')}"
