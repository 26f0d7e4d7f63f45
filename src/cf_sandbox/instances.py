"""The app's running instances: each one holds the env it was started with and calls CPI.

A process (CC's web process, bound to a revision) is desired with a snapshot of the app's
env vars and VCAP_SERVICES, as Diego desires an LRP (cloud_controller_ng
`lib/cloud_controller/diego/environment.rb`); each
instance copies that snapshot when it starts and keeps it until it stops, so changing env
vars or bindings affects nothing until instances are replaced. An instance's `call` makes
a real mTLS request to the iFlow URL of its own VCAP_SERVICES with its own `CLI_CHAIN` and
`CLI_KEY` (key loaded through a memfd), one keep-alive session per instance.
"""

from __future__ import annotations

import itertools
import logging
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
from cryptography.exceptions import UnsupportedAlgorithm

from . import memtls
from .envs import vcap_services
from .jobs import Scheduler
from .pki import load_pem_certs, sha256_hex
from .state import App, Process, Revision, Store, iso, now

log = logging.getLogger(__name__)

# The probe's budget per call: long enough for a TLS handshake under load, short enough
# that a hung call shows up as an outage rather than stalling the schedule.
CALL_TIMEOUT_S = 2.0
# A stopped instance's connections close a little later, like a container draining.
_DRAIN_S = 1.0
IFLOW_PATH = "/http/probe"


@dataclass(frozen=True)
class Snapshot:
    """The env one process's instances start with."""

    env_vars: dict[str, str]
    vcap: dict[str, list[dict[str, Any]]]

    @property
    def leaf_sha256(self) -> str | None:
        """Fingerprint of the first certificate of CLI_CHAIN, None when absent or broken."""
        chain = self.env_vars.get("CLI_CHAIN")
        if not chain:
            return None
        try:
            return sha256_hex(load_pem_certs(chain)[0])
        except ValueError:
            return None

    @property
    def iflow_base(self) -> str | None:
        """The CPI URL from the first it-rt binding's credentials."""
        for entry in self.vcap.get("it-rt", []):
            url = (entry.get("credentials") or {}).get("oauth", {}).get("url")
            if url:
                return str(url)
        return None


@dataclass(frozen=True)
class CallResult:
    """One call made by an instance."""

    ok: bool
    status: int | None
    error: str | None


@dataclass
class Instance:
    """One container of a process."""

    process_guid: str
    index: int
    snapshot: Snapshot
    state: str = "STARTING"
    guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_at: str | None = field(default_factory=lambda: iso(now()))
    _session: requests.Session | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, ca_pem: str, body: bytes = b"ping") -> CallResult:
        """POST to the iFlow with this instance's own chain, key and URL."""
        base = self.snapshot.iflow_base
        if base is None:
            return CallResult(False, None, "no it-rt binding in VCAP_SERVICES")
        with self._lock:
            if self._session is None:
                try:
                    ctx = memtls.client_context(
                        ca_pem,
                        self.snapshot.env_vars["CLI_CHAIN"],
                        self.snapshot.env_vars["CLI_KEY"],
                    )
                except (
                    KeyError,
                    ValueError,
                    TypeError,
                    UnsupportedAlgorithm,
                    ssl.SSLError,
                ) as error:
                    return CallResult(False, None, f"bad CLI_CHAIN/CLI_KEY: {type(error).__name__}")
                self._session = memtls.session(ctx)
            session = self._session
        try:
            resp = session.post(base + IFLOW_PATH, data=body, timeout=CALL_TIMEOUT_S)
        except requests.RequestException as error:
            return CallResult(False, None, type(error).__name__)
        return CallResult(resp.status_code == 200, resp.status_code, None)

    def close(self) -> None:
        """Close the instance's connections."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None


class Runtime:
    """All instances of all apps, by process guid."""

    def __init__(self, store: Store, scheduler: Scheduler, api_url: str) -> None:
        self.store = store
        self.scheduler = scheduler
        self.api_url = api_url
        self.by_process: dict[str, list[Instance]] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self._rr = itertools.count()

    # -- revisions and processes (callers hold store.lock) --------------------------

    def ensure_revision(self, app: App) -> Revision:
        """The app's revision for its current droplet and env, new if either changed."""
        newest = self.store.newest_revision(app.guid)
        if newest and newest.droplet_guid == app.droplet_guid and newest.env_vars == app.env_vars:
            return newest
        if newest is None:
            description = "Initial revision."
        elif newest.droplet_guid != app.droplet_guid:
            description = "New droplet deployed."
        else:
            description = "New environment variables deployed."
        return self.store.add(  # type: ignore[no-any-return]
            Revision(
                app_guid=app.guid,
                version=(newest.version + 1) if newest else 1,
                droplet_guid=app.droplet_guid,
                env_vars=dict(app.env_vars),
                description=description,
            )
        )

    def desire(self, process: Process, revision: Revision) -> None:
        """Bind a process to a revision and take its env snapshot now."""
        process.revision_guid = revision.guid
        self.snapshots[process.guid] = Snapshot(
            dict(revision.env_vars), vcap_services(self.store, process.app_guid)
        )

    def web_process(self, app: App) -> Process:
        """The app's current web process (made on first use)."""
        processes = self.store.web_processes(app.guid)
        if processes:
            return processes[-1]
        return self.store.add(  # type: ignore[no-any-return]
            Process(app_guid=app.guid, instances=app.instances)
        )

    # -- instances (callers hold store.lock) --------------------------------------

    def spawn(self, process: Process, index: int, *, healthy_after: float | None) -> Instance:
        """Start one instance with its process's snapshot.

        `healthy_after`: seconds until RUNNING, scheduled here; None: the caller marks it.
        """
        inst = Instance(process.guid, index, self.snapshots[process.guid])
        self.by_process.setdefault(process.guid, []).append(inst)
        if healthy_after is not None:
            if healthy_after <= 0:
                inst.state = "RUNNING"
            else:
                self.scheduler.call_later(healthy_after, lambda: self.mark_running([inst]))
        return inst

    def mark_running(self, instances: list[Instance]) -> None:
        """Instances that passed their health check."""
        with self.store.lock:
            for inst in instances:
                if inst.state == "STARTING":
                    inst.state = "RUNNING"

    def stop(self, inst: Instance) -> None:
        """Stop one instance; its connections drain shortly after."""
        inst.state = "STOPPED"
        live = self.by_process.get(inst.process_guid, [])
        if inst in live:
            live.remove(inst)
        self.scheduler.call_later(_DRAIN_S, inst.close)

    def live(self, process_guid: str) -> list[Instance]:
        """STARTING and RUNNING instances of a process."""
        return list(self.by_process.get(process_guid, []))

    def app_instances(self, app_guid: str) -> list[Instance]:
        """Every live instance of every web process of the app."""
        return [
            inst
            for proc in self.store.web_processes(app_guid)
            for inst in self.by_process.get(proc.guid, [])
        ]

    def drop_process(self, process: Process) -> None:
        """Stop a process's instances and remove it."""
        for inst in self.live(process.guid):
            self.stop(inst)
        self.by_process.pop(process.guid, None)
        self.snapshots.pop(process.guid, None)
        self.store.processes.pop(process.guid, None)

    # -- app lifecycle (callers hold store.lock) ----------------------------------

    def start_app(self, app: App, *, start_s: float | None = None) -> None:
        """`actions/start`: desire the web process anew and start its instances.

        `start_s` overrides the option (the seed starts its instances healthy at once).
        """
        app.state = "STARTED"
        app.touch()
        process = self.web_process(app)
        for extra in self.store.web_processes(app.guid)[:-1]:
            self.drop_process(extra)
        process.instances = app.instances
        self.desire(process, self.ensure_revision(app))
        for inst in self.live(process.guid):
            self.stop(inst)
        for index in range(app.instances):
            healthy_after = self.store.options.start_s if start_s is None else start_s
            self.spawn(process, index, healthy_after=healthy_after)

    def stop_app(self, app: App) -> None:
        """`actions/stop`: every instance goes at once (downtime)."""
        app.state = "STOPPED"
        app.touch()
        for process in self.store.web_processes(app.guid):
            for inst in self.live(process.guid):
                self.stop(inst)

    def pick(self, app_guid: str) -> Instance | None:
        """The next RUNNING instance of the app, round-robin (the gorouter's job)."""
        with self.store.lock:
            running = [i for i in self.app_instances(app_guid) if i.state == "RUNNING"]
            if not running:
                return None
            return running[next(self._rr) % len(running)]

    def stats(self, process: Process) -> list[dict[str, Any]]:
        """`/stats` resources of a process."""
        live = self.live(process.guid)
        app = self.store.apps.get(process.app_guid)
        if not live and app is not None and app.state == "STOPPED":
            return [_stat(process, index, "DOWN", None) for index in range(process.instances)]
        return [_stat(process, inst.index, inst.state, inst.started_at) for inst in live]

    def close(self) -> None:
        """Close every instance's connections (landscape stop)."""
        with self.store.lock:
            everything = [inst for insts in self.by_process.values() for inst in insts]
        for inst in everything:
            inst.close()


def _stat(process: Process, index: int, state: str, started_at: str | None) -> dict[str, Any]:
    return {
        "type": process.type,
        "index": index,
        "state": state,
        "routable": state == "RUNNING",
        "host": "10.0.0.1" if state != "DOWN" else "",
        "uptime": 0,
        "mem_quota": 268435456,
        "disk_quota": 1073741824,
        "log_rate_limit": -1,
        "fds_quota": 16384,
        "isolation_segment": None,
        "details": None,
        "instance_ports": [],
        "usage": {"time": started_at, "cpu": 0.0, "mem": 0, "disk": 0, "log_rate": 0},
    }
