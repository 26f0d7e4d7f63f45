"""Rolling deployments: new instances up and healthy before old ones stop.

As CC/Diego do it (docs-dev-guide `rolling-deploy.html.md.erb`): a new web process comes
up `max_in_flight` instances at a time; after each batch is healthy (`start_s`), as many
old instances stop; at the end the old process is removed and the deployment becomes
FINALIZED/DEPLOYED. A newer deployment supersedes an active one (FINALIZED/SUPERSEDED);
cancel goes CANCELING -> FINALIZED/CANCELED, stops the new instances and brings the old
process back to its full count with its own (old) snapshot.
"""

from __future__ import annotations

import logging
import threading

from .faults import Faults
from .instances import Instance, Runtime
from .state import App, Deployment, Process, Store, now

log = logging.getLogger(__name__)


class Rollouts:
    """Runs one thread per active deployment."""

    def __init__(
        self, store: Store, runtime: Runtime, faults: Faults, stopping: threading.Event
    ) -> None:
        self._store = store
        self._runtime = runtime
        self._faults = faults
        self._stopping = stopping
        self._wakeups: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    def create(self, app: App, dep: Deployment) -> None:
        """Begin a deployment (under store.lock); `dep` is already in the store."""
        active = self._store.active_deployment(app.guid)
        if active is not None and active.guid != dep.guid:
            active.set_status("FINALIZED", "SUPERSEDED")
            self._wake(active.guid)
        dep.previous_droplet_guid = app.droplet_guid
        if dep.droplet_guid and dep.droplet_guid != app.droplet_guid:
            app.droplet_guid = dep.droplet_guid
        dep.droplet_guid = app.droplet_guid
        revision = self._runtime.ensure_revision(app)
        dep.revision_guid, dep.revision_version = revision.guid, revision.version
        if app.state != "STARTED":
            self._runtime.start_app(app)
            dep.new_process_guid = self._runtime.web_process(app).guid
            dep.set_status("FINALIZED", "DEPLOYED")
            return
        process = self._store.add(Process(app_guid=app.guid, instances=app.instances))
        self._runtime.desire(process, revision)
        dep.new_process_guid = process.guid
        self._wakeups[dep.guid] = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(dep.guid,), name="sandbox-rollout", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def cancel(self, dep: Deployment) -> None:
        """Ask the rollout to cancel (under store.lock); the thread restores the old state."""
        dep.set_status("ACTIVE", "CANCELING")
        self._wake(dep.guid)

    def join(self) -> None:
        """Wait for the rollout threads (the landscape is stopping)."""
        for event in list(self._wakeups.values()):
            event.set()
        for thread in self._threads:
            thread.join(5.0)

    def _wake(self, guid: str) -> None:
        event = self._wakeups.get(guid)
        if event is not None:
            event.set()

    def _wait(self, dep: Deployment, seconds: float | None) -> bool:
        """Sleep; False if the deployment was cancelled/superseded or the landscape stops."""
        event = self._wakeups[dep.guid]
        if seconds is None or seconds > 0:
            event.wait(seconds)
        with self._store.lock:
            return (dep.value, dep.reason) == ("ACTIVE", "DEPLOYING") and not (
                self._stopping.is_set()
            )

    def _run(self, guid: str) -> None:
        try:
            self._roll(guid)
        except Exception:
            log.exception("deployment %s failed", guid)
        finally:
            self._wakeups.pop(guid, None)

    def _roll(self, guid: str) -> None:
        store, runtime = self._store, self._runtime
        with store.lock:
            dep = store.deployments[guid]
            app = store.apps[dep.app_guid]
            new_process = store.processes[dep.new_process_guid or ""]
            old = [i for i in runtime.app_instances(app.guid) if i.process_guid != new_process.guid]
            target = app.instances
        stall = self._faults.deployment("stall")
        cancel_after_first = self._faults.deployment("cancel")
        started = 0
        while started < target:
            with store.lock:
                if (dep.value, dep.reason) != ("ACTIVE", "DEPLOYING"):
                    break
                stopped = app.state != "STARTED"
            if stopped:  # a stopped app's new instances never become healthy
                if not self._wait(dep, store.options.start_s):
                    break
                continue
            with store.lock:
                batch = min(dep.max_in_flight, target - started)
                fresh = [
                    runtime.spawn(new_process, started + i, healthy_after=None)
                    for i in range(batch)
                ]
            if not self._wait(dep, None if stall else store.options.start_s):
                break
            runtime.mark_running(fresh)
            started += batch
            with store.lock:
                dep.last_healthcheck = now()
                for inst in old[:batch]:
                    runtime.stop(inst)
                del old[:batch]
                if cancel_after_first:
                    self.cancel(dep)
        self._settle(dep, app, new_process, old)

    def _settle(self, dep: Deployment, app: App, new_process: Process, old: list[Instance]) -> None:
        store, runtime = self._store, self._runtime
        restore: list[Instance] = []
        with store.lock:
            if self._stopping.is_set():
                return
            if dep.reason == "CANCELING":
                restore = self._restore(dep, app, new_process)
            elif (dep.value, dep.reason) == ("ACTIVE", "DEPLOYING"):
                for inst in old:
                    runtime.stop(inst)
                for process in store.web_processes(app.guid):
                    if process.guid != new_process.guid:
                        runtime.drop_process(process)
                dep.set_status("FINALIZED", "DEPLOYED")
                return
            else:  # superseded: the newer deployment owns every instance now
                return
        if restore:
            self._stopping.wait(store.options.start_s)
            runtime.mark_running(restore)
        with store.lock:
            dep.set_status("FINALIZED", "CANCELED")

    def _restore(self, dep: Deployment, app: App, new_process: Process) -> list[Instance]:
        """Cancel: drop the new process, refill the previous one, roll back the droplet."""
        store, runtime = self._store, self._runtime
        runtime.drop_process(new_process)
        if dep.previous_droplet_guid:
            app.droplet_guid = dep.previous_droplet_guid
        previous = store.web_processes(app.guid)
        if not previous:
            return []
        process = previous[-1]
        live = runtime.live(process.guid)
        used = {inst.index for inst in live}
        free = [index for index in range(app.instances) if index not in used]
        need = max(app.instances - len(live), 0)
        return [runtime.spawn(process, index, healthy_after=None) for index in free[:need]]
