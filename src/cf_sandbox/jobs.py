"""Async jobs: binding creates and deletes move PROCESSING -> POLLING -> COMPLETE | FAILED.

CC runs the broker call in a delayed job (`pollable_job_wrapper.rb`); the broker answers
async and CC polls its last_operation (POLLING). Here each stage lasts `job_steps_s`; the
binding row follows (`initial` -> `in progress` -> `succeeded`/`failed`). A broker
refusal fails the job with 10009 `CF-UnableToPerform` and the exact detail
`bind could not be completed: Service broker error: <desc>` (reference section 3).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from . import present
from .broker import BrokerError, ItRtBroker
from .faults import Faults
from .state import Binding, Job, LastOperation, Store, now
from .web import GUID, Request, Response, Router, check_query, not_found

log = logging.getLogger(__name__)


class Scheduler:
    """One thread that runs callbacks at given times (job steps, instance health checks)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sandbox-scheduler", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Run `fn` after `delay_s` seconds (0: as soon as possible)."""
        with self._cond:
            heapq.heappush(self._queue, (time.monotonic() + max(delay_s, 0.0), next(self._seq), fn))
            self._cond.notify()

    def stop(self) -> None:
        """Drop pending callbacks and join the thread."""
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                    not self._queue or self._queue[0][0] > time.monotonic()
                ):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, fn = heapq.heappop(self._queue)
            try:
                fn()
            except Exception:
                log.exception("scheduled callback failed")


class JobRunner:
    """Creates and advances binding jobs; serves `GET /v3/jobs/:guid`."""

    def __init__(
        self, store: Store, scheduler: Scheduler, faults: Faults, broker: ItRtBroker
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._faults = faults
        self._broker = broker

    def register(self, router: Router) -> None:
        """Add the jobs route."""
        router.add("GET", f"/v3/jobs/{GUID}", self.show)

    def show(self, req: Request, guid: str) -> Response:
        """`GET /v3/jobs/:guid`."""
        check_query(req, [])
        with self._store.lock:
            job = self._store.jobs.get(guid)
            if job is None:
                raise not_found("Job")
            exists = job.resource_guid in self._store.bindings
            return Response(200, present.job(job, req.base_url, exists))

    def start_create(self, binding: Binding) -> Job:
        """A `service_bindings.create` job for a binding row in state `initial`."""
        return self._start("service_bindings.create", binding, self._finish_create)

    def start_delete(self, binding: Binding) -> Job:
        """A `service_bindings.delete` job; the binding shows `delete in progress` at once."""
        binding.last_operation = LastOperation(type="delete", state="in progress")
        binding.touch()
        return self._start("service_bindings.delete", binding, self._finish_delete)

    def _start(
        self, operation: str, binding: Binding, finish: Callable[[Job, Binding, str | None], None]
    ) -> Job:
        job = self._store.add(Job(operation=operation, resource_guid=binding.guid))
        step = self._store.options.job_steps_s
        self._scheduler.call_later(step, lambda: self._poll(job, binding, finish))
        return job  # type: ignore[no-any-return]

    def _poll(
        self, job: Job, binding: Binding, finish: Callable[[Job, Binding, str | None], None]
    ) -> None:
        with self._store.lock:
            job.state = "POLLING"
            job.touch()
            if binding.last_operation.state == "initial":
                binding.last_operation.state = "in progress"
                binding.last_operation.updated_at = now()
        rule = self._faults.job(job.operation)
        delay = self._store.options.job_steps_s + float((rule or {}).get("delay_s", 0))
        failure = None
        verb = "bind" if job.operation.endswith(".create") else "unbind"
        if rule and rule.get("timeout"):
            failure = f"Service Broker failed to {verb} within the required time."
        elif rule and rule.get("fail"):
            failure = f"Service broker error: {rule.get('detail') or 'injected failure'}"
        self._scheduler.call_later(delay, lambda: self._finish(job, binding, failure, finish))

    def _finish(
        self,
        job: Job,
        binding: Binding,
        failure: str | None,
        finish: Callable[[Job, Binding, str | None], None],
    ) -> None:
        with self._store.lock:
            creating = job.operation == "service_bindings.create"
            if binding.guid not in self._store.bindings or (
                creating and binding.last_operation.type != "create"
            ):
                job.state = "FAILED"
                verb = "bind" if creating else "unbind"
                job.errors = [_unable(verb, "The service binding was deleted meanwhile")]
                job.touch()
                return
            finish(job, binding, failure)
            job.touch()

    def _finish_create(self, job: Job, binding: Binding, failure: str | None) -> None:
        if failure is None:
            try:
                self._broker.bind(binding)
            except BrokerError as error:
                failure = f"Service broker error: {error}"
        op = binding.last_operation
        op.updated_at = now()
        binding.touch()
        if failure is None:
            op.state, op.description = "succeeded", None
            binding.registered_at = time.monotonic()
            job.state = "COMPLETE"
            return
        op.state, op.description = "failed", failure
        binding.leaf_der = None
        job.state = "FAILED"
        job.errors = [_unable("bind", failure)]

    def _finish_delete(self, job: Job, binding: Binding, failure: str | None) -> None:
        if failure is None:
            del self._store.bindings[binding.guid]
            job.state = "COMPLETE"
            return
        binding.last_operation.state = "failed"
        binding.last_operation.description = failure
        binding.last_operation.updated_at = now()
        job.state = "FAILED"
        job.errors = [_unable("unbind", failure)]


def _unable(verb: str, detail: str) -> dict[str, object]:
    return {
        "code": 10009,
        "title": "CF-UnableToPerform",
        "detail": f"{verb} could not be completed: {detail}",
    }
