"""The rules every input obeys: one function per rule, one problem code per rule.

`request.build` applies them to what the Action's inputs and the command line's flags
give; `cf` and `issuers` apply the URL rule again as a guard for direct library use.
Each function raises `InputError` naming the input the way its user spelt it (`label`:
"input `cf-api`" in the Action, "`--cf-api`" on the command line) and echoes a value only
when it cannot be a secret (a number, a variable name), shortened and made printable.

This module imports nothing of the package but `errors`, so any layer may use it.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from ..errors import InputError

NAME_MAX = 255
"""Cloud Controller's limit for app, space and org names (cloud_controller_ng
`app/messages/app_create_message.rb`, `space_create_message.rb`: maximum 255)."""

TEXT_MAX = 1024
"""Any other one-line value: a user, a role, a mount, a prefix."""

URL_MAX = 2048
SECRET_MAX = 16 * 1024
"""A password, client secret, token, JWT or passphrase (a GitHub OIDC token is ~1 KB)."""

MATERIAL_MAX = 64 * 1024
"""A chain, key or PKCS#12 (base64). Cloud Foundry holds at most 130 KB in one environment
variable (docs.cloudfoundry.org, "Cloud Foundry environment variables"); a real chain is a
few KB, and this leaves room for the text `openssl` writes around each certificate."""

CA_BUNDLE_MAX = 1024 * 1024
"""A CA bundle: a whole system bundle (~220 KB) still fits."""

TIMEOUT_MIN_S, TIMEOUT_MAX_S = 60, 6 * 3600
"""A rotation waits for a rolling deployment, so less than a minute cannot work; 6 h is
the longest a job runs on GitHub-hosted runners."""

DAYS_MAX = 3650
"""Ten years: the longest certificate lifetime worth a threshold."""

MAX_IN_FLIGHT_MAX = 1000

MATRIX_MAX = 256
"""GitHub runs at most 256 jobs from one matrix (docs: "Running variations of jobs in a
workflow"): the scan's `matrix-limit` cannot go beyond."""

SCAN_PARALLEL_MAX = 16
"""Per-app reads of a scan in flight at most: more only meets Cloud Controller's rate
limit sooner."""

SCAN_TIMEOUT_MAX_S = 3600
"""A scan reads; an hour covers thousands of apps at real latencies."""

ROTATE_PARALLEL_MAX = 16
"""Rotations of a targets file at once: each polls its jobs and deployment, and Cloud
Controller's rate limit counts per user."""

TARGETS_FILE_MAX = 1024 * 1024
"""A targets file: a thousand targets with every override fit in a tenth of it."""

TARGETS_MAX = 1000
"""Targets in one file: more is a landscape for the scan's matrix, or several runs."""

ENVIRONMENT_PLACEHOLDERS = ("org", "space", "app", "instance")
"""What the scan's environment template may name: the keys of a `due` matrix entry."""

ENVIRONMENT_NAME_MAX = 255
"""GitHub's limit for an environment's name (docs.github.com, "Managing environments for
deployment": "may not exceed 255 characters"); a template's own text cannot be longer."""

_SHOWN_MAX = 40
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# RFC 7515 section 7.1 (JWS compact serialization, what RFC 7519 section 7.1 makes a JWT):
# header, payload and signature, each base64url without padding, separated by dots.
_COMPACT_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# RFC 3986 section 3.3/3.4: the characters of a path and query, `%` only as `%XX`.
_PATH_CHARS = re.compile(r"([A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")

# Cloud Controller refuses these names in an app's environment variables, case-insensitively
# (`EnvironmentVariablesStringValuesValidator` in cloud_controller_ng app/messages/validators.rb).
_CC_REFUSED_PREFIXES = ("VCAP_", "VMC")
_CC_REFUSED_NAMES = frozenset({"PORT"})
# The platform sets these in every app instance, over what the app's own variables say
# (lib/cloud_controller/diego/environment.rb, the Diego executor, and the CF docs page
# "Cloud Foundry environment variables"); a chain or key written there never arrives.
_PLATFORM_PREFIXES = ("CF_",)
_PLATFORM_NAMES = frozenset(
    {
        "DATABASE_URL",
        "HOME",
        "INSTANCE_GUID",
        "INSTANCE_INDEX",
        "LANG",
        "MEMORY_LIMIT",
        "PATH",
        "PWD",
        "TMPDIR",
        "USER",
    }
)


def shown(value: str) -> str:
    """`value` quoted for a message: at most 40 characters, in ASCII with every other
    character escaped once (`\\u212a`, the Kelvin sign that looks like `K`; `\\x1b`)."""
    short = value if len(value) <= _SHOWN_MAX else value[: _SHOWN_MAX - 3] + "..."
    return ascii(short)


def printable(text: str) -> str:
    """`text` with each character a terminal or log would act on or hide escaped (control
    characters, bidi overrides, zero-width ones); letters of any script kept. For names
    a message repeats unquoted, such as a target's `org/space/app`."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def too_large(label: str, size: int, limit: int, unit: str = "characters") -> InputError:
    """The error for a value longer than `limit`."""
    return InputError(
        f"{label} is {size} {unit} long; at most {limit} are accepted",
        code="input-too-large",
        fix="Check that the right value or file was given (not a whole directory, log or "
        "bundle of unrelated files).",
    )


def size(value: str | bytes, label: str, limit: int) -> None:
    """Refuse a value longer than `limit` characters (bytes for binary data)."""
    if len(value) > limit:
        unit = "bytes" if isinstance(value, bytes) else "characters"
        raise too_large(label, len(value), limit, unit)


def utf8(value: str, label: str) -> None:
    """Refuse text that cannot be sent as UTF-8 (a shell in a non-UTF-8 locale, bad bytes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InputError(
            f"{label} is not valid UTF-8 text",
            code="bad-text",
            fix="Check the terminal's or the file's encoding; Cloud Foundry and the other "
            "services take UTF-8 only.",
        ) from error


def one_line(value: str, label: str, limit: int = TEXT_MAX) -> str:
    """A one-line UTF-8 value of at most `limit` characters without control characters."""
    size(value, label, limit)
    utf8(value, label)
    if _CONTROL.search(value):
        raise InputError(
            f"{label} contains a control character (a line break, tab or similar)",
            code="bad-text",
            fix="Give the value on one line; check for a stray newline where it was copied from.",
        )
    return value


def boolean(raw: str, label: str) -> bool:
    """YAML 1.2 core booleans only (`true`/`false`, any capitalisation YAML allows); '' is false."""
    if raw in ("true", "True", "TRUE"):
        return True
    if raw in ("false", "False", "FALSE", ""):
        return False
    raise InputError(
        f"{label} must be `true` or `false`, not {shown(raw)}",
        code="bad-boolean",
        fix="Write `true` or `false`.",
    )


def whole_number(raw: str, label: str, *, low: int, high: int, unit: str, example: str) -> int:
    """An integer from `low` to `high`, written in ASCII digits only."""
    if _DIGITS.fullmatch(raw) and low <= int(raw) <= high:
        return int(raw)
    raise InputError(
        f"{label} must be a whole number of {unit} from {low} to {high}, not {shown(raw)}",
        code="bad-number",
        fix=f"Write for example {example}.",
    )


def seconds(
    raw: str,
    label: str,
    *,
    fix: str,
    low: float = TIMEOUT_MIN_S,
    high: float = TIMEOUT_MAX_S,
) -> float:
    """A timeout in seconds from `low` to `high` (no sign, exponent, nan or inf); the
    defaults are a rotation's sane range."""
    if _DECIMAL.fullmatch(raw) and low <= float(raw) <= high:
        return float(raw)
    raise InputError(
        f"{label} must be a number of seconds from {low:g} to {high:g}, not {shown(raw)}",
        code="bad-number",
        fix=fix,
    )


def choice(raw: str, label: str, choices: tuple[str, ...], *, code: str, fix: str) -> str:
    """One of `choices`, exactly as written."""
    if raw in choices:
        return raw
    names = ", ".join(f"`{c}`" for c in choices)
    raise InputError(f"{label} must be one of {names}, not {shown(raw)}", code=code, fix=fix)


def key_kind(raw: str, label: str, kinds: tuple[str, ...]) -> str:
    """A key type this tool generates (`kinds`: `material.KEY_KINDS`, which `material`
    owns; this module imports nothing of it, as `models` imports this one)."""
    return choice(
        raw,
        label,
        kinds,
        code="bad-key-type",
        fix="Leave it unset to keep the live certificate's key type.",
    )


def env_var_name(name: str, label: str) -> str:
    """A name the app's environment can hold and the platform leaves alone."""
    size(name, label, NAME_MAX)
    if not _ENV_NAME.fullmatch(name):
        # Not echoed: a value that is no variable name may be a secret given by mistake.
        raise InputError(
            f"{label} must be an environment variable name (letters, digits and `_`, not "
            "starting with a digit)",
            code="bad-env-var-name",
            fix="Use a name such as `CLI_CHAIN` or `CLI_KEY`.",
        )
    upper = name.upper()
    if upper.startswith(_CC_REFUSED_PREFIXES) or upper in _CC_REFUSED_NAMES:
        why = "Cloud Controller refuses names starting with `VCAP_` or `VMC` and the name `PORT`"
    elif upper.startswith(_PLATFORM_PREFIXES) or upper in _PLATFORM_NAMES:
        why = "the platform sets it in every app instance, so the app would never see the value"
    else:
        return name
    raise InputError(
        f"{label} {name!r} is reserved: {why}",
        code="bad-env-var-name",
        fix="Use a name of the app's own, such as `CLI_CHAIN` and `CLI_KEY` (the defaults).",
    )


def distinct_env_vars(chain_var: str, key_var: str, labels: tuple[str, str]) -> None:
    """The chain and the key need two variables; one name would hold only the last written."""
    if chain_var == key_var:
        raise InputError(
            f"{labels[0]} and {labels[1]} name the same variable {chain_var!r}",
            code="bad-env-var-name",
            fix="The chain and the key need two different environment variables.",
        )


def _split(url: str, label: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        raise InputError(
            f"{label} is not a URL", code="bad-url", fix="Give an https:// URL."
        ) from error
    return parts


def display_url(url: str) -> str:
    """`url` without user, password, query or fragment: safe to print and to summarise."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    if parts.scheme and host:
        return f"{parts.scheme}://{host}{port}{parts.path}"
    if "@" in url or "?" in url:
        return "(not a URL)"
    return url  # `api.example.com`: no scheme, nothing that could be a credential


def https_url(url: str, label: str, *, ca_label: str = "", base: bool = True) -> str:
    """An https URL with a host and without credentials; returned without a trailing `/`.

    `base` URLs (an API endpoint, a Vault address) take no query or fragment either.
    The URL is echoed only without its user, password and query (`display_url`).
    """
    size(url, label, URL_MAX)
    utf8(url, label)
    parts = _split(url, label)
    if "@" in parts.netloc:
        raise InputError(
            f"{label} must not hold a user name or password (`user:password@host`)",
            code="bad-url",
            fix="Give the credentials in their own inputs, never in a URL; if a real password "
            "was in it, change that password: the URL may have been logged elsewhere.",
        )
    if parts.scheme != "https" or not parts.hostname or _CONTROL.search(url) or " " in url:
        private_ca = f" (for a private CA also {ca_label})" if ca_label else ""
        raise InputError(
            f"{label} must be an https:// URL, not {shown(display_url(url))}",
            code="bad-url",
            fix=f"TLS is always verified; give the https URL{private_ca}.",
        )
    if base and (parts.query or parts.fragment or url.endswith(("?", "#"))):
        raise InputError(
            f"{label} must be a plain https:// address without `?query` or `#fragment`",
            code="bad-url",
            fix="Give the address as `cf api` or `vault status` shows it.",
        )
    return url.rstrip("/")


def verify_path(path: str, label: str, url_label: str) -> str:
    """A path (and query) on the new binding's iFlow host; never another host.

    A scheme, a host (`//host`), a backslash, a fragment or a character outside RFC 3986
    is refused; a missing leading `/` is added.
    """
    size(path, label, URL_MAX)
    utf8(path, label)
    if "://" in path or path.startswith(("//", "\\")) or "\\" in path:
        raise InputError(
            f"{label} looks like a URL, not a path",
            code="bad-verify-path",
            fix=f"Give the path (`/http/ping`) here, or the whole URL in {url_label}.",
        )
    if "#" in path or not _PATH_CHARS.fullmatch(path):
        raise InputError(
            f"{label} must be a URL path such as `/http/ping` (letters, digits and "
            "`-._~!$&'()*+,;=:@/?`, other characters percent-encoded)",
            code="bad-verify-path",
            fix="Percent-encode spaces and other characters (`%20`); leave out any `#fragment`.",
        )
    return path if path.startswith("/") else "/" + path


def ca_bundle(pem: str | bytes, label: str, server: str) -> str:
    """`pem` as text holding at least one PEM certificate: the CA that issued `server`."""
    from cryptography import x509  # here: the rule module stays import-light

    size(pem, label, CA_BUNDLE_MAX)
    text = pem.decode("utf-8", "replace") if isinstance(pem, bytes) else pem
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError as error:
        raise InputError(
            f"{label} is not a PEM certificate (bundle)",
            code="bad-ca-cert",
            fix=f"Give the PEM of the CA that issued {server}.",
        ) from error
    return text


def place(text: str, label: str) -> tuple[str, str | None]:
    """`ORG` or `ORG/SPACE` (blanks around each name dropped): (org, space or None).

    Names may not be empty or hold a comma: Cloud Controller's list filters are
    comma-separated, so such a name cannot be asked for.
    """
    org, slash, space = text.strip().partition("/")
    names = [org.strip()] + ([space.strip()] if slash else [])
    if all(names) and not any("," in name for name in names):
        return names[0], names[1] if len(names) > 1 else None
    raise InputError(
        f"{label}: {shown(text)} is not an org or org/space",
        code="bad-place",
        fix="Give `ORG` or `ORG/SPACE`, e.g. `acme-prod` or `acme-prod/integration`; "
        "several are separated by spaces or new lines.",
    )


def environment_template(template: str, label: str) -> str:
    """A `str.format` template naming only `ENVIRONMENT_PLACEHOLDERS` (`{{` is a brace),
    each as it is: no conversion (`!r`) or format spec (`:>9`), which would change the
    name GitHub gets; its own text no longer than a GitHub environment's name."""
    import string

    fix = (
        "Use {org}, {space}, {app} and {instance}, e.g. `cpi-{app}` or `cpi-{space}-{app}`; "
        "write `{{` and `}}` for literal braces."
    )
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError as error:
        raise InputError(
            f"{label} template {shown(template)}: {error}", code="bad-environment", fix=fix
        ) from error
    unknown = sorted({f"{{{n}}}" for n, _, _ in fields if n not in ENVIRONMENT_PLACEHOLDERS})
    altered = sorted(
        {f"{{{n}{'!' + c if c else ''}{':' + s if s else ''}}}" for n, s, c in fields if s or c}
    )
    literal = "".join(text for text, *_ in string.Formatter().parse(template))
    if unknown:
        what = f"unknown placeholder(s) {', '.join(unknown)}"
    elif altered:
        what = f"placeholder(s) {', '.join(altered)} with a conversion or format spec"
    elif not template.strip():
        what = "it is empty"
    elif len(literal) > ENVIRONMENT_NAME_MAX:
        what = f"its text alone is longer than GitHub's {ENVIRONMENT_NAME_MAX} characters"
    else:
        return template
    raise InputError(f"{label} template {shown(template)}: {what}", code="bad-environment", fix=fix)


def compact_jwt(value: str, label: str) -> str:
    """A JWT in compact form (`_COMPACT_JWT`), without the blanks or line break a file or
    a shell may have added around it. Never echoed: it is a credential."""
    token = value.strip()
    if _COMPACT_JWT.fullmatch(token):
        return token
    raise InputError(
        f"{label} holds no JWT (three base64url parts separated by dots, e.g. `eyJ...`)",
        code="bad-jwt",
        fix="Export the token itself (the CI system's OIDC ID token), not a file path, a "
        "JSON response or another kind of secret.",
    )


def vault_ttl(raw: str, label: str) -> str:
    """A lifetime Vault's duration parser reads: seconds, a Go duration (`2160h`), or days."""
    if re.fullmatch(r"[0-9]+[smhd]?|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+", raw):
        return raw
    raise InputError(
        f"{label} must be a duration such as `2160h` or `90d`, not {shown(raw)}",
        code="bad-number",
        fix="Leave it empty for the role's `ttl`, or give hours (`2160h`) or days (`90d`).",
    )
