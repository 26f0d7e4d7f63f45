"""The Cloud Integration iFlow endpoint: real mTLS, then CPI's certificate rules per request.

TLS (a `CERT_REQUIRED` server context trusting only the trusted root) plays SAP's load
balancer: the client must send leaf + intermediates that verify to a root it trusts.
Then, for *every request* (keep-alive connections are re-checked, because a binding can
go away while a connection stays open), the tenant looks up the leaf among the live
bindings and service keys of it-rt instances (SAP-docs/btp-integration-suite
`docs/ISuite/40-RemoteSystems/client-certificate-authentication-inbound-4ec6192.md`,
`load-balancer-root-certificates-supported-by-sap-4509f60.md`, and the pinning rules of
`specifying-service-instance-and-service-key-parameters-in-json-format-ae419b6.md`):
- pinning on: the exact certificate must be registered;
- pinning off: only subject DN + issuer DN are compared, a renewal must not be older than
  the registered certificate, and once a newer certificate was used the older ones are
  refused;
- more than one registration matching -> 401 "Multiple clones found for certificate"
  (KBA 3364579);
- a registration counts only `cpi_propagation_s` after the broker took it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from .broker import IT_RT
from .faults import Faults
from .pki import sha256_hex
from .state import Binding, Store, iso, now
from .web import DROP, Request, Response

# A long-running sandbox under a probe must not grow without bound (20 rps = 72k/hour).
_MAX_CALLS = 100_000


@dataclass(frozen=True)
class Verdict:
    """Whether a presented leaf may call, and why not."""

    ok: bool
    reason: str
    registration: str | None = None


def _live(binding: Binding) -> bool:
    """Registered at the broker: created and not being (successfully) deleted."""
    if binding.leaf_der is None:
        return False
    op = binding.last_operation
    return (op.type, op.state) in (("create", "succeeded"), ("delete", "failed"))


class Cpi:
    """Authorizes callers and answers iFlow calls."""

    def __init__(self, store: Store, faults: Faults, stopping: threading.Event) -> None:
        self._store = store
        self._faults = faults
        self._stopping = stopping
        self._lock = threading.Lock()
        self._newest_used: dict[tuple[str, str], Any] = {}
        self._calls: deque[dict[str, Any]] = deque(maxlen=_MAX_CALLS)
        self._t0 = time.monotonic()

    def authorize(self, der: bytes) -> Verdict:
        """Apply the tenant's rules to a presented leaf (DER)."""
        leaf = x509.load_der_x509_certificate(der)
        dns = (leaf.subject.rfc4514_string(), leaf.issuer.rfc4514_string())
        propagation = self._store.options.cpi_propagation_s
        matches: list[Binding] = []
        pending = False
        with self._store.lock:
            for b in self._store.bindings.values():
                if not _live(b) or not self._it_rt(b):
                    continue
                assert b.leaf_der is not None
                if b.pinning:
                    hit = b.leaf_der == der
                else:
                    registered = x509.load_der_x509_certificate(b.leaf_der)
                    hit = (
                        registered.subject.rfc4514_string(),
                        registered.issuer.rfc4514_string(),
                    ) == dns and (leaf.not_valid_before_utc >= registered.not_valid_before_utc)
                if not hit:
                    continue
                if time.monotonic() - (b.registered_at or 0.0) < propagation:
                    pending = True
                    continue
                matches.append(b)
        if not matches:
            why = "not yet propagated" if pending else "no service key or binding holds it"
            return Verdict(False, f"certificate not registered ({why})")
        if len(matches) > 1:
            return Verdict(False, "Multiple clones found for certificate")
        match = matches[0]
        if not match.pinning:
            issued = leaf.not_valid_before_utc
            with self._lock:
                newest = self._newest_used.get(dns)
                if newest is not None and issued < newest:
                    return Verdict(
                        False,
                        "a newer certificate with the same subject and issuer was already used",
                    )
                self._newest_used[dns] = issued
        return Verdict(True, "ok", match.guid)

    def _it_rt(self, binding: Binding) -> bool:
        si = self._store.instances.get(binding.service_instance_guid)
        offering = self._store.offering_of(si) if si else None
        return offering is not None and offering.label == IT_RT

    def __call__(self, req: Request) -> Response:
        """The CPI server's request pipeline."""
        action = self._faults.http("cpi", req.method, req.path)
        if action.delay_s:
            self._stopping.wait(action.delay_s)
        if action.drop_before or action.drop_after:
            self._record(req, None, "dropped")
            return DROP
        if action.response is not None:
            self._record(req, action.response.status, "injected")
            return action.response
        if not req.path.startswith("/http/"):
            self._record(req, 404, "no such endpoint")
            return Response(404, "Not Found\n")
        if req.peer_cert_der is None:
            self._record(req, 401, "no client certificate")
            return _unauthorized("no client certificate")
        verdict = self.authorize(req.peer_cert_der)
        if not verdict.ok:
            self._record(req, 401, verdict.reason, req.peer_cert_der)
            return _unauthorized(verdict.reason)
        self._record(req, 200, "ok", req.peer_cert_der)
        content_type = req.headers.get("Content-Type") or "application/octet-stream"
        return Response(
            200, req.body, {"SAP_MessageProcessingLogID": _mpl_id()}, content_type=content_type
        )

    def _record(
        self, req: Request, status: int | None, reason: str, der: bytes | None = None
    ) -> None:
        leaf = sha256_hex(x509.load_der_x509_certificate(der)) if der else None
        entry = {
            "method": req.method,
            "path": req.path,
            "status": status,
            "reason": reason,
            "leaf_sha256": leaf,
            "time": iso(now()),
            "t": round(time.monotonic() - self._t0, 4),
        }
        with self._lock:
            self._calls.append(entry)

    def calls(self) -> list[dict[str, Any]]:
        """Every iFlow call: status, reason, presented leaf fingerprint."""
        with self._lock:
            return list(self._calls)


def _unauthorized(reason: str) -> Response:
    # CPI answers 401 with an HTML error page; the reason header helps people debugging.
    body = (
        "<html><head><title>Error report</title></head><body>"
        "<h1>HTTP Status 401 - Unauthorized</h1></body></html>"
    )
    return Response(401, body, {"X-Sandbox-Reason": reason}, content_type="text/html")


def _mpl_id() -> str:
    return f"AG{int(time.time() * 1000):x}".upper()
