"""Inputs -> `RotationRequest`: the one place where the Action's inputs and the command
line's flags become a request.

Both adapters hand over their values keyed by the Action's input names (`fields`), as
text or, for a file the command line read, bytes; a `Dialect` says how to name each in
a message. Every rule (`rules`) runs here and nowhere else, before any call: sizes and
encodings first, then each value, then the combinations (exactly one way to log in,
exactly one source of the certificate, two distinct environment variables). All
problems are collected and reported together, so one run shows every fix needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from cryptography import x509

from .. import material
from ..errors import InputError
from ..models import (
    CfAssertion,
    CfAuth,
    CfTarget,
    OidcGrant,
    RenewBefore,
    RotationRequest,
    Strategy,
)
from ..rotation.annotations import check_prefix
from . import rules
from .certificate import JwtSource, new_certificate
from .fields import DEFAULT_WARN_DAYS, DEFAULTS, OIDC_INPUTS, ROTATE, VERIFY_TIMEOUT_S, Section
from .problems import Dialect, Problems

REQUIRED = ("cf-api", "cf-org", "cf-space", "app", "service-instance")


@dataclass(frozen=True)
class Settings:
    """The engine's request plus what only an adapter acts on."""

    request: RotationRequest
    warn_days: int = DEFAULT_WARN_DAYS
    """Warn when the new certificate expires within this many days."""
    fail_if_expires_within: int | None = None
    """Fail the run when the certificate in force afterwards expires within this many days."""
    warnings: tuple[str, ...] = ()
    """What the inputs got away with but should not have (a passphrase nothing needed)."""


def build(
    values: Mapping[str, str | bytes],
    dialect: Dialect,
    *,
    mask: Callable[[str], None] = lambda _form: None,
    jwt: JwtSource | None = None,
    cf_jwt: JwtSource | None = None,
    run_id: str = "",
) -> Settings:
    """Check every value and build the request; raise one `InputError` for all problems.

    `mask` is called with every derived form of a given private key as soon as it is
    parsed, before this returns (and later with every token derived from an OIDC login).
    `jwt` gives the JWT of a Vault JWT login; it is called only when the engine asks the
    issuer for a certificate. `cf_jwt` gives the token of a Cloud Foundry OIDC login
    (`cf-oidc`), called at each login.
    """
    problems = Problems(dialect)
    check_basics(values, problems, ROTATE)
    problems.raise_if_any()  # nothing below reads an oversized or undecodable value
    text = Text(values)
    d = dialect
    target = CfTarget(
        api_url=text("cf-api").rstrip("/"),
        org=text("cf-org"),
        space=text("cf-space"),
        app=text("app"),
        service_instance=text("service-instance"),
    )
    for name in REQUIRED:
        if not text(name):
            problems.missing(name)
    auth = cf_login(values, problems, jwt=cf_jwt, mask=mask)
    strategy = _strategy(text("strategy") or DEFAULTS["strategy"], problems)
    renew_before = _renew_before(text("renew-before"), problems)
    force, dry_run, keep_root = (
        _bool(text, n, problems) for n in ("force", "dry-run", "keep-root")
    )
    fail_within = number(text, "fail-if-expires-within", problems, low=0, high=rules.DAYS_MAX)
    timeout = _timeout(text("timeout") or DEFAULTS["timeout"], problems)
    max_in_flight = number(
        text,
        "max-in-flight",
        problems,
        low=1,
        high=rules.MAX_IN_FLIGHT_MAX,
        unit="instances",
        example="`2`",
    )
    verify_path, verify_url = _verify(text, problems)
    chain_var, key_var = _env_vars(text, problems)
    prefix = text("annotation-prefix") or None
    if prefix is not None:
        problems.check(lambda: check_prefix(prefix, source=d.ref("annotation-prefix")))
    trusted_roots = _trusted_roots(values.get("trusted-roots"), problems)
    new = new_certificate(values, problems, mask, jwt, check_only_allowed=dry_run)
    if text("parallel") not in ("", DEFAULTS["parallel"]):  # a targets file takes it away
        problems.warnings.append(
            f"{d.mention('parallel')} applies only with {d.mention('targets')}: ignored"
        )
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
        warn_days=warn_days,
        timeout_s=timeout,
        verify_timeout_s=min(VERIFY_TIMEOUT_S, timeout / 10),
        max_in_flight=max_in_flight or int(DEFAULTS["max-in-flight"]),
        run_id=run_id,
        annotation_prefix=prefix,
    )
    return Settings(
        request=request,
        warn_days=warn_days,
        fail_if_expires_within=fail_within,
        warnings=tuple(problems.warnings),
    )


def _trusted_roots(value: str | bytes | None, problems: Problems) -> tuple[x509.Certificate, ...]:
    """`trusted-roots`: the roots the new chain must end in, in any form `inspect` reads;
    empty means SAP's published list (`material.trust`)."""
    if not value:
        return ()
    try:
        return material.load_chain(value)
    except InputError:
        d = problems.dialect
        problems.add(
            f"{d.ref('trusted-roots')} holds no certificate",
            code="bad-trusted-roots",
            fix="Give the PEM of the root CA(s) the new chain must end in, or leave it empty "
            "to check against SAP's list of approved roots.",
        )
        return ()


class Text:
    """A value as text ('' when not given); a file's bytes are decoded (checked already)."""

    def __init__(self, values: Mapping[str, str | bytes]) -> None:
        self._values = values

    def __call__(self, name: str) -> str:
        value = self._values.get(name, "")
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def check_basics(values: Mapping[str, str | bytes], problems: Problems, section: Section) -> None:
    """The size, encoding and line rules of every value given, whatever it is."""
    for name, value in values.items():
        if value:
            problems.check(partial(_basic, section, name, value, problems.dialect))


def _basic(section: Section, name: str, value: str | bytes, dialect: Dialect) -> None:
    spec = section.by_name[name]
    label = dialect.ref(name)
    rules.size(value, label, spec.limit)
    if isinstance(value, bytes):
        return  # a file: the material parser reads every encoding it may hold
    if spec.multiline or spec.secret:
        rules.utf8(value, label)
    else:
        rules.one_line(value, label, spec.limit)


@dataclass(frozen=True)
class _Oidc:
    """Where a Cloud Foundry OIDC login gets its token, and who masks derived tokens."""

    jwt: JwtSource | None
    mask: Callable[[str], None]


def cf_login(
    values: Mapping[str, str | bytes],
    problems: Problems,
    *,
    jwt: JwtSource | None = None,
    mask: Callable[[str], None] = lambda _token: None,
) -> CfAuth | None:
    """The CF API URL's rule and exactly one way to log in: what every command that calls
    Cloud Foundry checks (`rotate`, `scan`). A missing `cf-api` is the caller's to report.
    `jwt` gives the token of an OIDC login (`cf-oidc`); without one, `cf-oidc` is refused."""
    text = Text(values)
    d = problems.dialect
    api = text("cf-api").rstrip("/")
    if api:
        problems.check(
            lambda: rules.https_url(api, d.ref("cf-api"), ca_label=d.mention("cf-ca-cert"))
        )
    return _auth(text, values, problems, _Oidc(jwt, mask))


def _ca_text(text: Text, values: Mapping[str, str | bytes], problems: Problems) -> str | None:
    d = problems.dialect
    ca_pem = values.get("cf-ca-cert") or None
    if ca_pem is not None and problems.check(
        lambda: rules.ca_bundle(ca_pem, d.ref("cf-ca-cert"), "the CF API's server certificate")
    ):
        return text("cf-ca-cert")
    return None


def _auth(
    text: Text, values: Mapping[str, str | bytes], problems: Problems, oidc: _Oidc
) -> CfAuth | None:
    """Exactly one of: user and password, client id and secret, or an OIDC login."""
    d = problems.dialect
    user, password = text("cf-username"), text("cf-password")
    client, secret = text("cf-client-id"), text("cf-client-secret")
    origin = text("cf-origin")
    ca_text = _ca_text(text, values, problems)
    user_pair, client_pair = (
        d.names("cf-username", "cf-password"),
        d.names("cf-client-id", "cf-client-secret"),
    )
    if text("cf-oidc"):
        return _oidc_auth(text, problems, oidc, ca_text)
    stray = [n for n in OIDC_INPUTS if text(n) and d.has(n)]
    if stray:
        problems.without_switch(
            "cf-oidc",
            stray,
            fix=f"Set {d.mention('cf-oidc')} to `user` or `client` to log in with an OIDC "
            "token, or remove {names}.",
        )
        return None
    if (user or password) and (client or secret):
        problems.add(
            f"give either {user_pair} or {client_pair}, not both",
            code="ambiguous-auth",
            fix="Remove the pair you do not use.",
        )
        return None
    if client or secret:
        if not client:
            problems.missing("cf-client-id", why=f" but {d.mention('cf-client-secret')} is set")
        if not secret:
            problems.missing("cf-client-secret", why=f" but {d.mention('cf-client-id')} is set")
        _no_origin(problems, origin, "a UAA client")
        return CfAuth(client_id=client, client_secret=secret, ca_pem=ca_text)
    if user or password:
        if not user:
            problems.missing("cf-username", why=f" but {d.mention('cf-password')} is set")
        if not password:
            problems.missing("cf-password", why=f" but {d.mention('cf-username')} is set")
        return CfAuth(username=user, password=password, origin=origin, ca_pem=ca_text)
    oidc_named = oidc.jwt is not None  # `scan` has no OIDC login (yet)
    also = f" and {d.mention('cf-oidc')}" if oidc_named else ""
    problems.add(
        f"no Cloud Foundry credentials: {user_pair}, {client_pair}{also} are all empty",
        code="missing-credentials",
        fix=f"Give a technical user ({d.mention('cf-username')}, {d.mention('cf-password')}, "
        f"and {d.mention('cf-origin')} for a custom identity provider)"
        + (", a UAA client" if oidc_named else " or a UAA client")
        + f" ({d.mention('cf-client-id')}, {d.mention('cf-client-secret')})"
        + (
            f", or log in with an OIDC token ({d.mention('cf-oidc')}; docs/passwordless.md)."
            if oidc_named
            else "."
        ),
    )
    problems.empty_hint(secret=True)
    return None


def _no_origin(problems: Problems, origin: str, who: str) -> None:
    d = problems.dialect
    if origin:
        problems.add(
            f"{d.ref('cf-origin')} applies only to a user, not to {who}",
            code="origin-without-user",
            fix=f"Remove {d.mention('cf-origin')}; a UAA client has no identity provider origin.",
        )


def _oidc_auth(text: Text, problems: Problems, oidc: _Oidc, ca_text: str | None) -> CfAuth | None:
    """`cf-oidc: user` (JWT bearer grant) or `client` (client assertion), and its inputs."""
    d = problems.dialect
    label = d.ref("cf-oidc")
    grant = problems.value(
        lambda: OidcGrant(
            rules.choice(
                text("cf-oidc"),
                label,
                tuple(g.value for g in OidcGrant),
                code="bad-cf-oidc",
                fix="`user`: the token names a user of an identity provider (UAA's JWT bearer "
                "grant); `client`: it proves a UAA client instead of a secret.",
            )
        ),
        None,
    )
    client, secret, origin = text("cf-client-id"), text("cf-client-secret"), text("cf-origin")
    password_inputs = [n for n in ("cf-username", "cf-password") if text(n)]
    if password_inputs:
        names = ", ".join(d.mention(n) for n in password_inputs)
        problems.add(
            f"{d.ref('cf-oidc')} logs in with an OIDC token, so {names} would not be used",
            code="ambiguous-auth",
            fix=f"Give exactly one way to log in: remove {names}, or remove "
            f"{d.mention('cf-oidc')} to log in with the password.",
        )
    if grant is OidcGrant.CLIENT:
        if not client:
            problems.missing("cf-client-id", why=f" but {d.mention('cf-oidc')} is `client`")
        if secret:
            problems.add(
                f"{d.ref('cf-client-secret')} would not be used: with {d.mention('cf-oidc')} "
                "`client` the OIDC token proves the client",
                code="ambiguous-auth",
                fix=f"Remove {d.mention('cf-client-secret')}, or remove {d.mention('cf-oidc')} "
                "to log in with the secret.",
            )
        _no_origin(problems, origin, f"{d.mention('cf-oidc')} `client`")
    elif secret and not client:
        problems.missing("cf-client-id", why=f" but {d.mention('cf-client-secret')} is set")
    url, exchange_client = text("cf-oidc-exchange-url"), text("cf-oidc-exchange-client-id")
    if url and not exchange_client:
        problems.missing(
            "cf-oidc-exchange-client-id", why=f" but {d.mention('cf-oidc-exchange-url')} is set"
        )
    if exchange_client and not url:
        problems.missing(
            "cf-oidc-exchange-url", why=f" but {d.mention('cf-oidc-exchange-client-id')} is set"
        )
    if url:
        problems.check(
            lambda: rules.https_url(
                url, d.ref("cf-oidc-exchange-url"), ca_label=d.mention("cf-ca-cert")
            )
        )
    source = oidc.jwt
    if source is None:
        problems.add(
            f"{label} needs an OIDC token, and none can be had here",
            code="no-id-token",
            fix="Run in a GitHub job with `permissions: id-token: write`, or on the command "
            "line name the variable that holds the token with `--cf-assertion-env`.",
        )
        return None
    problems.check(source.check)
    if grant is None:
        return None
    audience = text("cf-oidc-audience") or None
    assertion = CfAssertion(
        grant,
        fetch=lambda: source(audience),
        exchange_url=url.rstrip("/") or None,
        exchange_client_id=exchange_client or None,
        source=source.describe(audience),
        on_secret=oidc.mask,
    )
    return CfAuth(
        origin=origin if grant is OidcGrant.USER else "",
        client_id=client,
        client_secret=secret if grant is OidcGrant.USER else "",
        ca_pem=ca_text,
        assertion=assertion,
    )


def _bool(text: Text, name: str, problems: Problems) -> bool:
    return problems.value(lambda: rules.boolean(text(name), problems.dialect.ref(name)), False)


def number(
    text: Text,
    name: str,
    problems: Problems,
    *,
    low: int,
    high: int,
    unit: str = "days",
    example: str = "`14`",
) -> int | None:
    """A whole number from `low` to `high`, None when not given (`rules.whole_number`)."""
    raw = text(name)
    if raw == "":
        return None
    label = problems.dialect.ref(name)
    return problems.value(
        lambda: rules.whole_number(raw, label, low=low, high=high, unit=unit, example=example),
        None,
    )


def _timeout(raw: str, problems: Problems) -> float:
    label = problems.dialect.ref("timeout")
    fix = "Write for example `900` (15 minutes, the default)."
    return problems.value(lambda: rules.seconds(raw, label, fix=fix), float(DEFAULTS["timeout"]))


def _strategy(raw: str, problems: Problems) -> Strategy | None:
    label = problems.dialect.ref("strategy")
    choices = tuple(s.value for s in Strategy)
    fix = "Leave it unset (`auto`) unless you need a particular strategy."
    return problems.value(
        lambda: Strategy(rules.choice(raw, label, choices, code="bad-strategy", fix=fix)), None
    )


def _renew_before(raw: str, problems: Problems) -> RenewBefore | None:
    if not raw:
        return None
    label = problems.dialect.ref("renew-before")
    return problems.value(lambda: RenewBefore.parse(raw, label=label), None)


def _verify(text: Text, problems: Problems) -> tuple[str | None, str | None]:
    d = problems.dialect
    path, url = text("verify-path"), text("verify-url")
    if path and url:
        problems.add(
            f"give either {d.mention('verify-path')} or {d.mention('verify-url')}, not both",
            code="ambiguous-verify",
            fix=f"{d.mention('verify-path')} is appended to the iFlow URL of the new binding; "
            f"{d.mention('verify-url')} is a full URL.",
        )
        return None, None
    if url:
        label = d.ref("verify-url")
        ca = d.mention("cf-ca-cert")
        return None, problems.value(
            lambda: rules.https_url(url, label, ca_label=ca, base=False), None
        )
    if path:
        label, url_label = d.ref("verify-path"), d.mention("verify-url")
        return problems.value(lambda: rules.verify_path(path, label, url_label), None), None
    return None, None


def _env_vars(text: Text, problems: Problems) -> tuple[str, str]:
    """The app's two variables: valid, not the platform's, and not the same one."""
    d = problems.dialect
    chain_var = text("chain-env-var") or DEFAULTS["chain-env-var"]
    key_var = text("key-env-var") or DEFAULTS["key-env-var"]
    valid = [
        problems.check(partial(rules.env_var_name, value, d.ref(name)))
        for name, value in (("chain-env-var", chain_var), ("key-env-var", key_var))
    ]
    if all(valid):
        labels = (d.ref("chain-env-var"), d.mention("key-env-var"))
        problems.check(lambda: rules.distinct_env_vars(chain_var, key_var, labels))
    return chain_var, key_var
