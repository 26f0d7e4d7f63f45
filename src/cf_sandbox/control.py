"""`/_sandbox/*`: inspection and control over plain JSON on the CC port.

All servers listen on 127.0.0.1 only, so these routes are loopback-only by construction;
they need no token, are not rate-limited, take no faults and are not in the call log.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509

from .envs import active_bindings
from .instances import Runtime
from .pki import load_pem_certs, sha256_hex
from .state import Binding, Store
from .web import Request, Response, Router

if TYPE_CHECKING:
    from .landscape import Landscape


def _leaf_sha256(binding: Binding) -> str | None:
    if binding.leaf_der is not None:
        return sha256_hex(x509.load_der_x509_certificate(binding.leaf_der))
    pem = binding.parameters.get("X.509")
    if isinstance(pem, str):
        try:
            return sha256_hex(load_pem_certs(pem)[0])
        except ValueError:
            return None
    return None


def state_json(store: Store, runtime: Runtime) -> dict[str, Any]:
    """The `/_sandbox/state` document (issue 3's shape; extra keys may follow)."""
    with store.lock:
        apps = []
        for app in sorted(store.apps.values(), key=lambda a: a.seq):
            instances = [
                {
                    "index": inst.index,
                    "leaf_sha256": inst.snapshot.leaf_sha256,
                    "started_at": inst.started_at,
                    "state": inst.state,
                    "process_guid": inst.process_guid,
                    "guid": inst.guid,
                }
                for inst in runtime.app_instances(app.guid)
            ]
            apps.append(
                {
                    "guid": app.guid,
                    "name": app.name,
                    "env": dict(app.env_vars),
                    "annotations": dict(app.annotations),
                    "instances": instances,
                    "state": app.state,
                    "vcap_binding_guids": [b.guid for b in active_bindings(store, app.guid)],
                }
            )
        bindings, keys = [], []
        for b in sorted(store.bindings.values(), key=lambda b: b.seq):
            entry = {
                "guid": b.guid,
                "service_instance_guid": b.service_instance_guid,
                "name": b.name,
                "state": b.last_operation.state,
                "operation": b.last_operation.type,
                "leaf_sha256": _leaf_sha256(b),
            }
            if b.type == "app":
                bindings.append({"guid": b.guid, "app_guid": b.app_guid, **entry})
            else:
                keys.append(entry)
        deployments = [
            {"guid": d.guid, "app_guid": d.app_guid, "value": d.value, "reason": d.reason}
            for d in sorted(store.deployments.values(), key=lambda d: d.seq)
        ]
        return {
            "apps": apps,
            "bindings": bindings,
            "service_keys": keys,
            "deployments": deployments,
        }


def _bad(message: str) -> Response:
    return Response(400, {"error": message})


class ControlRoutes:
    """The control routes of one landscape."""

    def __init__(self, landscape: Landscape) -> None:
        self.ls = landscape

    def router(self) -> Router:
        """A router with every control route (none needs a token)."""
        r = Router()
        ls = self.ls
        r.add("GET", "/_sandbox/state", lambda req: Response(200, ls.state()), auth=False)
        r.add("GET", "/_sandbox/state_file", lambda req: Response(200, ls.state_file()), auth=False)
        r.add("POST", "/_sandbox/mint", self.mint, auth=False)
        r.add("GET", "/_sandbox/calls", lambda req: Response(200, ls.calls()), auth=False)
        r.add("DELETE", "/_sandbox/calls", self.clear_calls, auth=False)
        r.add("GET", "/_sandbox/cpi/calls", lambda req: Response(200, ls.cpi_calls()), auth=False)
        r.add("GET", "/_sandbox/faults", lambda req: Response(200, ls.faults()), auth=False)
        r.add("POST", "/_sandbox/faults", self.add_faults, auth=False)
        r.add("DELETE", "/_sandbox/faults", self.clear_faults, auth=False)
        r.add("POST", "/_sandbox/probe/start", self.probe_start, auth=False)
        r.add("POST", "/_sandbox/probe/stop", self.probe_stop, auth=False)
        r.add("GET", "/_sandbox/probe", lambda req: Response(200, ls.probe()), auth=False)
        r.add("GET", "/_sandbox/options", lambda req: Response(200, ls.options()), auth=False)
        r.add("POST", "/_sandbox/options", self.set_options, auth=False)
        return r

    def mint(self, req: Request) -> Response:
        """`POST /_sandbox/mint {"cn","days","trusted","key","not_before"}`."""
        body = req.json_object()
        unknown = sorted(set(body) - {"cn", "days", "trusted", "key", "not_before"})
        if unknown:
            return _bad(f"unknown field(s): {', '.join(unknown)}")
        not_before = None
        if body.get("not_before"):
            try:
                not_before = datetime.datetime.fromisoformat(
                    str(body["not_before"]).replace("Z", "+00:00")
                )
            except ValueError:
                return _bad("not_before must be an ISO 8601 time")
        try:
            minted = self.ls.mint(
                cn=str(body.get("cn", "client")),
                days=float(body.get("days", 90)),
                trusted=bool(body.get("trusted", True)),
                key=str(body.get("key", "rsa-2048")),
                not_before=not_before,
            )
        except (TypeError, ValueError) as error:
            return _bad(str(error))
        return Response(
            200,
            {
                "chain_pem": minted.chain_pem,
                "key_pem": minted.key_pem,
                "leaf_sha256": minted.leaf_sha256,
            },
        )

    def clear_calls(self, req: Request) -> Response:
        """`DELETE /_sandbox/calls`."""
        self.ls.clear_calls()
        return Response(204)

    def add_faults(self, req: Request) -> Response:
        """`POST /_sandbox/faults` with one rule or a list of rules."""
        body = req.json()
        rules = body if isinstance(body, list) else [body]
        try:
            for rule in rules:
                self.ls.add_fault(rule)
        except ValueError as error:
            return _bad(str(error))
        return Response(201, self.ls.faults())

    def clear_faults(self, req: Request) -> Response:
        """`DELETE /_sandbox/faults`."""
        self.ls.clear_faults()
        return Response(204)

    def probe_start(self, req: Request) -> Response:
        """`POST /_sandbox/probe/start {"rps": 20}` (resets the counters)."""
        body = req.json_object()
        try:
            self.ls.probe_start(rps=float(body.get("rps", 20)))
        except (TypeError, ValueError) as error:
            return _bad(str(error))
        return Response(200, self.ls.probe())

    def probe_stop(self, req: Request) -> Response:
        """`POST /_sandbox/probe/stop`."""
        self.ls.probe_stop()
        return Response(200, self.ls.probe())

    def set_options(self, req: Request) -> Response:
        """`POST /_sandbox/options {"bindings_limit": 1, ...}`."""
        try:
            self.ls.set_options(**req.json_object())
        except (TypeError, ValueError) as error:
            return _bad(str(error))
        return Response(200, self.ls.options())
