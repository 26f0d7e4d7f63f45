"""Fault injection: the failures a rotation engine must survive, on demand.

A rule is a JSON object (`POST /_sandbox/faults`). Three kinds:
- HTTP rules, matched by `method` and `path` (a regex searched in the path, no query) on
  `server` ("cc" and "uaa" by default, or "cpi"): `status` (with an optional `body` and
  `headers`), `delay_s`, `drop_connection` (close the socket without answering; with
  `"after_apply": true` the server first applies the change, so the client cannot know
  whether its write happened);
- job rules: `{"job": "service_bindings.create", "fail": true, "detail": "..."}` makes the
  broker refuse; `"timeout": true` fails the job as CC's `handle_timeout` does; `"delay_s"`
  makes every broker answer for that job that much later (the job stays PROCESSING, or
  POLLING for an asynchronous broker);
- deployment rules: `{"deployment": "quota"}` (POST /v3/deployments answers the quota 422),
  `"cancel"` (the platform cancels the rollout after its first batch) or `"stall"` (new
  instances never become healthy, so the deployment stays DEPLOYING).
Every rule takes `after` (let that many matches pass first) and `times` (fire at most that
often; absent = always).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .web import Response

_HTTP_KEYS = {
    "method",
    "path",
    "server",
    "status",
    "body",
    "headers",
    "delay_s",
    "drop_connection",
    "after_apply",
}
_COMMON_KEYS = {"after", "times", "name"}
_JOB_KEYS = {"job", "fail", "timeout", "detail", "delay_s"}
_DEPLOYMENT_KEYS = {"deployment"}
_DEPLOYMENT_FAULTS = ("quota", "cancel", "stall")

# Default error bodies of injected statuses: CC's envelope with the code CC uses.
_CC_ERRORS = {
    400: (10005, "CF-BadQueryParameter", "The query parameter is invalid: injected"),
    401: (1000, "CF-InvalidAuthToken", "Invalid Auth Token"),
    403: (10003, "CF-NotAuthorized", "You are not authorized to perform the requested action"),
    404: (10000, "CF-NotFound", "Unknown request"),
    409: (60016, "CF-AsyncServiceInstanceOperationInProgress", "An operation is in progress"),
    422: (10008, "CF-UnprocessableEntity", "Injected by the sandbox"),
    429: (10013, "CF-RateLimitExceeded", "Rate Limit Exceeded"),
    502: (10001, "CF-ServerError", "An unknown error occurred."),
    503: (10015, "CF-ServiceUnavailable", "Service unavailable"),
}


@dataclass
class Rule:
    """One parsed rule with its counters."""

    spec: dict[str, Any]
    kind: str
    servers: tuple[str, ...] = ("cc", "uaa")
    method: str | None = None
    path: re.Pattern[str] | None = None
    matched: int = 0
    fired: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def take(self) -> bool:
        """Count one match; True when the rule fires for it (honours `after` and `times`)."""
        self.matched += 1
        if self.matched <= int(self.spec.get("after", 0)):
            return False
        times = self.spec.get("times")
        if times is not None and self.fired >= int(times):
            return False
        self.fired += 1
        return True

    def to_json(self) -> dict[str, Any]:
        """The rule as given, plus its counters."""
        return {**self.spec, "matched": self.matched, "fired": self.fired}


def parse_rule(spec: dict[str, Any]) -> Rule:
    """Validate a rule; raises ValueError naming the problem."""
    if not isinstance(spec, dict):
        raise ValueError("a fault rule is a JSON object")
    if "job" in spec:
        kind, allowed = "job", _JOB_KEYS
    elif "deployment" in spec:
        kind, allowed = "deployment", _DEPLOYMENT_KEYS
        if spec["deployment"] not in _DEPLOYMENT_FAULTS:
            raise ValueError(f"deployment faults are {', '.join(_DEPLOYMENT_FAULTS)}")
    else:
        kind, allowed = "http", _HTTP_KEYS
    unknown = sorted(set(spec) - allowed - _COMMON_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) for a {kind} rule: {', '.join(unknown)}")
    rule = Rule(spec=dict(spec), kind=kind)
    if kind == "http":
        server = spec.get("server")
        if server is not None:
            if server not in ("cc", "uaa", "cpi"):
                raise ValueError("server must be cc, uaa or cpi")
            rule.servers = (server,)
        rule.method = str(spec["method"]).upper() if spec.get("method") else None
        try:
            rule.path = re.compile(spec["path"]) if spec.get("path") else None
        except re.error as error:
            raise ValueError(f"path is not a regex: {error}") from error
        if not any(k in spec for k in ("status", "delay_s", "drop_connection")):
            raise ValueError("an http rule needs status, delay_s or drop_connection")
    return rule


@dataclass(frozen=True)
class HttpAction:
    """What the gateway must do to one request."""

    delay_s: float = 0.0
    drop_before: bool = False
    drop_after: bool = False
    response: Response | None = None


class Faults:
    """The active rules of one landscape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = []

    def add(self, spec: dict[str, Any]) -> None:
        """Add one rule (ValueError when invalid)."""
        rule = parse_rule(spec)
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def to_json(self) -> list[dict[str, Any]]:
        """The rules with their counters."""
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def http(self, server: str, method: str, path: str) -> HttpAction:
        """The combined action of every HTTP rule that fires for this request."""
        delay, drop_before, drop_after, response = 0.0, False, False, None
        with self._lock:
            for rule in self._rules:
                if rule.kind != "http" or server not in rule.servers:
                    continue
                if rule.method and rule.method != method:
                    continue
                if rule.path and not rule.path.search(path):
                    continue
                if not rule.take():
                    continue
                spec = rule.spec
                delay += float(spec.get("delay_s", 0))
                if spec.get("drop_connection"):
                    if spec.get("after_apply"):
                        drop_after = True
                    else:
                        drop_before = True
                if "status" in spec and response is None:
                    response = _injected_response(server, spec)
        return HttpAction(delay, drop_before, drop_after, response)

    def job(self, operation: str) -> dict[str, Any] | None:
        """The spec of the job rule that fires for this job's broker step, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.kind == "job" and rule.spec["job"] == operation and rule.take():
                    return rule.spec
        return None

    def deployment(self, fault: str) -> bool:
        """True when a deployment rule of this kind fires now."""
        with self._lock:
            for rule in self._rules:
                if rule.kind == "deployment" and rule.spec["deployment"] == fault and rule.take():
                    return True
        return False


def _injected_response(server: str, spec: dict[str, Any]) -> Response:
    status = int(spec["status"])
    headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
    if "body" in spec:
        return Response(status, spec["body"], headers)
    if server == "cpi":
        return Response(status, f"HTTP {status}: injected by the sandbox\n", headers)
    if server == "uaa":
        error = "unauthorized" if status == 401 else "server_error"
        return Response(
            status, {"error": error, "error_description": "Injected by the sandbox"}, headers
        )
    code, title, detail = _CC_ERRORS.get(
        status, (10001, "CF-ServerError", "An unknown error occurred.")
    )
    body = {"errors": [{"detail": detail, "title": title, "code": code}]}
    if status == 429:
        headers.setdefault("Retry-After", "1")
        return Response(status, body, headers, content_type="text/plain; charset=utf-8")
    return Response(status, body, headers)
