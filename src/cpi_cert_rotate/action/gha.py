"""Thin adapter over actions-toolkit: the only module that speaks the runner's protocol.

actions-toolkit 0.1.15 is sound for outputs, so those go through it (inputs are read by
`inputs.read_inputs`, all at once, with the runner's naming rule). Where it falls short,
this module does the job itself:

- `mask` registers every line of a secret on its own, escaped. An unescaped multi-line
  `::add-mask::` masks only the first line and prints the rest in clear; old self-hosted
  runners do not split escaped multi-line values either.
- `start_group`/`end_group` are plain functions (the toolkit's `group` is `async`).
- `warning`/`error` emit only the annotation properties that are set (the toolkit prints
  `title=,file=,...` with empty values).
- `Summary` appends Markdown to `GITHUB_STEP_SUMMARY` (the toolkit has no summary API).
- `id_token` fetches the job's GitHub OIDC token itself, with a timeout and the
  project's TLS context (the toolkit's `get_id_token` has no timeout and trusts
  `REQUESTS_CA_BUNDLE`).
- Plain text (`info`) is printed with workflow commands stopped (`::stop-commands::`
  with a random token), because log lines carry text we do not control (CF error
  details, app names) that must not be able to inject commands; every function that
  emits a command resumes processing first. The runner's parser state is per process,
  so this module's state is too.

Everything here writes to stdout, which the runner reads line by line.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
from actions_toolkit import core

from ..errors import InputError
from ..issuers.base import IssuerError
from ..mtls import EnvProxySession, SSLContextAdapter, trust_context
from ..retries import retry_policy

MIN_FRAGMENT = 8
"""Lines of a multi-line secret shorter than this are not masked on their own.

The last line of a base64 body can be 4 characters long; masking it would turn every such
4-character run in the log (and in the `leaf-pem` output, which the runner then drops)
into `***`, while it carries at most 5 bytes of the key. A single-line secret (a password)
is masked whatever its length: it is the whole secret.
"""

OIDC_TIMEOUT_S = 30.0
"""Read timeout of the OIDC token request (connecting may take at most 10 s)."""

# A GET that asks for a token is safe to repeat (@actions/core retries it too).
_OIDC_RETRY = retry_policy(
    methods=("GET",), statuses=(429, 500, 502, 503, 504), total=3, connect=2, read=1, status=2
)
_OIDC_FIX = (
    "Grant the job `permissions: id-token: write` (a job's `permissions:` replaces the "
    "defaults, so add `contents: read` too). Runs triggered from forks and by Dependabot "
    "get no OIDC token whatever the permissions: do not run the rotation on those events, "
    "or use `vault-token`."
)

_PEM_ARMOR = re.compile(r"^-----(BEGIN|END) [A-Z0-9 ]+-----$")
_PEM_HEADER = re.compile(r"^(Proc-Type|DEK-Info):")


def _escape_data(value: str) -> str:
    """Escape a command's message the way the runner unescapes it."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    """Escape an annotation property; `:` and `,` also delimit properties."""
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


_lock = threading.RLock()
_stop_token: str | None = None


def _write_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _command(line: str) -> None:
    """Write one workflow command, resuming command processing first if it was stopped."""
    global _stop_token  # noqa: PLW0603 - mirrors the runner's per-process parser state
    with _lock:
        if _stop_token is not None:
            _write_line(f"::{_stop_token}::")
            _stop_token = None
        _write_line(line)


def _text(lines: list[str]) -> None:
    """Write plain lines with command processing stopped (random token per stop)."""
    global _stop_token  # noqa: PLW0603
    with _lock:
        if _stop_token is None:
            _stop_token = secrets.token_hex(16)
            _write_line(f"::stop-commands::{_stop_token}")
        for line in lines:
            _write_line(line)


def resume_commands() -> None:
    """Leave the stopped state (at the end of a run, so later steps start clean)."""
    global _stop_token  # noqa: PLW0603
    with _lock:
        if _stop_token is not None:
            _write_line(f"::{_stop_token}::")
            _stop_token = None


def mask_fragments(value: str) -> list[str]:
    """The parts of `value` that `mask` registers, in order (exposed for tests and audits).

    A single-line value is one fragment. A multi-line value gives each stripped line of at
    least `MIN_FRAGMENT` characters, except PEM armor and PEM headers, which are public
    and would otherwise mask every certificate banner too.
    """
    lines = [line.strip() for line in value.replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line]
    if len(lines) == 1:
        return lines
    return [
        line
        for line in lines
        if len(line) >= MIN_FRAGMENT and not _PEM_ARMOR.match(line) and not _PEM_HEADER.match(line)
    ]


_masked: set[str] = set()


def mask(value: str) -> None:
    """Register `value` with the runner's secret masker, one escaped line at a time.

    A fragment already registered in this process is not sent again: the derived forms
    of one key share most of their lines.
    """
    with _lock:
        for fragment in mask_fragments(value):
            if fragment not in _masked:
                _masked.add(fragment)
                _command("::add-mask::" + _escape_data(fragment))


def set_output(name: str, value: str) -> bool:
    """Append `name` to `GITHUB_OUTPUT` (heredoc form with a random delimiter).

    Returns False (and writes nothing) outside a runner, where the file does not exist;
    the toolkit would otherwise fall back to the deprecated `::set-output` command.
    """
    path = os.environ.get("GITHUB_OUTPUT", "")
    if not path or not Path(path).exists():
        return False
    core.set_output(name, value)
    return True


def info(message: str) -> None:
    """Plain log text, never taken for a workflow command (see the module docstring)."""
    _text(message.splitlines() or [""])


def _annotation(kind: str, message: str, title: str | None) -> None:
    props = f" title={_escape_property(title)}" if title else ""
    _command(f"::{kind}{props}::{_escape_data(message)}")


def warning(message: str, *, title: str | None = None) -> None:
    """A warning annotation: one command line, newlines escaped."""
    _annotation("warning", message, title)


def error(message: str, *, title: str | None = None) -> None:
    """An error annotation: one command line, newlines escaped."""
    _annotation("error", message, title)


def notice(message: str, *, title: str | None = None) -> None:
    """A notice annotation: one command line, newlines escaped."""
    _annotation("notice", message, title)


def start_group(title: str) -> None:
    """Open a collapsible group (the log relay closes it when the engine's step ends)."""
    _command("::group::" + _escape_data(title))


def end_group() -> None:
    """Close the group opened last."""
    _command("::endgroup::")


def is_debug() -> bool:
    """True when the workflow asked for debug logs."""
    return os.environ.get("RUNNER_DEBUG") == "1"


class Summary:
    """The step's job summary (`GITHUB_STEP_SUMMARY`), appended as Markdown.

    The runner masks the file line by line before upload, but nothing secret is ever
    written to it: callers pass facts from the report only.
    """

    LIMIT = 1024 * 1024
    """The runner refuses summaries above 1 MiB per step."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path if path is not None else os.environ.get("GITHUB_STEP_SUMMARY", "")

    @property
    def available(self) -> bool:
        """True inside a runner (the file exists); outside one the summary is skipped."""
        return bool(self.path) and Path(self.path).exists()

    def append(self, markdown: str) -> bool:
        """Append `markdown` (with a final newline); False when there is no summary file."""
        if not self.available:
            return False
        text = markdown if markdown.endswith("\n") else markdown + "\n"
        encoded = text.encode("utf-8")
        if len(encoded) > self.LIMIT:
            cut = encoded[: self.LIMIT - 200].decode("utf-8", errors="ignore")
            text = cut + "\n\n_(summary cut at the runner's 1 MiB limit)_\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
        return True


def id_token_request(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """GitHub's OIDC token endpoint and its bearer token, as the runner passes them.

    They are set only when the job has `permissions: id-token: write`; otherwise an
    `InputError` that says so (checked before the run, so a dry run finds it too).
    """
    env = os.environ if env is None else env
    url = env.get("ACTIONS_ID_TOKEN_REQUEST_URL", "")
    bearer = env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
    if not url or not bearer:
        raise InputError(
            "this job cannot request a GitHub OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL and "
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set)",
            code="no-id-token",
            fix=_OIDC_FIX,
        )
    return url, bearer


def id_token(audience: str | None = None) -> str:
    """The job's GitHub OIDC token (a JWT) for `audience`, masked before it is returned.

    GitHub's default audience is the repository owner's URL. TLS is verified against the
    system store (`SSL_CERT_FILE` for a GHES with a private CA) and certifi, never
    against `REQUESTS_CA_BUNDLE`; the call has a timeout and retries like @actions/core.
    """
    url, bearer = id_token_request()
    mask(bearer)
    if urlsplit(url).scheme != "https":
        raise IssuerError(
            "ACTIONS_ID_TOKEN_REQUEST_URL is not an https:// URL",
            fix="The runner sets this variable; check that no step or `env:` overrides it.",
        )
    if audience:
        url += ("&" if "?" in url else "?") + "audience=" + quote(audience, safe="")
    session = EnvProxySession(SSLContextAdapter(trust_context(), max_retries=_OIDC_RETRY))
    try:
        with session:
            response = session.get(
                url,
                headers={"Authorization": f"bearer {bearer}", "Accept": "application/json"},
                timeout=(10.0, OIDC_TIMEOUT_S),
                allow_redirects=False,
            )
    except requests.RequestException as error:
        raise IssuerError(
            f"cannot reach GitHub's OIDC token endpoint: {type(error).__name__}",
            fix="Check the runner's network and proxy settings (HTTPS_PROXY, NO_PROXY).",
        ) from error
    if response.status_code != 200:
        raise IssuerError(
            f"GitHub's OIDC token endpoint answered {response.status_code}",
            fix=_OIDC_FIX if response.status_code in (401, 403) else "",
        )
    try:
        value = response.json().get("value")
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, str) or not value:
        raise IssuerError("GitHub's OIDC token endpoint answered without a token")
    mask(value)
    return value


def md_cell(text: str) -> str:
    """Make `text` safe inside one Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")
