"""Log Cache: what `cf restage` and `cf push` read while staging (`links.log_cache`).

The cf CLI reads logs with `code.cloudfoundry.org/go-log-cache` (cf CLI
`actor/sharedaction/logging.go`: `GetStreamingLogs` walks `Read` with envelope type LOG;
the newest envelope is found with `limit=1&descending=true`). That client
(cloudfoundry/go-log-cache `client.go`) first asks `GET /api/v1/info` for the version
(>= 2.0.0: the API lives under `/api/v1`; 404: an old one under `/v1`), then
`GET /api/v1/read/<source-id>?start_time=<ns>[&end_time=][&limit=][&descending=true]
[&envelope_types=LOG]` and parses a `logcache_v1.ReadResponse` with protojson:
`{"envelopes":{"batch":[...]}}`, int64 as strings and bytes as base64 (loggregator-api
`v2/envelope.proto`). Reads need a UAA bearer token. The sandbox keeps what staging
writes: the lines a build prints, with source type `STG`.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from typing import Any

from .web import Request, Response, Router, bad_query

VERSION = "3.0.13"
# Log Cache keeps a bounded number of envelopes per source (its `memory_limit_percent`).
_MAX_PER_SOURCE = 1000


@dataclass(frozen=True)
class Envelope:
    """One loggregator v2 LOG envelope."""

    timestamp_ns: int
    source_id: str
    instance_id: str
    source_type: str
    payload: str
    stream: str = "OUT"

    def to_api(self) -> dict[str, Any]:
        """protojson with the proto field names."""
        return {
            "timestamp": str(self.timestamp_ns),
            "source_id": self.source_id,
            "instance_id": self.instance_id,
            "deprecated_tags": {},
            "tags": {"source_type": self.source_type},
            "log": {
                "payload": base64.b64encode(self.payload.encode()).decode(),
                "type": self.stream,
            },
        }


class LogStore:
    """Envelopes per source id (an app's guid), oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_source: dict[str, list[Envelope]] = {}
        self._started = time.time()

    def emit(
        self, source_id: str, payload: str, *, source_type: str, instance_id: str = "0"
    ) -> None:
        """Record one log line now."""
        envelope = Envelope(time.time_ns(), source_id, instance_id, source_type, payload)
        with self._lock:
            kept = self._by_source.setdefault(source_id, [])
            kept.append(envelope)
            del kept[:-_MAX_PER_SOURCE]

    def read(
        self,
        source_id: str,
        *,
        start_ns: int,
        end_ns: int | None,
        limit: int,
        descending: bool,
    ) -> list[Envelope]:
        """Envelopes with start <= timestamp < end, at most `limit`, in the asked order."""
        with self._lock:
            found = [
                e
                for e in self._by_source.get(source_id, [])
                if e.timestamp_ns >= start_ns and (end_ns is None or e.timestamp_ns < end_ns)
            ]
        if descending:
            found.reverse()
        return found[:limit]

    def uptime_s(self) -> int:
        """Seconds since the store started (`vm_uptime`)."""
        return int(time.time() - self._started)


def _int(req: Request, name: str, default: int | None) -> int | None:
    raw = req.param(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_query(f"{name} must be an integer") from None


class LogCacheRoutes:
    """The two Log Cache calls the cf CLI makes."""

    def __init__(self, logs: LogStore) -> None:
        self.logs = logs

    def register(self, router: Router) -> None:
        """Add the routes (`info` needs no token)."""
        router.add("GET", "/api/v1/info", self.info, auth=False)
        router.add("GET", "/api/v1/read/(?P<source_id>[^/]+)", self.read)

    def info(self, req: Request) -> Response:
        """`GET /api/v1/info`."""
        return Response(200, {"version": VERSION, "vm_uptime": str(self.logs.uptime_s())})

    def read(self, req: Request, source_id: str) -> Response:
        """`GET /api/v1/read/<source-id>`: only LOG envelopes are kept, so the type filter
        changes nothing; limit defaults to 100 and is capped at 1000, as Log Cache does."""
        limit = _int(req, "limit", 100) or 100
        envelopes = self.logs.read(
            source_id,
            start_ns=_int(req, "start_time", 0) or 0,
            end_ns=_int(req, "end_time", None),
            limit=min(limit, 1000),
            descending=req.param("descending") == "true",
        )
        return Response(200, {"envelopes": {"batch": [e.to_api() for e in envelopes]}})
