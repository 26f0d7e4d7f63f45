"""Requests, responses, CF error envelopes and routing: the HTTP vocabulary of the sandbox.

Error texts are CC's (cloud_controller_ng `errors/v2.yml` for codes, titles and formats,
`app/controllers/v3/application_controller.rb` for how details are built); clients match
on code and title, tests also on the detail.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote_plus


@dataclass
class Request:
    """One parsed HTTP request as the route handlers see it."""

    server: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    base_url: str
    peer_cert_der: bytes | None = None
    claims: dict[str, Any] | None = None
    raw_query: str = ""

    @classmethod
    def parse(
        cls,
        server: str,
        method: str,
        target: str,
        *,
        headers: Message,
        body: bytes,
        base_url: str,
        peer_cert_der: bytes | None = None,
    ) -> Request:
        """Split the request target into path and query."""
        path, _, raw_query = target.partition("?")
        query = parse_qs(raw_query, keep_blank_values=True)
        return cls(
            server, method, path, query, headers, body, base_url, peer_cert_der, None, raw_query
        )

    @property
    def params(self) -> dict[str, Any]:
        """The query as Rack nests it for CC: `a=1` -> "1", `a[b]=1` -> {"b": "1"},
        `a[]=1` -> ["1"]; a repeated key keeps its last value (Rack's
        `parse_nested_query`)."""
        return nested_params(self.raw_query)

    @property
    def query_string(self) -> str:
        """The query as it came (re-encoded), for logs and pagination links."""
        return "&".join(f"{k}={v}" for k, vs in self.query.items() for v in vs)

    def param(self, name: str) -> str | None:
        """A plain query parameter as CC sees it (the last one of that name)."""
        value = self.params.get(name)
        return value if isinstance(value, str) else None

    def json(self) -> Any:
        """The JSON body; an empty body is `{}`; anything unparsable is CC's 400."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise message_parse_error() from error

    def json_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object."""
        body = self.json()
        if not isinstance(body, dict):
            raise message_parse_error()
        return body

    def form(self) -> dict[str, str]:
        """The query and a form-encoded body as one parameter map, as UAA reads them
        (`HttpServletRequest.getParameter`): the query's value comes first (Servlet 3.1
        section 3.1: "Query string data is presented before post body data")."""
        text = self.body.decode("utf-8", errors="replace")
        merged = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        merged.update({k: v[0] for k, v in self.query.items()})
        return merged


@dataclass
class Response:
    """What a handler answers; `body` dict/list -> JSON, str/bytes -> as is, None -> empty."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None

    def encode(self) -> tuple[bytes, str | None]:
        """The body bytes and the content type to send."""
        if self.body is None:
            return b"", self.content_type
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), self.content_type or "application/json"


DROP = Response(status=0)
"""Sentinel: close the connection without answering (a dropped connection fault)."""


class ApiError(Exception):
    """A CC error: becomes `{"errors":[{"code","title","detail"}]}` with `status`."""

    def __init__(self, status: int, code: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail = status, code, title, detail

    def response(self) -> Response:
        """The error envelope response."""
        body = {"errors": [{"detail": self.detail, "title": self.title, "code": self.code}]}
        return Response(self.status, body)


def basic_credentials(req: Request) -> tuple[str, str] | None:
    """The client id and secret of an `Authorization: Basic` header, form-decoded as UAA
    and IAS read them (RFC 6749 section 2.3.1: `+` is a space, `%2B` a plus; uaa
    `server/.../authentication/ClientBasicAuthenticationFilter.java` decodes both with
    `URLDecoder` unless the operator's `enableUriEncodingCompatibilityMode` is on; SAP's
    "Configure the Client to Call Identity Authentication JWT Bearer Token": "must be
    encoded using the application/x-www-form-urlencoded encoding"); None without one or
    when unreadable."""
    scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def not_found(kind: str) -> ApiError:
    """404 CF-ResourceNotFound, e.g. `App not found`."""
    return ApiError(404, 10010, "CF-ResourceNotFound", f"{kind} not found")


def resource_not_found(detail: str) -> ApiError:
    """404 CF-ResourceNotFound with a specific message."""
    return ApiError(404, 10010, "CF-ResourceNotFound", detail)


def unknown_request() -> ApiError:
    """404 CF-NotFound: no such route."""
    return ApiError(404, 10000, "CF-NotFound", "Unknown request")


def unprocessable(detail: str) -> ApiError:
    """422 CF-UnprocessableEntity."""
    return ApiError(422, 10008, "CF-UnprocessableEntity", detail)


def bad_query(detail: str) -> ApiError:
    """400 CF-BadQueryParameter (CC prefixes every detail)."""
    return ApiError(400, 10005, "CF-BadQueryParameter", f"The query parameter is invalid: {detail}")


def message_parse_error() -> ApiError:
    """400 CF-MessageParseError for a body that is not JSON."""
    return ApiError(
        400,
        1001,
        "CF-MessageParseError",
        "Request invalid due to parse error: invalid request body",
    )


def server_error() -> ApiError:
    """500 CF-ServerError."""
    return ApiError(500, 10001, "CF-ServerError", "An unknown error occurred.")


def check_fields(body: dict[str, Any], allowed: set[str]) -> None:
    """422 `Unknown field(s): 'x', 'y'` for fields CC's message class does not know."""
    unknown = [key for key in body if key not in allowed]
    if unknown:
        raise unprocessable("Unknown field(s): " + ", ".join(f"'{k}'" for k in unknown))


def nested_params(raw_query: str) -> dict[str, Any]:
    """Rack's `parse_nested_query` for one level of brackets (what CC's messages use)."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        found = re.fullmatch(r"([^\[\]]+)\[([^\[\]]*)\]", key)
        if found is None:
            result[key] = value
            continue
        name, sub = found.groups()
        if sub == "":
            current = result.get(name)
            result[name] = [*current, value] if isinstance(current, list) else [value]
        else:
            current = result.get(name)
            nested = current if isinstance(current, dict) else {}
            nested[sub] = value
            result[name] = nested
    return result


Handler = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    """A method, a path pattern with named groups, the handler, and whether it needs a token."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool = True


class Router:
    """Maps (method, path) to handlers; unknown routes answer CC's 404 `Unknown request`."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, *, auth: bool = True) -> None:
        """Register `path` (regex groups like `(?P<guid>[^/]+)`), matched whole."""
        self.routes.append(Route(method, re.compile(f"^{path}$"), handler, auth))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its path arguments; raises the 404 when nothing matches."""
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.method == method:
                return route, found.groupdict()
        raise unknown_request()


GUID = r"(?P<guid>[^/]+)"
"""Path segment pattern for a resource guid."""
