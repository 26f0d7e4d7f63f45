"""One HTTPS session for Cloud Controller and UAA: timeouts, retries, errors, warnings.

Every call goes through `CfHttp.request`, which gives it a timeout, retries it where that
is safe, turns connection failures into `CfUnreachable` and error envelopes into
`CfApiError`, collects `X-Cf-Warnings`, and replays it once after a token refresh when
Cloud Controller says the token expired.

Retries (`retries.retry_policy`, as every client here; no hand-written loop):
- a connection that could not be opened: any method, nothing was sent;
- 429: any method, the rate limiter answers before a handler runs; `Retry-After` honoured
  (capped, a run has a deadline);
- 502/503/504 and a connection dropped after sending: idempotent methods only
  (GET, PUT, PATCH, DELETE, HEAD, OPTIONS). A POST creates something and is never
  replayed blindly, except the UAA token POST, which is mounted as idempotent.

Outages: after `wait_out_outages(stop)` (the rollback), a token that UAA cannot give now
is asked for again, and a Cloud Controller call of an idempotent method that found CC
unavailable (unreachable, 429/502/503/504, after the retries above) is sent again, until
the deadline, `outage.CC_WAIT_MAX_S` or `stop` (`outage.patiently`); a POST is not.
Before, a call fails fast.

Deadline: `set_deadline` bounds the run. A call is not started after it (`CfTimeout`),
its timeout is cut to what is left, and no retry waits or starts past it; so a slow or
failing endpoint cannot stretch a run much beyond its deadline (at most one timeout).

Trust: the session verifies against the system store + certifi + `cf-ca-cert` (in memory,
see `mtls.trust_context`). `trust_env` is off, so `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE`
(set globally on many machines) neither add nor replace trust; proxies from
`HTTPS_PROXY`/`NO_PROXY` still apply (`mtls.EnvProxySession`). A private or intercepting
CA must be given as `cf-ca-cert` (or installed in the system store).

Secrets: request bodies and headers are never logged or put in errors; response texts
that go into errors pass through `Redactor`, which removes known secrets (password,
client secret, tokens, and every line of the keys the engine registers), bearer/basic
credentials, JWTs, PEM private keys and bare base64 lines (a key's line echoed without
its PEM armour).
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol, TypeVar
from urllib.parse import quote_plus, unquote_plus, urlsplit

import requests
from requests.utils import get_environ_proxies
from urllib3.util.retry import Retry
from urllib3.util.wait import wait_for_read

from ..errors import CfApiError, CfTimeout, CfUnreachable
from ..mtls import EnvProxySession, SSLContextAdapter, trust_context
from ..retries import Remaining, retry_policy
from . import outage as _outage
from .outage import is_cc_outage, patiently

__all__ = ["BearerSource", "CfHttp", "Redactor", "decode_warnings"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Attempts after the first for a retryable status: with the backoff below that is
# 0 + 1 + 2 + 4 s (+ jitter), long enough to ride out a router restart.
_RETRIES = 4
# A dropped connection or a read timeout: each may have cost a whole `timeout_s` already.
_READ_RETRIES = 2
# Nothing was sent yet; a wrong URL should fail in about a second, not in a minute.
_CONNECT_RETRIES = 2
_BACKOFF_FACTOR_S = 0.5
_BACKOFF_JITTER_S = 0.5
_BACKOFF_MAX_S = 8.0
# Honour Retry-After, but never sleep longer than this for one retry: the run has a deadline
# (urllib3's default cap is six hours).
_RETRY_AFTER_MAX_S = 60
_CONNECT_TIMEOUT_S = 10.0
# Near the deadline a call still gets this long: a shorter timeout only fails calls
# that would have succeeded.
_MIN_CALL_TIMEOUT_S = 1.0
# A non-JSON error body (a proxy's HTML page) is cut to this many characters.
_ERROR_TEXT_MAX = 300

_PEM_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S
)
# Credentials are long and hold a digit or a symbol; "Basic authentication" stays readable.
_AUTH_VALUE = re.compile(
    r"(?i)\b(bearer|basic)\s+(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{12,}"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# A bare base64 line as PEM bodies have them (a key's line echoed by CC or a proxy, cut
# from its BEGIN/END lines): 40+ characters of the alphabet, mixed case and a digit.
# Hex fingerprints (one case) and GUIDs (hyphens) are not matched.
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=])")
_REDACTED = "[redacted]"
_MIN_SECRET_LEN = 4  # shorter values would redact ordinary words


class BearerSource(Protocol):
    """What `CfHttp` needs from the token holder (`auth.UaaAuth`)."""

    def authorization(self) -> str:
        """The `Authorization` header value, refreshed first when the token is near expiry."""
        ...

    def renew(self, rejected: str | None = None) -> None:
        """Get a new token now: Cloud Controller answered 401 `CF-InvalidAuthToken` to the
        `Authorization` value `rejected` (a holder shared by several clients renews only
        when that is still its token)."""
        ...


class Redactor:
    """Removes secrets from text that may reach an error message or a log record."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        """Remember values (and their form-encoded spelling) to cut from any text."""
        for value in values:
            if value and len(value) >= _MIN_SECRET_LEN:
                self._secrets.update({value, quote_plus(value)})

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, _REDACTED)
        text = _PEM_KEY.sub(_REDACTED, text)
        text = _AUTH_VALUE.sub(lambda m: f"{m.group(1)} {_REDACTED}", text)
        text = _JWT.sub(_REDACTED, text)
        return _BASE64_RUN.sub(_base64_line, text)


def _base64_line(match: re.Match[str]) -> str:
    run = match.group(0)
    mixed = any(c.islower() for c in run) and any(c.isupper() for c in run)
    return _REDACTED if mixed and any(c.isdigit() for c in run) else run


def _retry_policy(methods: frozenset[str], remaining: Remaining) -> Retry:
    return retry_policy(
        methods=methods,
        statuses=RETRY_STATUSES,
        total=_RETRIES + _CONNECT_RETRIES + _READ_RETRIES,
        connect=_CONNECT_RETRIES,
        read=_READ_RETRIES,
        status=_RETRIES,
        other=0,
        retry_after_max_s=_RETRY_AFTER_MAX_S,
        backoff_max_s=_BACKOFF_MAX_S,
        backoff_factor_s=_BACKOFF_FACTOR_S,
        backoff_jitter_s=_BACKOFF_JITTER_S,
        remaining=remaining,
    )


def decode_warnings(header: str | None) -> list[str]:
    """`X-Cf-Warnings`: comma-separated, each `CGI.escape`d (so `+` is a space)."""
    if not header:
        return []
    return [unquote_plus(part).strip() for part in header.split(",") if part.strip()]


def _envelope(response: requests.Response) -> tuple[int | None, str, str]:
    """(code, title, detail) from a CC `errors[]` or a UAA `error` body, else the text.

    The body is parsed whatever the Content-Type: CC's 429 says text/plain over JSON.
    """
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            first = errors[0]
            code = first.get("code")
            details = [str(e.get("detail") or "") for e in errors if isinstance(e, Mapping)]
            return (
                code if isinstance(code, int) else None,
                str(first.get("title") or ""),
                "; ".join(d for d in details if d),
            )
        if "error" in body:
            return None, str(body.get("error") or ""), str(body.get("error_description") or "")
    text = " ".join(response.text.split())
    return None, "", text[:_ERROR_TEXT_MAX]


def _seconds(value: str | None) -> float | None:
    """A `Retry-After` in seconds (its delay-seconds form; an HTTP date is not used)."""
    if not value or not value.strip().isdigit():
        return None
    return min(float(value.strip()), _RETRY_AFTER_MAX_S)


def _connect(conn: Any) -> None:
    """Connect one pooled connection (an idle one that is still open is left as it is).

    A TLS 1.3 server sends its session tickets after the handshake (RFC 8446 section
    4.6.1); unread, they make urllib3 take the idle connection for dropped (it checks for
    readable data) and open another. So they are read here: waited for as long as the
    handshake took (about a round trip), then consumed without blocking.
    """
    if getattr(conn, "sock", None) is not None:
        return
    conn.timeout = _CONNECT_TIMEOUT_S  # a handshake that hangs must not hold the run
    started = time.monotonic()
    try:
        conn.connect()
        sock = conn.sock
        if not wait_for_read(sock, timeout=time.monotonic() - started):
            return
        sock.setblocking(False)
        try:
            if not sock.recv(1):  # the server closed it: let the pool open another
                conn.close()
                return
            conn.close()  # application data before any request: not a usable connection
        except (ssl.SSLWantReadError, BlockingIOError):
            sock.settimeout(_CONNECT_TIMEOUT_S)  # only tickets were there: ready
    except OSError as error:
        logger.debug("warming a connection: %s", error)
        conn.close()


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception behind requests' and urllib3's wrappers."""
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = getattr(error, "reason", None)
        if not isinstance(inner, BaseException) and error.args:
            inner = error.args[0]
        if not isinstance(inner, BaseException):
            inner = error.__cause__ or error.__context__
        if not isinstance(inner, BaseException):
            break
        error = inner
    return error


class CfHttp:
    """The one `requests.Session` of a `CfClient`, with the policy of the module docstring."""

    def __init__(
        self, *, ca_pem: str | None = None, timeout_s: float = 30.0, user_agent: str = ""
    ) -> None:
        self.timeout_s = timeout_s
        self.redact = Redactor()
        self.warnings: list[str] = []
        self._context = trust_context(ca_pem)
        self._post_retry_urls: set[str] = set()
        self._deadline: float | None = None
        self._outage_stop: threading.Event | None = None
        self.retry_after_s: float | None = None
        """The `Retry-After` (seconds) of the last answer, None without one: a wait polls
        no sooner (RFC 9110 section 10.2.3; CC's rate limiter and proxies send it)."""
        self._session = EnvProxySession(
            SSLContextAdapter(
                self._context, max_retries=_retry_policy(IDEMPOTENT_METHODS, self.remaining)
            )
        )
        self._session.headers["Accept"] = "application/json"
        if user_agent:
            self._session.headers["User-Agent"] = user_agent

    def allow_post_retries(self, url: str) -> None:
        """Treat POSTs to `url` as idempotent (the UAA token endpoint: a grant changes nothing)."""
        if url not in self._post_retry_urls:
            policy = _retry_policy(IDEMPOTENT_METHODS | {"POST"}, self.remaining)
            self._session.mount(url, SSLContextAdapter(self._context, max_retries=policy))
            self._post_retry_urls.add(url)

    def wait_out_outages(self, stop: threading.Event | None) -> None:
        """From now on, wait out a UAA outage when a call needs a token, and a Cloud
        Controller outage for a call of an idempotent method, until the deadline or until
        `stop` is set (`outage.patiently`); None: fail fast again (the default)."""
        self._outage_stop = stop

    def _token(self, get: Callable[[], T], failed: list[BaseException]) -> T:
        """`get()`, waited for in an outage; an error it raises is noted in `failed` (the
        call's own wait must not wait for the token again)."""
        stop = self._outage_stop
        try:
            return get() if stop is None else patiently(get, stop, self.remaining)
        except (CfApiError, CfUnreachable) as error:
            failed.append(error)
            raise

    def set_deadline(self, deadline: float | None) -> None:
        """Bound every later call by `deadline` (`time.monotonic()`); None lifts the bound."""
        self._deadline = deadline

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self._deadline is None else self._deadline - time.monotonic()

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def warm(self, url: str, connections: int) -> None:
        """Have `connections` TLS connections to `url`'s host in the pool now (idle ones
        count), opened at once, so that calls sent together later do not each pay a TCP and
        TLS handshake (two round trips) first. Nothing is sent on them. Skipped behind a
        proxy; any failure is left to the calls that follow. urllib3 has no public way to
        open a pooled connection without a request, so its pool's `_get_conn`/`_put_conn`
        are used (urllib3 2.x, pinned in requirements/runtime.txt)."""
        if get_environ_proxies(url, no_proxy=None):
            return
        try:
            adapter = self._session.get_adapter(url)
            if not isinstance(adapter, SSLContextAdapter):
                return
            # the pool requests itself picks for a call to `url` (its key holds the TLS
            # settings), not the manager's default one
            probe = requests.Request("GET", url).prepare()
            pool: Any = adapter.get_connection_with_tls_context(probe, True, None, None)
            fresh = [pool._get_conn() for _ in range(connections)]
            with ThreadPoolExecutor(max_workers=max(connections, 1)) as workers:
                list(workers.map(_connect, fresh))
            for conn in fresh:
                pool._put_conn(conn)
        except (OSError, ValueError, AttributeError) as error:
            logger.debug("warming connections to %s: %s", url, error)

    def request(
        self,
        method: str,
        url: str,
        *,
        bearer: BearerSource | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        service: str = "Cloud Controller",
    ) -> requests.Response:
        """Send one call (with the retries above); return a 2xx response or raise.

        Raises `CfUnreachable` when no answer came, `CfApiError` for any status >= 300.
        With a `bearer`, a 401 `CF-InvalidAuthToken` renews the token and replays the call
        once (safe for any method: the token check runs before any handler). After
        `wait_out_outages`, a Cloud Controller call (one with a `bearer`) of an idempotent
        method is sent again after an outage (`outage.patiently`); a POST never is.
        """
        token_errors: list[BaseException] = []
        send = partial(
            self._request,
            method,
            url,
            bearer=bearer,
            json_body=json_body,
            form=form,
            params=params,
            headers=headers,
            service=service,
            token_errors=token_errors,
        )
        stop = self._outage_stop
        if stop is None or bearer is None or method not in IDEMPOTENT_METHODS:
            return send()

        def outage(error: BaseException) -> bool:  # a token's outage was waited for already
            return is_cc_outage(error) and all(error is not e for e in token_errors)

        path = self.redact(urlsplit(url).path or "/")
        return patiently(
            send,
            stop,
            self.remaining,
            outage=outage,
            service=service,
            doing=f"{method} {path}",
            at_most_s=_outage.CC_WAIT_MAX_S,
        )

    def _request(
        self,
        method: str,
        url: str,
        *,
        bearer: BearerSource | None,
        json_body: Any,
        form: Mapping[str, str] | None,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
        service: str,
        token_errors: list[BaseException],
    ) -> requests.Response:
        """One call (`request`), without the wait for Cloud Controller; a token's error is
        noted in `token_errors`."""
        path = urlsplit(url).path or "/"
        for attempt in (1, 2):
            self._call_timeout(method, path)  # no time left: not even a token is fetched
            call_headers = dict(headers or {})
            if bearer is not None:
                call_headers["Authorization"] = self._token(bearer.authorization, token_errors)
            timeout = self._call_timeout(method, path)  # after the token: that may have waited
            started = time.monotonic()
            try:
                response = self._session.request(
                    method,
                    url,
                    json=json_body,
                    data=form,
                    params=params,
                    headers=call_headers,
                    timeout=(min(_CONNECT_TIMEOUT_S, timeout), timeout),
                    allow_redirects=False,
                )
            except requests.RequestException as error:
                raise self._unreachable(error, method, url, timeout) from error
            self._note(response, method, path, time.monotonic() - started)
            if (
                response.status_code == 401
                and bearer is not None
                and attempt == 1
                and _envelope(response)[1] == "CF-InvalidAuthToken"
            ):
                logger.debug("token rejected as invalid or expired; renewing and replaying once")
                self._token(partial(bearer.renew, call_headers["Authorization"]), token_errors)
                continue
            if response.status_code >= 300:
                raise self._error(response, method, path, service)
            return response
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _call_timeout(self, method: str, path: str) -> float:
        """The per-call timeout, cut to the time left; `CfTimeout` when none is left."""
        left = self.remaining()
        if left is None:
            return self.timeout_s
        if left <= 0:
            raise CfTimeout(
                f"the run's time is up: {method} {self.redact(path)} was not sent "
                f"({-left:.0f}s past the deadline; raise `timeout` if the landscape is slow)"
            )
        return max(min(self.timeout_s, left), _MIN_CALL_TIMEOUT_S)

    def json(self, response: requests.Response, what: str) -> Any:
        """The response body as JSON, or a `CfApiError` that names `what` was expected."""
        try:
            return response.json()
        except ValueError as error:
            raise CfApiError(
                f"expected JSON for {what}, got {response.headers.get('Content-Type', 'no type')}",
                status=response.status_code,
                request_id=response.headers.get("X-Vcap-Request-Id", ""),
                method=response.request.method or "",
                path=urlsplit(response.url).path,
            ) from error

    def _note(self, response: requests.Response, method: str, path: str, took: float) -> None:
        self.retry_after_s = _seconds(response.headers.get("Retry-After"))
        for warning in decode_warnings(response.headers.get("X-Cf-Warnings")):
            self.add_warning(warning)
        logger.debug(
            "%s %s -> %d in %.2fs (request id %s)",
            method,
            self.redact(path),
            response.status_code,
            took,
            response.headers.get("X-Vcap-Request-Id", "-"),
        )

    def add_warning(self, warning: str) -> None:
        """Keep a Cloud Controller warning once (header or job), redacted."""
        text = self.redact(warning)
        if text and text not in self.warnings:
            logger.info("Cloud Controller warning: %s", text)
            self.warnings.append(text)

    def _error(
        self, response: requests.Response, method: str, path: str, service: str
    ) -> CfApiError:
        status = response.status_code
        code, title, detail = _envelope(response)
        detail = self.redact(detail)
        if 300 <= status < 400 and not detail:
            detail = f"redirected to {self.redact(response.headers.get('Location', '?'))}"
        label = f" {title}" if title else ""
        label += f" ({code})" if code is not None else ""
        message = f"{service} answered {status}{label} to {method} {path}"
        return CfApiError(
            message + (f": {detail}" if detail else ""),
            status=status,
            code=code,
            title=title,
            detail=detail,
            request_id=response.headers.get("X-Vcap-Request-Id", ""),
            method=method,
            path=path,
            retry_after_s=_seconds(response.headers.get("Retry-After")),
        )

    def _unreachable(
        self, error: requests.RequestException, method: str, url: str, timeout: float
    ) -> CfUnreachable:
        parts = urlsplit(url)
        cause = _root_cause(error)
        cut = (
            f" (cut from {self.timeout_s:g}s to what was left before the run's deadline)"
            if timeout < self.timeout_s
            else ""
        )
        if isinstance(error, requests.exceptions.SSLError):
            why = "TLS handshake failed (is the server's CA trusted? a private CA: `cf-ca-cert`)"
        elif isinstance(error, requests.exceptions.ConnectTimeout):
            why = f"connecting timed out after {min(_CONNECT_TIMEOUT_S, timeout):.3g}s{cut}"
        elif isinstance(error, requests.exceptions.ReadTimeout) or isinstance(
            cause, TimeoutError
        ):  # after retries requests wraps a read timeout as a ConnectionError
            why = f"no answer within {timeout:.3g}s{cut}"
        elif isinstance(error, requests.exceptions.ConnectionError) and "aborted" in str(error):
            why = "the connection dropped before an answer"
            if method not in IDEMPOTENT_METHODS:
                why += f"; whether the {method} took effect is unknown"
        else:
            why = "connection failed"
        detail = self.redact(f"{type(cause).__name__}: {cause}")
        return CfUnreachable(
            f"cannot reach {parts.hostname}:{parts.port or 443} ({method} {parts.path}): "
            f"{why} [{detail}]. Check the URL, the proxy settings and `cf-ca-cert`."
        )
