"""Step 4, test before promote: call the iFlow with the new chain and key over mTLS.

No certificate tool gates promotion on a live call; this one does (AWS Secrets Manager's
testSecret). The key is loaded into the TLS context from memory (`mtls`), never a file.
CPI may need a moment to learn a new binding, so refusals are retried until a bounded
propagation deadline; a wrong path (404) or a server error fails at once.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urljoin

import requests

from ..cf import Binding
from ..errors import VerificationFailed
from ..mtls import mtls_session
from .context import RunContext
from .observe import credentials_of

log = logging.getLogger(__name__)

VERIFY_BODY = b"cpi-cert-rotate: test before promote"
CALL_TIMEOUT_S = 15.0
RETRY_START_S = 0.25
RETRY_CAP_S = 5.0
RETRYABLE_STATUS = frozenset({401, 403, 429, 502, 503, 504})
"""401/403: CPI has not picked up the new binding yet; 5xx gateway codes: transient."""


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
    """POST to `url` with the new chain and key until 2xx or the verify deadline.

    Returns a short detail for the report; raises `VerificationFailed` with the last
    status or TLS error (never key material) when CPI does not accept the certificate.
    """
    budget = min(ctx.request.verify_timeout_s, max(ctx.remaining(), 1.0))
    deadline = time.monotonic() + budget
    attempts = 0
    last = "no attempt"
    wait = RETRY_START_S
    with mtls_session(ctx.env_chain, ctx.new_key, ca_pem=ctx.request.auth.ca_pem) as session:
        while True:
            ctx.check_cancel()
            attempts += 1
            try:
                response = session.post(url, data=VERIFY_BODY, timeout=CALL_TIMEOUT_S)
            except requests.exceptions.SSLError as error:
                last = f"TLS handshake failed ({_short(error)})"
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


def _short(error: Exception) -> str:
    """The innermost reason of a requests error, without the noisy wrapper text."""
    text = str(error)
    for marker in ("SSLError(", "NewConnectionError(", "Caused by "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text[:200]
