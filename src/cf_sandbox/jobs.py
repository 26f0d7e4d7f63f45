"""Binding create and delete jobs, run as CC runs them, and `GET /v3/jobs/:guid`.

Sources (cloud_controller_ng): `app/jobs/v3/create_binding_async_job.rb` and
`delete_binding_job.rb` (what one run of the job does), `app/jobs/reoccurring_job.rb` and
`app/jobs/pollable_job_wrapper.rb` (a job is PROCESSING until its first run ends; it is
POLLING only when a run did not finish and it was enqueued again; COMPLETE or FAILED
after), `app/actions/v3/service_binding_create.rb` and `service_binding_delete.rb` (the
broker call: a synchronous answer finishes at once; an asynchronous one needs the
catalog's `bindings_retrievable` for a bind, else the binding fails with "The broker
responded asynchronously but does not support fetching binding data"), `errors/v2.yml`
(`UnableToPerform` 10009 "%s could not be completed: %s", `ServiceBindingInvalid` 90001,
`ResourceNotFound` 10010, `JobTimeout` 290006).

The binding row follows: a create is `initial` until the broker answered, `in progress`
while CC polls an asynchronous broker, then `succeeded` or `failed`; a delete changes the
row only when the job runs (to `delete in progress` while an asynchronous broker works).
Each job run happens `job_steps_s` after the last (delayed-job pick-up, CC's polling
interval); the `broker_async` and `bindings_retrievable` options say how the broker
answers. Fault rules (`faults.py`) make the broker refuse, time out or answer late.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from . import present
from .broker import BrokerError, ItRtBroker
from .faults import Faults
from .state import Binding, Job, LastOperation, Store, now
from .web import GUID, Request, Response, Router, not_found

log = logging.getLogger(__name__)

_NOT_RETRIEVABLE = "The broker responded asynchronously but does not support fetching binding data"


def _error(code: int, title: str, detail: str) -> dict[str, Any]:
    return {"code": code, "title": title, "detail": detail}


def unable(verb: str, detail: str) -> dict[str, Any]:
    """10009 CF-UnableToPerform: "<verb> could not be completed: <detail>"."""
    return _error(10009, "CF-UnableToPerform", f"{verb} could not be completed: {detail}")


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
    """Creates and runs binding jobs; serves `GET /v3/jobs/:guid`."""

    def __init__(
        self, store: Store, scheduler: Scheduler, faults: Faults, broker: ItRtBroker
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._faults = faults
        self._broker = broker

    def register(self, router: Router) -> None:
        """Add the jobs route (CC's jobs controller reads no query message)."""
        router.add("GET", f"/v3/jobs/{GUID}", self.show)

    def show(self, req: Request, guid: str) -> Response:
        """`GET /v3/jobs/:guid`."""
        with self._store.lock:
            job = self._store.jobs.get(guid)
            if job is None:
                raise not_found("Job")
            exists = job.resource_guid in self._store.bindings
            return Response(200, present.job(job, req.base_url, exists))

    # -- starting (callers hold store.lock) ----------------------------------------------

    def start_create(self, binding: Binding) -> Job:
        """A `service_bindings.create` job for a binding row in state `create initial`."""
        job: Job = self._store.add(
            Job(operation="service_bindings.create", resource_guid=binding.guid)
        )
        self._later(lambda: self._run_create(job, first=True))
        return job

    def start_delete(self, binding: Binding) -> Job:
        """A `service_bindings.delete` job; the binding row is untouched until it runs."""
        job: Job = self._store.add(
            Job(operation="service_bindings.delete", resource_guid=binding.guid)
        )
        self._later(lambda: self._run_delete(job, first=True))
        return job

    def _later(self, step: Callable[[], None], extra_s: float = 0.0) -> None:
        self._scheduler.call_later(self._store.options.job_steps_s + extra_s, step)

    # -- one run of a job (scheduler thread) -------------------------------------------

    def _run_create(self, job: Job, *, first: bool, rule: dict[str, Any] | None = None) -> None:
        """Run once; a fault rule is drawn on the first run and slows every later one."""
        if first:
            rule = self._faults.job(job.operation)
        delay = float((rule or {}).get("delay_s", 0))
        if delay > 0:  # the broker answers late: this run takes that much longer
            self._scheduler.call_later(delay, lambda: self._create_step(job, first, rule))
        else:
            self._create_step(job, first, rule)

    def _create_step(self, job: Job, first: bool, rule: dict[str, Any] | None) -> None:
        """One run of `CreateBindingAsyncJob#perform`."""
        with self._store.lock:
            binding = self._store.bindings.get(job.resource_guid or "")
            if binding is None:
                detail = f"The binding could not be found: {job.resource_guid}"
                self._fail(job, _error(10010, "CF-ResourceNotFound", detail))
                return
            op = binding.last_operation
            if op.type == "delete" and op.state in ("initial", "in progress"):
                self._fail(job, unable("create", f"{op.type} in progress"))
            elif first and rule and rule.get("timeout"):  # handle_timeout, then JobTimeout
                self._create_failed(binding, _timeout("bind"))
                self._fail(job, _error(290006, "CF-JobTimeout", _JOB_TIMEOUT))
            elif not first:  # an asynchronous broker's last operation succeeded
                self._create_succeeded(job, binding)
            else:
                self._bind(job, binding, rule)

    def _bind(self, job: Job, binding: Binding, rule: dict[str, Any] | None) -> None:
        """The first run: ask the broker (`ServiceBindingCreate#bind`)."""
        failure = _broker_failure(rule)
        if failure is None:
            try:  # the broker checks and registers the certificate when asked
                self._broker.bind(binding)
            except BrokerError as refusal:
                failure = f"Service broker error: {refusal}"
        options = self._store.options
        if failure is not None:  # a refusal is a synchronous 4xx/5xx answer
            self._create_failed(binding, failure)
            self._fail(job, unable("bind", failure))
        elif not options.broker_async:
            self._create_succeeded(job, binding)
        elif not options.bindings_retrievable:
            self._create_failed(binding, _NOT_RETRIEVABLE)
            detail = f"The service binding is invalid: {_NOT_RETRIEVABLE}"
            self._fail(job, _error(90001, "CF-ServiceBindingInvalid", detail))
        else:
            self._set_op(binding, "create", "in progress", None)
            self._poll_later(job, lambda: self._run_create(job, first=False, rule=rule))

    def _create_succeeded(self, job: Job, binding: Binding) -> None:
        self._set_op(binding, "create", "succeeded", None)
        binding.registered_at = time.monotonic()
        self._finish(job)

    def _create_failed(self, binding: Binding, description: str) -> None:
        binding.leaf_der = None
        self._set_op(binding, "create", "failed", description)

    def _run_delete(self, job: Job, *, first: bool, rule: dict[str, Any] | None = None) -> None:
        """Run once; a fault rule is drawn on the first run and slows every later one."""
        if first:
            rule = self._faults.job(job.operation)
        delay = float((rule or {}).get("delay_s", 0))
        if delay > 0:
            self._scheduler.call_later(delay, lambda: self._delete_step(job, first, rule))
        else:
            self._delete_step(job, first, rule)

    def _delete_step(self, job: Job, first: bool, rule: dict[str, Any] | None) -> None:
        with self._store.lock:
            binding = self._store.bindings.get(job.resource_guid or "")
            if binding is None:  # delete_binding_job.rb: a missing binding counts as done
                return self._finish(job)
            if first and rule and rule.get("timeout"):
                self._set_op(binding, "delete", "failed", _timeout("unbind"))
                return self._fail(job, _error(290006, "CF-JobTimeout", _JOB_TIMEOUT))
            op = binding.last_operation
            if first and not (op.type == "delete" and op.state == "in progress"):
                if op.type == "create" and op.state == "initial":
                    return self._fail(job, unable("unbind", _DELETE_REJECTED))
                failure = _broker_failure(rule)
                if failure is not None:
                    si = self._store.instances.get(binding.service_instance_guid)
                    name = si.name if si else binding.service_instance_guid
                    detail = (
                        "Service broker failed to delete service binding for instance "
                        f"{name}: {failure}"
                    )
                    self._set_op(binding, "delete", "failed", detail)
                    return self._fail(job, unable("unbind", detail))
                if self._store.options.broker_async:
                    self._set_op(binding, "delete", "in progress", None)
                    return self._poll_later(
                        job, lambda: self._run_delete(job, first=False, rule=rule)
                    )
            del self._store.bindings[binding.guid]
            return self._finish(job)

    # -- job and row bookkeeping (callers hold store.lock) -------------------------------

    def _poll_later(self, job: Job, step: Callable[[], None]) -> None:
        """The run ended unfinished: CC enqueues the job again, which makes it POLLING."""
        job.state = "POLLING"
        job.touch()
        self._later(step)

    def _finish(self, job: Job) -> None:
        job.state = "COMPLETE"
        job.touch()

    def _fail(self, job: Job, error: dict[str, Any]) -> None:
        job.state = "FAILED"
        job.errors = [error]
        job.touch()

    @staticmethod
    def _set_op(binding: Binding, op_type: str, state: str, description: str | None) -> None:
        binding.last_operation = LastOperation(
            type=op_type,
            state=state,
            description=description,
            created_at=binding.last_operation.created_at,
            updated_at=now(),
        )
        binding.touch()


_JOB_TIMEOUT = "The job execution has timed out."
_DELETE_REJECTED = (
    "The delete request was rejected due to an operation being in progress for the service binding."
)


def _timeout(verb: str) -> str:
    """`handle_timeout` of the create/delete jobs."""
    return f"Service Broker failed to {verb} within the required time."


def _broker_failure(rule: dict[str, Any] | None) -> str | None:
    """A `fail` rule: the broker refused with this description."""
    if rule and rule.get("fail"):
        return f"Service broker error: {rule.get('detail') or 'injected failure'}"
    return None
