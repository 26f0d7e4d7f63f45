"""Step (5), test before promote: call the iFlow with the new chain and key over mTLS.

No certificate tool gates promotion on a live call; this one does (AWS Secrets Manager's
testSecret). The key is loaded into the TLS context from memory (`mtls`), never a file.
CPI may need a moment to learn a new binding, so an HTTP 401/403 (the handshake succeeded,
the tenant does not know the certificate yet) is retried until a bounded propagation
deadline. A TLS alert is final: the load balancer judged the chain itself (unknown CA, bad
or expired certificate), and no waiting changes that; a handshake cut off without an alert
is tried a few times (it may be the network), then final too. A wrong path (404) or another
non-retryable status fails at once.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from concurrent.futures import Future
from urllib.parse import urljoin

import requests

from .. import material
from ..cf import Binding
from ..errors import VerificationFailed
from ..mtls import mtls_session, ssl_context_with_client_cert
from .context import RunContext
from .observe import credentials_of

log = logging.getLogger(__name__)

VERIFY_BODY = b"cpi-cert-rotate: test before promote"
CALL_TIMEOUT_S = 15.0
RETRY_START_S = 0.25
RETRY_CAP_S = 5.0
RETRYABLE_STATUS = frozenset({401, 403, 429, 502, 503, 504})
"""401/403: CPI has not picked up the new binding yet; 5xx gateway codes: transient."""
TLS_CUT_ATTEMPTS = 3
"""A handshake that ended without an alert (EOF, reset) is tried this often in all."""

# What a TLS alert from CPI's load balancer means for the chain just presented. OpenSSL
# names the alert in the error's reason (`TLSV1_ALERT_UNKNOWN_CA`); RFC 8446 section 6.2.
_ALERTS = {
    "UNKNOWN_CA": "it does not know the CA that issued the chain: an intermediate is missing "
    "from the chain, or the root is not one Cloud Integration trusts (SAP Note 2801396)",
    "BAD_CERTIFICATE": "it found the client certificate or its chain malformed or its "
    "signature invalid",
    "UNSUPPORTED_CERTIFICATE": "it does not support the certificate's type or key usage",
    "CERTIFICATE_EXPIRED": "a certificate of the chain is expired or not yet valid",
    "CERTIFICATE_REVOKED": "a certificate of the chain is revoked",
    "CERTIFICATE_UNKNOWN": "it could not accept the certificate for an unnamed reason",
    "CERTIFICATE_REQUIRED": "no client certificate reached it",
    "DECRYPT_ERROR": "the handshake signature did not verify (does the key belong to the leaf?)",
    "HANDSHAKE_FAILURE": "it found no acceptable set of TLS parameters with this certificate",
    "ACCESS_DENIED": "it denied access to this certificate",
}


def prepare(ctx: RunContext) -> None:
    """Start building the test call's TLS context (the trust store and the new chain and
    key, through a memfd as always) in a thread: it takes about 0.1 s of CPU, which the
    set step's wait for the binding job hides."""
    if not (ctx.request.verify_url or ctx.request.verify_path):
        return
    future: Future[ssl.SSLContext] = Future()

    def build() -> None:
        try:
            future.set_result(
                ssl_context_with_client_cert(
                    ctx.env_chain, ctx.new_key, ca_pem=ctx.request.auth.ca_pem
                )
            )
        except Exception as error:  # the test step builds it again and reports it
            future.set_exception(error)

    threading.Thread(target=build, name="test-context", daemon=True).start()
    ctx.test_context = future


def _prepared(ctx: RunContext) -> ssl.SSLContext | None:
    if ctx.test_context is None:
        return None
    try:
        return ctx.test_context.result(timeout=CALL_TIMEOUT_S)
    except Exception:  # built again by `mtls_session`, which then reports the failure
        return None


def verification_url(ctx: RunContext, binding: Binding) -> str | None:
    """The URL to call: `verify-url` as given, else the binding's `oauth.url` + `verify-path`."""
    request = ctx.request
    if request.verify_url:
        return request.verify_url
    if not request.verify_path:
        return None
    base = credentials_of(ctx.client.binding_credentials(binding.guid)).url
    if not base:
        raise VerificationFailed(
            f"binding {binding.guid} has no `oauth.url` in its credentials, so `verify-path` "
            "cannot be resolved; give `verify-url` instead"
        )
    return urljoin(base.rstrip("/") + "/", request.verify_path.lstrip("/"))


def verify_new_certificate(ctx: RunContext, url: str) -> str:
    """POST to `url` with the new chain and key until 2xx, a final refusal or the deadline.

    Returns a short detail for the report; raises `VerificationFailed` saying what CPI
    refused and why (never key material) when it does not accept the certificate.
    """
    budget = min(ctx.request.verify_timeout_s, max(ctx.remaining(), 1.0))
    deadline = time.monotonic() + budget
    attempts = 0
    tls_cuts = 0
    last = "no attempt"
    wait = RETRY_START_S
    with mtls_session(
        ctx.env_chain, ctx.new_key, ca_pem=ctx.request.auth.ca_pem, context=_prepared(ctx)
    ) as session:
        while True:
            ctx.check_cancel()
            attempts += 1
            try:
                response = session.post(url, data=VERIFY_BODY, timeout=CALL_TIMEOUT_S)
            except requests.exceptions.SSLError as error:
                reason, text = _tls_reason(error)
                if reason is not None:
                    raise VerificationFailed(
                        _refused_in_handshake(ctx, url, reason, text)
                    ) from error
                tls_cuts += 1
                last = f"the TLS handshake was cut off ({text})"
                if tls_cuts >= TLS_CUT_ATTEMPTS:
                    raise VerificationFailed(
                        f"Cloud Integration did not complete a TLS handshake with the new "
                        f"certificate: POST {url}: {last}, {tls_cuts} times. "
                        f"{_presented(ctx)} Nothing was promoted."
                    ) from error
            except requests.exceptions.RequestException as error:
                last = f"connection failed ({_short(error)})"
            else:
                if 200 <= response.status_code < 300:
                    return f"POST {url} -> {response.status_code} after {attempts} attempt(s)"
                last = f"HTTP {response.status_code}"
                if response.status_code not in RETRYABLE_STATUS:
                    break
            if time.monotonic() + wait > deadline:
                break
            log.info("verification attempt %d: %s; retrying in %.1fs", attempts, last, wait)
            time.sleep(wait)
            wait = min(wait * 2, RETRY_CAP_S)
    raise VerificationFailed(
        f"Cloud Integration did not accept the new certificate: POST {url} gave {last} "
        f"after {attempts} attempt(s) in {budget:.0f}s"
    )


def _tls_reason(error: requests.exceptions.SSLError) -> tuple[str | None, str]:
    """(the alert's or the local verify failure's name, a short text) of a TLS error.

    The name is None when the handshake was cut off without one (EOF, reset), which may
    be the network rather than a verdict.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError) and not isinstance(
            current, ssl.SSLEOFError | ssl.SSLZeroReturnError
        ):
            reason = str(getattr(current, "reason", "") or "")
            text = _short(current)
            if "ALERT" in reason or reason == "CERTIFICATE_VERIFY_FAILED":
                return reason, text
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = current.args[0] if current.args else None
        if not isinstance(inner, BaseException):
            inner = current.__cause__ or current.__context__
        current = inner if isinstance(inner, BaseException) else None
    return None, _short(error)


def _refused_in_handshake(ctx: RunContext, url: str, reason: str, text: str) -> str:
    """What was refused, by whom and why, for a handshake that ended with a verdict."""
    if reason == "CERTIFICATE_VERIFY_FAILED":
        return (
            f"the iFlow host's own server certificate is not trusted here ({text}): POST {url} "
            "never reached Cloud Integration; give its CA with `cf-ca-cert` (`--cf-ca-cert`). "
            "Nothing was promoted."
        )
    meaning = next(
        (why for alert, why in _ALERTS.items() if reason.endswith(alert)),
        "it refused the certificate",
    )
    return (
        f"Cloud Integration refused the new certificate in the TLS handshake (alert "
        f"{reason}: {text}): {meaning}. {_presented(ctx)} This does not change by waiting, "
        "so it was not retried; nothing was promoted."
    )


def _presented(ctx: RunContext) -> str:
    """The chain that was presented, in words (public facts only)."""
    chain = material.load_chain(ctx.env_chain)
    leaf = chain[0]
    issuers = "; ".join(c.subject.rfc4514_string() for c in chain[1:]) or "none"
    return (
        f"Presented: the leaf {leaf.subject.rfc4514_string()} (issued by "
        f"{leaf.issuer.rfc4514_string()}) with {len(chain) - 1} CA certificate(s): {issuers}."
    )


def _short(error: BaseException) -> str:
    """The innermost reason of a requests error, without the noisy wrapper text."""
    text = str(error)
    for marker in ("SSLError(", "NewConnectionError(", "Caused by "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text[:200]
