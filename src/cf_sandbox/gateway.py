"""What stands in front of the CC and UAA routes: faults, auth, rate limits, the call log.

Order per request, as on a real landscape: injected network faults first (they happen
before CC sees anything), then routing (unknown routes are 404 even without a token),
then the token check, then the rate limiter, then the handler. Every CC/UAA call is
recorded; the sandbox's own `/_sandbox/*` control routes are not. The rate limiter is
cloud_controller_ng's `middleware/rate_limiter.rb` and `base_rate_limiter.rb` (per user,
fixed windows, `X-RateLimit-*` headers, a JSON body labelled text/plain); a missing or bad
token is CC's 10002/1000 (`errors/v2.yml`); each CC answer carries an `X-Vcap-Request-Id`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from typing import Any

from .faults import Faults
from .state import Store, iso, now
from .uaa import TokenIssuer
from .web import DROP, ApiError, Request, Response, Router, server_error

log = logging.getLogger(__name__)


class CallLog:
    """Every CC/UAA call in order of its end: server, method, path, query, status, time;
    `t_start` and `t` are seconds since the log began when the call arrived and when it
    was answered (so tests can count calls in flight at once); `body_keys` the top-level
    keys of a JSON object body (never its values: they may hold a certificate or a key),
    which CC's `NoAdditionalKeysValidator` checks (cloud_controller_ng
    `app/messages/base_message.rb`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        self._t0 = time.monotonic()

    def clock(self) -> float:
        """Seconds since the log began (the `t` of an entry)."""
        return round(time.monotonic() - self._t0, 4)

    def record(
        self, req: Request, status: int | None, started: float | None = None, **extra: Any
    ) -> None:
        """Append one call (`status` None: the connection was dropped); `started` is
        `clock()` when it arrived."""
        entry = {
            "server": req.server,
            "method": req.method,
            "path": req.path,
            "query": req.query_string,
            "status": status,
            "time": iso(now()),
            "t": self.clock(),
            "t_start": started,
            **_body_keys(req.body),
            **extra,
        }
        with self._lock:
            self._calls.append(entry)

    def to_json(self) -> list[dict[str, Any]]:
        """A copy of the log."""
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        """Forget every call."""
        with self._lock:
            self._calls.clear()


class RateLimiter:
    """CC's general per-user limit over fixed windows (`middleware/rate_limiter.rb`)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._window_start = time.time()
        self._counts: dict[str, int] = {}

    def check(self, user: str) -> tuple[dict[str, str], Response | None]:
        """Headers for this call, and the 429 response when the user is over the limit."""
        limit = self._store.options.rate_limit
        if limit is None:
            return {}, None
        window = self._store.options.rate_limit_window_s
        with self._lock:
            current = time.time()
            if current - self._window_start >= window:
                self._window_start, self._counts = current, {}
            count = self._counts.get(user, 0) + 1
            self._counts[user] = count
            reset = self._window_start + window
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Reset": str(math.ceil(reset)),
            "X-RateLimit-Remaining": str(max(limit - count, 0)),
        }
        if count <= limit:
            return headers, None
        retry = max(math.ceil(reset - current), 1)
        body = {
            "errors": [
                {"detail": "Rate Limit Exceeded", "title": "CF-RateLimitExceeded", "code": 10013}
            ]
        }
        # CC's quirk (middleware/base_rate_limiter.rb): a JSON body labelled text/plain.
        resp = Response(
            429,
            body,
            {**headers, "Retry-After": str(retry)},
            content_type="text/plain; charset=utf-8",
        )
        return headers, resp


class Gateway:
    """The request pipeline of one server (CC or UAA)."""

    def __init__(
        self,
        name: str,
        router: Router,
        *,
        faults: Faults,
        calls: CallLog,
        issuer: TokenIssuer | None,
        limiter: RateLimiter | None,
        stopping: threading.Event,
        control: Router | None = None,
    ) -> None:
        self.name = name
        self.router = router
        self.faults = faults
        self.calls = calls
        self.issuer = issuer
        self.limiter = limiter
        self.stopping = stopping
        self.control = control

    def __call__(self, req: Request) -> Response:
        if self.control is not None and req.path.startswith("/_sandbox/"):
            return self._run(self.control, req)
        started = self.calls.clock()
        action = self.faults.http(self.name, req.method, req.path)
        if action.delay_s:
            self.stopping.wait(action.delay_s)
        if action.drop_before:
            self.calls.record(req, None, started, dropped=True)
            return DROP
        if action.response is not None:
            self.calls.record(req, action.response.status, started, injected=True)
            return action.response
        resp = self._run(self.router, req)
        if action.drop_after:
            self.calls.record(req, None, started, dropped=True, applied=resp.status)
            return DROP
        self.calls.record(req, resp.status, started)
        return resp

    def _run(self, router: Router, req: Request) -> Response:
        headers: dict[str, str] = {}
        if self.name == "cc":
            headers["X-Vcap-Request-Id"] = str(uuid.uuid4())
        try:
            route, args = router.match(req.method, req.path)
            if route.auth:
                req.claims = self._authenticate(req)
                if self.limiter is not None:
                    limit_headers, refusal = self.limiter.check(_user_of(req.claims))
                    headers.update(limit_headers)
                    if refusal is not None:
                        refusal.headers.update(headers)
                        return refusal
            resp = route.handler(req, **args)
        except ApiError as error:
            resp = error.response()
        except Exception:
            log.exception("%s %s %s failed", self.name, req.method, req.path)
            resp = server_error().response()
        resp.headers = {**headers, **resp.headers}
        return resp

    def _authenticate(self, req: Request) -> dict[str, Any]:
        header = req.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if not header:
            raise ApiError(401, 10002, "CF-NotAuthenticated", "Authentication error")
        claims = self.issuer.decode(token.strip()) if self.issuer else None
        if scheme.lower() != "bearer" or claims is None:
            raise ApiError(401, 1000, "CF-InvalidAuthToken", "Invalid Auth Token")
        return claims


def _body_keys(body: bytes) -> dict[str, list[str]]:
    """`{"body_keys": [...]}` for a JSON object body, else nothing."""
    try:
        parsed = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        return {}
    return {"body_keys": sorted(parsed)} if isinstance(parsed, dict) else {}


def _user_of(claims: dict[str, Any] | None) -> str:
    claims = claims or {}
    return str(claims.get("user_id") or claims.get("client_id") or "anonymous")
