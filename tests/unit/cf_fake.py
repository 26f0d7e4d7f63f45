"""Loopback HTTPS servers for the CF client and mTLS tests.

`HttpsServer` is a real `ThreadingHTTPServer` on 127.0.0.1:0 behind TLS (keep-alive, so
connection reuse is exercised) whose key is loaded through a memfd like the product's.
`FakeCf` is a small *stateful* Cloud Controller + UAA with the shapes and error texts of
reference/cf-api-v3.md: tokens that expire, pagination, bindings with async jobs,
environment variables, annotations, deployments and the restage calls. Faults are
scripted per method and path (`fake.fail(...)`), and every call is recorded.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import trustme
from cryptography.hazmat.primitives import serialization

from cpi_cert_rotate.mtls import load_chain_in_memory

USERNAME = "tech-user@example.com"
PASSWORD = "pa55-w0rd-Sup3r-s3cret"
CLIENT_ID = "rotator-client"
CLIENT_SECRET = "client-s3cret-Value-42"
ORIGIN = "corp-idp"


@dataclass
class Reply:
    """What a handler answers; `drop` closes the connection without any answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass
class Call:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float
    peer_cn: str | None = None
    """The client certificate's common name, when the client presented one (mTLS)."""


def leaf_context(leaf: trustme.LeafCert, purpose: int = ssl.PROTOCOL_TLS_SERVER) -> ssl.SSLContext:
    """A context presenting `leaf`, its key loaded through a memfd (no temp file)."""
    context = ssl.SSLContext(purpose)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    chain = "".join(blob.bytes().decode() for blob in leaf.cert_chain_pems)
    load_chain_in_memory(context, chain, key)  # type: ignore[arg-type]
    return context


class HttpsServer:
    """A threaded HTTPS server on loopback calling `handle(method, path, query, headers, body)`."""

    def __init__(
        self, context: ssl.SSLContext, handle: Callable[[Call], Reply], *, keep_alive: bool = True
    ) -> None:
        self.calls: list[Call] = []
        self.errors: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                call = Call(
                    self.command, parts.path, query, dict(self.headers.items()), body, time.time()
                )
                peer = self.connection.getpeercert() or {}
                for rdn in peer.get("subject", ()):
                    for key, value in rdn:
                        if key == "commonName":
                            call.peer_cn = value
                outer.calls.append(call)
                reply = handle(call)
                if reply.drop:
                    self.close_connection = True
                    return
                raw = b""
                if isinstance(reply.body, bytes):
                    raw = reply.body
                elif reply.body is not None:
                    raw = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[Any, Any]:
                sock, addr = self.socket.accept()
                # Handshake in the handler thread, so a failing client cannot stall accept().
                return context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                ), addr

            def handle_error(self, request: Any, client_address: Any) -> None:
                import sys

                outer.errors.append(repr(sys.exc_info()[1]))

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _jwt(claims: dict[str, Any]) -> str:
    def enc(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    sig = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"{enc({'alg': 'RS256', 'typ': 'JWT'})}.{enc(claims)}.{sig}"


def error_body(status: int, title: str, code: int, detail: str) -> Reply:
    return Reply(status, {"errors": [{"detail": detail, "title": title, "code": code}]})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeCf:
    """A stateful CC v3 + UAA on one loopback port (UAA under `links.login` = same origin)."""

    def __init__(
        self,
        ca: trustme.CA,
        *,
        version: str = "3.205.0",
        token_ttl: float = 600.0,
        job_states: tuple[str, ...] = ("PROCESSING", "POLLING", "COMPLETE"),
        deployment_polls: int = 2,
        keep_alive: bool = True,
    ) -> None:
        self.version = version
        self.token_ttl = token_ttl
        self.job_states = job_states
        self.deployment_polls = deployment_polls
        self.lock = threading.RLock()
        self.tokens: dict[str, float] = {}  # access token -> expiry (server clock)
        self.refresh_tokens: set[str] = set()
        self.issued: list[str] = []  # every token value, to assert none leaks
        self.faults: list[tuple[str, re.Pattern[str], list[Reply]]] = []
        self.bind_failure: str | None = None  # the broker error of the next bind job
        self.job_warnings: list[str] = []
        self.header_warnings: list[str] = []
        self._ids = itertools.count(1)
        self.orgs = [{"guid": "org-1", "name": "acme"}]
        self.spaces = [{"guid": "space-1", "name": "prod", "org": "org-1"}]
        self.apps: dict[str, dict[str, Any]] = {
            "app-1": {
                "guid": "app-1",
                "name": "orders",
                "state": "STARTED",
                "space": "space-1",
                "annotations": {},
                "labels": {},
                "droplet": "droplet-1",
            },
        }
        self.env: dict[str, dict[str, str]] = {"app-1": {"CLI_CHAIN": "old-chain"}}
        self.instances = [
            {"guid": "si-1", "name": "CPI-Runtime", "type": "managed", "space": "space-1"},
        ]
        self.bindings: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.builds: dict[str, dict[str, Any]] = {}
        self.server = HttpsServer(
            leaf_context(ca.issue_cert("127.0.0.1")), self._dispatch, keep_alive=keep_alive
        )
        self.url = self.server.url
        self.calls = self.server.calls

    def close(self) -> None:
        self.server.close()

    # -- test controls -----------------------------------------------------------------

    def fail(self, method: str, path: str, *replies: Reply) -> None:
        """Answer the next calls matching `method` + `path` (regex) with `replies`, in order."""
        self.faults.append((method, re.compile(path), list(replies)))

    def revoke_tokens(self, *, refresh_too: bool = False) -> None:
        with self.lock:
            self.tokens.clear()
            if refresh_too:
                self.refresh_tokens.clear()

    def count(self, method: str, path: str) -> int:
        return sum(1 for c in self.calls if c.method == method and re.fullmatch(path, c.path))

    def add_binding(self, app: str = "app-1", si: str = "si-1", name: str | None = "cpi") -> str:
        guid = f"binding-{next(self._ids)}"
        self.bindings[guid] = {
            "guid": guid,
            "name": name,
            "app": app,
            "si": si,
            "type": "create",
            "state": "succeeded",
            "created_at": f"2024-01-01T00:00:{len(self.bindings):02d}Z",
            "credentials": {"oauth": {"url": "https://cpi.example", "clientid": guid}},
        }
        return guid

    # -- dispatch ------------------------------------------------------------------------

    def _dispatch(self, call: Call) -> Reply:
        with self.lock:
            for method, pattern, replies in self.faults:
                if replies and method == call.method and pattern.fullmatch(call.path):
                    return replies.pop(0)
            if call.path == "/oauth/token":
                return self._token(call)
            if call.path == "/":
                return self._root()
            if not self._authorised(call):
                return error_body(401, "CF-InvalidAuthToken", 1000, "Invalid Auth Token")
            reply = self._route(call)
            if self.header_warnings:
                warnings = ",".join(quote_plus(w) for w in self.header_warnings)
                reply.headers["X-Cf-Warnings"] = warnings
            reply.headers.setdefault("X-Vcap-Request-Id", f"req-{len(self.calls)}")
            return reply

    def _root(self) -> Reply:
        url = self.url
        return Reply(
            body={
                "links": {
                    "self": {"href": url},
                    "cloud_controller_v3": {"href": f"{url}/v3", "meta": {"version": self.version}},
                    "login": {"href": url},
                    "uaa": {"href": url},
                    "credhub": None,
                }
            }
        )

    def _authorised(self, call: Call) -> bool:
        header = call.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        return self.tokens.get(token, 0) > time.time()

    def _issue(self, refresh: bool) -> Reply:
        now = time.time()
        access = _jwt({"iat": int(now), "exp": int(now + self.token_ttl), "jti": uuid.uuid4().hex})
        self.tokens[access] = now + self.token_ttl
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(self.token_ttl),
            "jti": "x",
        }
        self.issued.append(access)
        if refresh:
            token = secrets.token_urlsafe(24) + "-r"
            self.refresh_tokens.add(token)
            self.issued.append(token)
            body["refresh_token"] = token
        return Reply(body=body)

    def _token(self, call: Call) -> Reply:
        form = {k: v[-1] for k, v in parse_qs(call.body.decode()).items()}
        basic = call.headers.get("Authorization", "")
        cf_client = basic == "Basic " + base64.b64encode(b"cf:").decode()
        bad = Reply(401, {"error": "unauthorized", "error_description": "Bad credentials"})
        grant = form.get("grant_type")
        if call.query:
            return Reply(406, {"error": "query_string_not_allowed"})
        if grant == "password":
            hint = json.loads(form.get("login_hint", "{}")).get("origin", "")
            if not cf_client or hint not in ("", ORIGIN):
                return bad
            if form.get("username") != USERNAME or form.get("password") != PASSWORD:
                return bad
            return self._issue(refresh=True)
        if grant == "client_credentials":
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return Reply(
                    401, {"error": "invalid_client", "error_description": "Bad credentials"}
                )
            return self._issue(refresh=False)
        if grant == "refresh_token":
            if not cf_client or form.get("refresh_token") not in self.refresh_tokens:
                return Reply(401, {"error": "invalid_token", "error_description": "expired"})
            return self._issue(refresh=True)
        return Reply(400, {"error": "unsupported_grant_type"})

    # -- Cloud Controller ------------------------------------------------------------------

    def _route(self, call: Call) -> Reply:
        p, m, q = call.path, call.method, call.query
        body = json.loads(call.body) if call.body else {}
        if m == "GET" and p == "/v3/organizations":
            return self._page(call, [o for o in self.orgs if _names(q, o["name"])])
        if m == "GET" and p == "/v3/spaces":
            found = [
                s
                for s in self.spaces
                if _names(q, s["name"])
                and s["org"] in q.get("organization_guids", s["org"]).split(",")
            ]
            return self._page(call, [self._space(s) for s in found])
        if m == "GET" and p == "/v3/apps":
            found = [
                a
                for a in self.apps.values()
                if _names(q, a["name"])
                and a["space"] in q.get("space_guids", a["space"]).split(",")
            ]
            return self._page(call, [self._app(a) for a in found])
        if m == "GET" and p == "/v3/service_instances":
            found = [
                s
                for s in self.instances
                if q.get("names") in (None, s["name"])
                and s["space"] in q.get("space_guids", s["space"]).split(",")
            ]
            return self._page(call, [self._instance(s) for s in found])
        if match := re.fullmatch(r"/v3/apps/([^/]+)", p):
            app = self.apps.get(match[1])
            if app is None:
                return error_body(404, "CF-ResourceNotFound", 10010, "App not found")
            if m == "PATCH":
                for k, v in body.get("metadata", {}).get("annotations", {}).items():
                    app["annotations"].pop(k, None) if v is None else app["annotations"].update(
                        {k: v}
                    )
            return Reply(body=self._app(app))
        if match := re.fullmatch(r"/v3/apps/([^/]+)/environment_variables", p):
            env = self.env.setdefault(match[1], {})
            if m == "PATCH":
                for k, v in body["var"].items():
                    if v is not None and not isinstance(v, str):
                        return error_body(
                            422,
                            "CF-UnprocessableEntity",
                            10008,
                            f"Non-string value in environment variable for key '{k}', value '{v}'",
                        )
                    env.pop(k, None) if v is None else env.update({k: v})
            return Reply(body={"var": dict(env), "links": {}})
        if match := re.fullmatch(r"/v3/apps/([^/]+)/actions/(stop|start)", p):
            app = self.apps[match[1]]
            app["state"] = "STOPPED" if match[2] == "stop" else "STARTED"
            return Reply(body=self._app(app))
        if match := re.fullmatch(r"/v3/apps/([^/]+)/relationships/current_droplet", p):
            self.apps[match[1]]["droplet"] = body["data"]["guid"]
            return Reply(body={"data": body["data"]})
        if match := re.fullmatch(r"/v3/apps/([^/]+)/processes/web/stats", p):
            state = "RUNNING" if self.apps[match[1]]["state"] == "STARTED" else "DOWN"
            return Reply(body={"resources": [{"index": 0, "state": state}]})
        if p == "/v3/service_credential_bindings":
            return self._create_binding(body) if m == "POST" else self._list_bindings(call)
        if match := re.fullmatch(r"/v3/service_credential_bindings/([^/]+)(/details)?", p):
            return self._binding(m, match[1], bool(match[2]))
        if match := re.fullmatch(r"/v3/jobs/([^/]+)", p):
            return self._job(match[1])
        if p == "/v3/deployments" and m == "POST":
            guid = f"deployment-{next(self._ids)}"
            self.deployments[guid] = {
                "guid": guid,
                "polls": 0,
                "state": "ACTIVE",
                "reason": "DEPLOYING",
                "app": body["relationships"]["app"]["data"]["guid"],
                "body": body,
            }
            return Reply(201, self._deployment(self.deployments[guid]))
        if match := re.fullmatch(r"/v3/deployments/([^/]+)(/actions/cancel)?", p):
            dep = self.deployments[match[1]]
            if match[2]:
                if dep["state"] == "FINALIZED":
                    return error_body(
                        422, "CF-UnprocessableEntity", 10008, "Cannot cancel a DEPLOYED deployment"
                    )
                dep.update(state="FINALIZED", reason="CANCELED")
                return Reply(body=self._deployment(dep))
            dep["polls"] += 1
            if dep["state"] == "ACTIVE" and dep["polls"] >= self.deployment_polls:
                dep.update(state="FINALIZED", reason="DEPLOYED")
            return Reply(body=self._deployment(dep))
        if p == "/v3/packages":
            return self._page(call, [{"guid": "package-1", "state": "READY", "type": "bits"}])
        if p == "/v3/builds" and m == "POST":
            guid = f"build-{next(self._ids)}"
            self.builds[guid] = {"guid": guid, "polls": 0}
            return Reply(201, {"guid": guid, "state": "STAGING", "droplet": None, "error": None})
        if match := re.fullmatch(r"/v3/builds/([^/]+)", p):
            build = self.builds[match[1]]
            build["polls"] += 1
            done = build["polls"] >= 2
            return Reply(
                body={
                    "guid": build["guid"],
                    "state": "STAGED" if done else "STAGING",
                    "droplet": {"guid": "droplet-2"} if done else None,
                    "error": None,
                }
            )
        return error_body(404, "CF-NotFound", 10000, "Unknown request")

    def _page(self, call: Call, items: list[dict[str, Any]]) -> Reply:
        per_page = int(call.query.get("per_page", 50))
        page = int(call.query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        pages = max(1, -(-len(items) // per_page))
        query = {k: v for k, v in call.query.items() if k != "page"}

        def link(n: int) -> dict[str, str]:
            # Another host name on purpose: the client must re-root links on its API URL.
            args = "&".join(f"{k}={v}" for k, v in {**query, "page": n}.items())
            return {"href": f"https://api.elsewhere.example{call.path}?{args}"}

        return Reply(
            body={
                "pagination": {
                    "total_results": len(items),
                    "total_pages": pages,
                    "first": link(1),
                    "last": link(pages),
                    "next": link(page + 1) if page < pages else None,
                    "previous": link(page - 1) if page > 1 else None,
                },
                "resources": chunk,
            }
        )

    def _space(self, s: dict[str, Any]) -> dict[str, Any]:
        return {
            "guid": s["guid"],
            "name": s["name"],
            "relationships": {"organization": {"data": {"guid": s["org"]}}},
        }

    def _app(self, a: dict[str, Any]) -> dict[str, Any]:
        return {
            "guid": a["guid"],
            "name": a["name"],
            "state": a["state"],
            "created_at": "2024-01-01T00:00:00Z",
            "relationships": {"space": {"data": {"guid": a["space"]}}},
            "metadata": {"labels": dict(a["labels"]), "annotations": dict(a["annotations"])},
            "links": {},
        }

    def _instance(self, s: dict[str, Any]) -> dict[str, Any]:
        return {
            "guid": s["guid"],
            "name": s["name"],
            "type": s["type"],
            "last_operation": {"type": "create", "state": "succeeded"},
            "relationships": {
                "space": {"data": {"guid": s["space"]}},
                "service_plan": {"data": {"guid": "plan-1"}},
            },
        }

    def _binding_json(self, b: dict[str, Any]) -> dict[str, Any]:
        return {
            "guid": b["guid"],
            "name": b["name"],
            "type": "app",
            "created_at": b["created_at"],
            "last_operation": {
                "type": b["type"],
                "state": b["state"],
                "description": b.get("description"),
            },
            "metadata": {"labels": {}, "annotations": {}},
            "relationships": {
                "app": {"data": {"guid": b["app"]}},
                "service_instance": {"data": {"guid": b["si"]}},
            },
        }

    def _list_bindings(self, call: Call) -> Reply:
        q = call.query
        found = [
            b
            for b in self.bindings.values()
            if b["app"] in q.get("app_guids", b["app"]).split(",")
            and b["si"] in q.get("service_instance_guids", b["si"]).split(",")
        ]
        found.sort(key=lambda b: b["created_at"])
        return self._page(call, [self._binding_json(b) for b in found])

    def _create_binding(self, body: dict[str, Any]) -> Reply:
        app = body["relationships"]["app"]["data"]["guid"]
        si = body["relationships"]["service_instance"]["data"]["guid"]
        if "strategy" in body and self.version < "3.205.0":
            return error_body(422, "CF-UnprocessableEntity", 10008, "Unknown field(s): 'strategy'")
        live = [b for b in self.bindings.values() if b["app"] == app and b["si"] == si]
        if live and body.get("strategy") != "multiple":
            return error_body(
                422,
                "CF-UnprocessableEntity",
                10008,
                "The app is already bound to the service instance",
            )
        guid = self.add_binding(app, si, body.get("name"))
        self.bindings[guid].update(
            state="initial",
            created_at=_now().replace("Z", f".{len(self.bindings):03d}Z"),
            parameters=body.get("parameters"),
        )
        return Reply(
            202, headers={"Location": f"{self.url}/v3/jobs/{self._job_for(guid, 'create')}"}
        )

    def _job_for(self, binding: str, operation: str) -> str:
        guid = f"job-{next(self._ids)}"
        failure = self.bind_failure if operation == "create" else None
        self.bind_failure = None
        self.jobs[guid] = {
            "guid": guid,
            "binding": binding,
            "operation": operation,
            "polls": 0,
            "failure": failure,
        }
        return guid

    def _binding(self, method: str, guid: str, details: bool) -> Reply:
        binding = self.bindings.get(guid)
        if binding is None:
            return error_body(
                404, "CF-ResourceNotFound", 10010, "Service credential binding not found"
            )
        if method == "DELETE":
            if binding["state"] in ("initial", "in progress"):
                return error_body(
                    422,
                    "CF-UnprocessableEntity",
                    10008,
                    "There is an operation in progress for the service binding.",
                )
            binding.update(type="delete", state="in progress")
            return Reply(
                202, headers={"Location": f"{self.url}/v3/jobs/{self._job_for(guid, 'delete')}"}
            )
        if details:
            if binding["state"] != "succeeded":
                return error_body(
                    404,
                    "CF-ResourceNotFound",
                    10010,
                    f"Creation of service binding {binding['state']}",
                )
            return Reply(body={"credentials": binding["credentials"], "volume_mounts": []})
        return Reply(body=self._binding_json(binding))

    def _job(self, guid: str) -> Reply:
        job = self.jobs.get(guid)
        if job is None:
            return error_body(404, "CF-ResourceNotFound", 10010, "Job not found")
        job["polls"] += 1
        state = self.job_states[min(job["polls"], len(self.job_states)) - 1]
        binding = self.bindings.get(job["binding"])
        errors: list[dict[str, Any]] = []
        if state == "COMPLETE" and job["failure"]:
            state = "FAILED"
            detail = f"bind could not be completed: Service broker error: {job['failure']}"
            errors = [{"code": 10009, "title": "CF-UnableToPerform", "detail": detail}]
            if binding:
                binding.update(state="failed", description=detail)
        elif state == "COMPLETE" and binding and job["operation"] == "delete":
            del self.bindings[job["binding"]]
            binding = None
        elif binding:
            binding["state"] = "succeeded" if state == "COMPLETE" else "in progress"
        links: dict[str, Any] = {"self": {"href": f"{self.url}/v3/jobs/{guid}"}}
        if binding:
            links["service_credential_binding"] = {
                "href": f"{self.url}/v3/service_credential_bindings/{binding['guid']}"
            }
        return Reply(
            body={
                "guid": guid,
                "operation": f"service_bindings.{job['operation']}",
                "state": state,
                "errors": errors,
                "warnings": [{"detail": w} for w in self.job_warnings],
                "links": links,
            }
        )

    def _deployment(self, d: dict[str, Any]) -> dict[str, Any]:
        return {
            "guid": d["guid"],
            "status": {"value": d["state"], "reason": d["reason"], "details": {}},
            "strategy": "rolling",
            "droplet": {"guid": "droplet-1"},
            "relationships": {"app": {"data": {"guid": d["app"]}}},
        }


def _names(query: dict[str, str], name: str) -> bool:
    """CC's `names` filter for orgs, spaces and apps is case-insensitive."""
    wanted = query.get("names")
    return wanted is None or name.lower() in [n.lower() for n in wanted.split(",")]


def ca_pem(ca: trustme.CA) -> str:
    return ca.cert_pem.bytes().decode()


def user_auth(ca: trustme.CA, **overrides: Any) -> Any:
    """`CfAuth` for the fake's user (with origin), trusting the fake's CA."""
    from cpi_cert_rotate.models import CfAuth

    values: dict[str, Any] = {
        "username": USERNAME,
        "password": PASSWORD,
        "origin": ORIGIN,
        "ca_pem": ca_pem(ca),
    }
    values.update(overrides)
    return CfAuth(**values)


def fast_retries(monkeypatch: Any) -> None:
    """Shrink the client's retry backoff where the test is not about its timing."""
    from cpi_cert_rotate.cf import http

    monkeypatch.setattr(http, "_BACKOFF_FACTOR_S", 0.01)
    monkeypatch.setattr(http, "_BACKOFF_JITTER_S", 0.0)
