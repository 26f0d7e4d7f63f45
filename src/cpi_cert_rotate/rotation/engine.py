"""The rotation engine: one run of material, observe, decide, lock, set, test, promote, finish.

The steps, as the journal names them:
  (1) material: validate the new chain and key completely; nothing is called before.
  (2) observe: resolve org, space, app, instance, bindings, env vars; no change.
  (3) decide: already current or not due -> stop here with zero writes, unless an earlier
      run left something to finish (`leftovers`); dry run -> plan. The strategy is chosen
      (`strategies.select`) and refusals that can be known without writing end here too.
  (lock) take the app's lock (`lock`), then read everything again under it: a run that
      finished meanwhile must not be undone by a plan made from a stale reading. With an
      issuer instead of given material, (1) runs before the lock, and only for a rotation
      that is due (and not a dry run): only then is the issuer asked for a certificate.
  (4) set: register the new leaf through a binding, as the strategy does it.
  (5) test: call the iFlow with the new chain and key over in-memory mTLS.
  (6) promote: as the strategy does it (one PATCH of chain and key, a rolling deployment);
      for a stopped app the PATCH only, whatever the strategy: a deployment, restage or
      restart would start it (`promote.promote_stopped`).
  (7) finish: delete every other binding, record the rotation on the app.
Every change in (4)-(6) has a compensation in the journal; any failure there undoes them
in reverse, and the app is then read again to say what state it is really in
(`aftermath`); both wait out a UAA or Cloud Controller outage within the rollback's budget
(`cf/outage.py`; a POST is not sent again).
Failures in (7) leave the new certificate live and say what remains. The lock is
released last, in every case. What the report will say has one owner, `record.RunRecord`;
the steps return what they found.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography import x509

from .. import material
from ..cf import CfClient
from ..errors import InputError, RotationError
from ..models import CertFacts, Outcome, PrivateKey, Report, RotationRequest, StepEvent
from . import lock
from .aftermath import judge_rollback, read_fresh
from .annotations import AnnotationKeys, keys_of
from .context import RunContext
from .decide import Decision, decide, plan_lines
from .finish import complete_earlier_run, finish_rotation
from .journal import Journal
from .leftovers import Leftovers, find_leftovers
from .new_material import NewMaterial, issue_step, keep_out_of_errors, validate_step
from .observe import Observation, observe
from .promote import promote_stopped
from .record import RunRecord
from .strategies import Registered, RotationStrategy, register_new_leaf, registry, select
from .verify import prepare as prepare_test_call
from .verify import verification_url, verify_new_certificate

log = logging.getLogger(__name__)

UNPROVEN = (
    "NOTHING PROVED THAT THE NEW CERTIFICATE WORKS: no verify-path or verify-url was given, "
    "so no call with the new chain and key reached the iFlow before promotion. The chain "
    "was checked offline (complete, trusted root), but only Cloud Integration decides; "
    "give verify-path to gate promotion on a real mTLS call"
)
"""The warning of a rotation without a test call (the report also says `verified: false`)."""

RELEASE_BUDGET_S = 60.0
"""Releasing the lock may take this long, whatever the run's own deadline."""

ClientFactory = Callable[[RotationRequest], CfClient]


def _default_client(request: RotationRequest) -> CfClient:
    return CfClient(request.target.api_url, request.auth, timeout_s=30.0)


def rotate(
    request: RotationRequest,
    *,
    cancel: threading.Event | None = None,
    client_factory: ClientFactory = _default_client,
    now: datetime | None = None,
    on_secret: Callable[[str], None] | None = None,
    on_step: Callable[[StepEvent], None] | None = None,
) -> Report:
    """Run one rotation and report; never raises for a failure it can describe.

    `cancel` is set by the adapter on SIGINT/SIGTERM: the engine stops at the next safe
    point and undoes what it changed. `now` pins the clock for validity checks.
    `on_secret` is called with every secret the engine learns from Cloud Foundry (the
    app's *previous* key, read for rollback) before anything else can see it, so the
    Action can mask it too. `on_step` hears each step start and end (`StepEvent`).
    """
    record = RunRecord(request, Journal(on_step=on_step))
    try:
        keys = keys_of(request)  # before any call: CC would refuse a bad prefix
    except InputError as error:
        return record.failure(Outcome.INVALID_INPUT, error)
    run = _Run(
        request,
        record,
        keys,
        cancel=cancel or threading.Event(),
        client_factory=client_factory,
        now=now or datetime.now(UTC),
        on_secret=on_secret or (lambda _secret: None),
        run_id=request.run_id or f"run-{uuid.uuid4().hex[:12]}",
        deadline=time.monotonic() + request.timeout_s,
    )
    return run.execute()


@dataclasses.dataclass(frozen=True)
class _Run:
    """One run's settings (fixed) and its record (the one thing that changes)."""

    request: RotationRequest
    record: RunRecord
    keys: AnnotationKeys
    cancel: threading.Event
    client_factory: ClientFactory
    now: datetime
    on_secret: Callable[[str], None]
    run_id: str
    deadline: float
    """The run's deadline on `time.monotonic()`; undo and finish get a budget beyond it."""

    # -- before the lock: (1)-(3), no write ----------------------------------------------

    def execute(self) -> Report:
        """The run; the client the factory made is closed at its end, whatever happens."""
        record = self.record
        try:
            given = self._validate(self.request.chain, self.request.key)
            client = self.client_factory(self.request)
        except InputError as error:
            return record.failure(Outcome.INVALID_INPUT, error)
        except RotationError as error:
            return record.failure(Outcome.FAILED, error)
        try:
            return self._with(client, given)
        finally:
            client.close()

    def _with(self, client: CfClient, given: NewMaterial | None) -> Report:
        record = self.record
        try:
            client.set_deadline(self.deadline)
            keep_out_of_errors(client, self.request.key)
            obs, decision = self._observe(client, "observe", given)
            stop = self._before_lock(obs, decision, given)
            new = given
            if stop is None and new is None and decision.outcome is None:
                new = self._issue(obs)  # an issuer: asked only now that a rotation is due
                self._choose(obs, new)
        except InputError as error:
            return record.failure(Outcome.INVALID_INPUT, error)
        except RotationError as error:
            return record.failure(Outcome.FAILED, error)
        if stop is not None:
            return stop
        return self._under_lock(client, obs, new)

    def _before_lock(
        self, obs: Observation, decision: Decision, given: NewMaterial | None
    ) -> Report | None:
        """The report when the run ends before any write; None when it must go on."""
        record, journal = self.record, self.record.journal
        leftovers = find_leftovers(obs, self.keys)
        record.warnings += leftovers.notes
        if decision.outcome is not None:
            if _to_complete(leftovers, decision.outcome) and not self.request.dry_run:
                return None  # finish what an earlier run left, under the lock
            record.earlier_run_left(leftovers.describe())
            journal.skip("decide", decision.why)
            return record.report(decision.outcome)
        if given is None and self.request.issuer is None:  # a check: nothing to plan
            record.plan = plan_lines(self.request, obs, None, None)
            record.earlier_run_left(leftovers.describe())
            due = (
                decision.why
                if decision.live is None
                else "renew-before says a rotation is due"
                if self.request.renew_before is not None
                else "give renew-before to learn whether a rotation is due"
            )
            journal.skip("decide", f"check only, no new certificate given: {due}")
            return record.report(Outcome.DRY_RUN)
        self._choose(obs, given)
        if self.request.dry_run:
            record.earlier_run_left(leftovers.describe())
            journal.skip("decide", f"dry run: would rotate ({decision.why})")
            return record.report(Outcome.DRY_RUN)
        return None

    def _choose(self, obs: Observation, new: NewMaterial | None) -> RotationStrategy:
        """The strategy and its plan (`new` None: not issued yet); refusals known without
        writing are raised here."""
        leaf = new.leaf if new is not None else None
        strategy = select(self.request, obs, leaf)
        strategy.check(self.request, obs, leaf)
        self.record.strategy = strategy.name
        self.record.plan = plan_lines(self.request, obs, strategy, self.record.new)
        return strategy

    def _issue(self, obs: Observation) -> NewMaterial:
        """Step (1) for an issuer (`new_material.issue_step`), then its validation."""
        issued = issue_step(
            self.record.journal, self.request, obs, self.on_secret, self.record.warnings
        )
        new = self._validate(issued.chain, issued.key)
        assert new is not None
        return new

    def _validate(
        self, chain: tuple[x509.Certificate, ...], key: PrivateKey | None
    ) -> NewMaterial | None:
        """Step (1): the new material, completely, before any change in Cloud Foundry."""
        if not chain:
            return None
        assert key is not None
        new = validate_step(self.record.journal, chain, key, self.request, self.now)
        self.record.warnings += new.warnings
        self.record.new = material.facts(new.leaf)
        self.record.leaf_pem = material.leaf_pem(new.leaf)
        return new

    def _observe(
        self,
        client: CfClient,
        step: str | None,
        new: NewMaterial | None,
        previous: Observation | None = None,
    ) -> tuple[Observation, Decision]:
        """Steps (2) and (3): read the landscape, then decide; no write.

        `step` names the journal step (None: part of the step that is running); `previous`
        the reading this one renews (under the lock).
        """
        if step is None:
            obs = self._read(client, previous)
        else:
            with self.record.journal.step(step) as notes:
                obs = self._read(client, previous)
                version = ".".join(map(str, obs.api_version))
                notes.append(f"CC API {version}, {len(obs.bindings)} binding(s)")
        facts: CertFacts | None = material.facts(new.leaf) if new is not None else None
        decision = decide(self.request, obs, facts, self.now)
        self.record.warnings += [*obs.warnings, *decision.warnings]
        self.record.before = decision.live.facts if decision.live else None
        self.record.app_stopped = obs.app.stopped
        return obs, decision

    def _read(self, client: CfClient, previous: Observation | None) -> Observation:
        obs = observe(
            client,
            self.request.target,
            chain_env_var=self.request.chain_env_var,
            now=self.now,
            previous=previous,
        )
        previous_key = obs.env.get(self.request.key_env_var)
        if previous_key:
            self.on_secret(previous_key)
            client.add_secrets(previous_key, *material.secret_lines((previous_key,)))
        return obs

    # -- the lock ------------------------------------------------------------------------

    def _under_lock(self, client: CfClient, obs: Observation, new: NewMaterial | None) -> Report:
        """Take the lock, read again under it, go on from that reading; release it last."""
        record = self.record
        info = lock.LockInfo.new(self.run_id, self.request.timeout_s + lock.LOCK_MARGIN_S)
        try:
            with record.journal.step("lock") as notes:
                held = lock.acquire(client, obs.space_guid, obs.app.name, info)
                notes.append(f"{held.name} created")
                obs, decision = self._observe(client, None, new, obs)  # fresh, under the lock
                notes.append("state read again under the lock")
        except lock.Locked as error:
            return record.failure(Outcome.FAILED, error)
        except RotationError as error:
            # The create may have landed although its answer was lost: take it back, so
            # that the next run is not blocked until it expires.
            client.set_deadline(time.monotonic() + RELEASE_BUDGET_S)
            note = lock.release_token_quietly(client, obs.space_guid, obs.app.name, info)
            record.warnings += [note] if note else []
            return record.failure(Outcome.FAILED, error)
        report: Report | None = None
        try:
            report = self._locked(client, obs, decision, new)
        finally:
            client.set_deadline(time.monotonic() + RELEASE_BUDGET_S)
            note = lock.release_quietly(client, held)
            if report is not None and note:
                report = dataclasses.replace(report, warnings=(*report.warnings, note))
        return report

    def _locked(
        self, client: CfClient, obs: Observation, decision: Decision, new: NewMaterial | None
    ) -> Report:
        """Everything after the lock was taken, from the state read under it."""
        record = self.record
        try:
            leftovers = find_leftovers(obs, self.keys)
            if decision.outcome is not None:
                if not _to_complete(leftovers, decision.outcome):
                    record.journal.skip("decide", f"{decision.why} (found under the lock)")
                    return record.report(decision.outcome)
                return self._complete(client, obs, decision.outcome, leftovers)
            assert new is not None
            keep_out_of_errors(client, new.key)
            strategy = self._choose(obs, new)
        except InputError as error:
            return record.failure(Outcome.INVALID_INPUT, error)
        except RotationError as error:
            return record.failure(Outcome.FAILED, error)
        assert record.new is not None
        ctx = RunContext(
            client=client,
            request=self.request,
            obs=obs,
            journal=record.journal,
            deadline=self.deadline,
            new_leaf=new.leaf,
            new_facts=record.new,
            env_chain=material.env_chain_pem(new.validation, keep_root=self.request.keep_root),
            new_key=new.key,
            key_pem=material.key_pkcs8_pem(new.key),
            warnings=record.warnings,
            cancel=self.cancel,
        )
        try:
            registered = self._forward(ctx, strategy)
        except (Exception, KeyboardInterrupt) as error:
            return self._undo(ctx, error)
        return finish_rotation(ctx, registered, record, self.keys, run_id=self.run_id)

    def _complete(
        self, client: CfClient, obs: Observation, outcome: Outcome, leftovers: Leftovers
    ) -> Report:
        """The certificate asked for is live, but an earlier run left things: finish them."""
        return complete_earlier_run(
            client, obs, leftovers, self.record, self.keys,
            outcome=outcome, run_id=self.run_id, deadline=self.deadline,
        )  # fmt: skip

    # -- steps (4)-(6) and their undo ----------------------------------------------------

    def _forward(self, ctx: RunContext, strategy: RotationStrategy) -> Registered:
        journal = ctx.journal
        ctx.check_cancel()
        prepare_test_call(ctx)
        with journal.step("set", f"strategy {strategy.name}") as notes:
            registered = register_new_leaf(strategy, ctx)
            self.record.strategy = used = registered.used
            notes.append(f"binding {registered.binding.guid} holds the new leaf ({used})")
        ctx.check_cancel()
        url = verification_url(ctx, registered.binding)
        if url is None:
            journal.skip("test", "NOT TESTED: no verify-path or verify-url given")
            ctx.warnings.append(UNPROVEN)
        else:
            with journal.step("test") as notes:
                notes.append(verify_new_certificate(ctx, url))
            self.record.verified = True
        ctx.check_cancel()
        if ctx.obs.app.stopped:
            self.record.app_stopped = promote_stopped(ctx)
        else:
            registry()[registered.used].promote(ctx)
        return registered

    def _undo(self, ctx: RunContext, error: BaseException) -> Report:
        """Undo in reverse, then read the app again: the report says what *is* there."""
        record = self.record
        changed = record.journal.changed
        log.error("rotation failed: %s", error)
        ctx.client.set_deadline(ctx.rollback_deadline())  # undoing may run past the deadline
        if not self.cancel.is_set():
            # Undoing (and reading the app again) waits out a UAA or Cloud Controller
            # outage within its budget (calls safe to repeat only: a POST is sent once);
            # SIGINT/SIGTERM end that wait. A rollback the signal itself started does not
            # wait: the runner kills the job seconds later, and the report must be out.
            ctx.client.wait_out_outages(self.cancel)
        outcome_of_rollback = record.journal.rollback()
        if not changed:
            nothing = Outcome.INVALID_INPUT if isinstance(error, InputError) else Outcome.FAILED
            return record.failure(nothing, error)
        fresh = read_fresh(ctx.client, ctx.obs, self.request, ctx.rollback_deadline())
        verdict = judge_rollback(fresh, ctx.obs, self.request, ctx.new_leaf)
        if verdict.restored:
            if not outcome_of_rollback.complete:
                record.warnings.append(
                    "an undo step failed ("
                    + "; ".join(outcome_of_rollback.state_left)
                    + "), but reading the app again shows it as the run found it"
                )
            return record.failure(Outcome.ROLLED_BACK, error)
        return record.failure(
            Outcome.ROLLBACK_INCOMPLETE,
            error,
            state_left=verdict.state_left,
            manual_actions=verdict.manual_actions,
        )


def _to_complete(leftovers: Leftovers, outcome: Outcome) -> bool:
    """Whether a run that changes nothing itself must still finish an earlier one: with the
    certificate asked for live, even a missing record is written."""
    return bool(leftovers) or (outcome is Outcome.ALREADY_CURRENT and leftovers.unrecorded)
