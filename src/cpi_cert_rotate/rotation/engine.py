"""The rotation engine: one run of material, observe, decide, lock, set, test, promote, finish.

The steps (DESIGN.md):
  (1) material: validate the new chain and key completely; nothing is called before.
  (2) observe: resolve org, space, app, instance, bindings, env vars; no change.
  (3) decide: already current or not due -> stop here with zero writes, unless an earlier
      run left something to finish (`leftovers`); dry run -> plan. Refusals that can be
      known without writing (overlap on a CC too old, in-place impossible) end here too.
  (lock) take the app's lock (`lock`), then read everything again under it: a run that
      finished meanwhile must not be undone by a plan made from a stale reading. With an
      issuer instead of given material, (1) runs now: only a rotation that is due (and not
      a dry run) asks the issuer for a certificate.
  (4) set: register the new leaf through a binding, by strategy (overlap, swap, ...).
  (5) test: call the iFlow with the new chain and key over in-memory mTLS.
  (6) promote: one PATCH of chain and key, then a rolling deployment to DEPLOYED.
  (7) finish: delete every other binding, record the rotation on the app.
Every change in (4)-(6) has a compensation in the journal; any failure there undoes them
in reverse, and the app is then read again to say what state it is really in
(`aftermath`). Failures in (7) leave the new certificate live and say what remains. The
lock is released last, in every case.
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
from ..models import CertFacts, Outcome, PrivateKey, Report, RotationRequest, Strategy
from . import lock
from .aftermath import judge_rollback, read_fresh
from .annotations import AnnotationKeys, keys_of
from .context import ROLLBACK_BUDGET_S, RunContext
from .decide import Decision, decide, initial_strategy, plan_lines
from .finish import Cleanup, complete_earlier_run, record, remove_other_bindings
from .journal import Journal
from .leftovers import Leftovers, find_leftovers
from .new_material import issue_step, keep_out_of_errors, validate_step
from .observe import Observation, observe
from .promote import promote_like_the_seed, roll_out, set_env
from .register import register_new_leaf, require_in_place_possible
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

MIN_COMPLETION_S = 60.0
"""Completing an earlier run's leftovers gets at least this long (it waits for deployments)."""

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
) -> Report:
    """Run one rotation and report; never raises for a failure it can describe.

    `cancel` is set by the adapter on SIGINT/SIGTERM: the engine stops at the next safe
    point and undoes what it changed. `now` pins the clock for validity checks.
    `on_secret` is called with every secret the engine learns from Cloud Foundry (the
    app's *previous* key, read for rollback) before anything else can see it, so the
    Action can mask it too.
    """
    run = _Run(request, cancel or threading.Event(), client_factory, now)
    run.on_secret = on_secret or (lambda _secret: None)
    return run.execute()


class _Run:
    def __init__(
        self,
        request: RotationRequest,
        cancel: threading.Event,
        client_factory: ClientFactory,
        now: datetime | None,
    ) -> None:
        self.request = request
        self.cancel = cancel
        self.client_factory = client_factory
        self.now = now or datetime.now(UTC)
        self.run_id = request.run_id or f"run-{uuid.uuid4().hex[:12]}"
        self.journal = Journal()
        self.warnings: list[str] = []
        self.plan: tuple[str, ...] = ()
        self.new: CertFacts | None = None
        self.before: CertFacts | None = None
        self.strategy: Strategy | None = None
        self.leaf_pem: str | None = None
        self.key: PrivateKey | None = request.key
        self.deadline = time.monotonic() + request.timeout_s
        """The run's deadline on `time.monotonic()`; undo and finish get a budget beyond it."""
        self.on_secret: Callable[[str], None] = lambda _secret: None
        self.keys = AnnotationKeys()
        self.verified = False
        """Set when the test step's mTLS call with the new certificate succeeded."""
        self.issued: material.Validation | None = None
        """The validated certificate an issuer made for this run (before the lock)."""
        self.client: CfClient | None = None
        """The client the factory made for this run; closed when the run ends."""

    # -- the run ---------------------------------------------------------------------------

    def execute(self) -> Report:
        """The run; the client the factory made is closed at its end, whatever happens."""
        try:
            return self._execute()
        finally:
            if self.client is not None:
                self.client.close()

    def _execute(self) -> Report:
        try:
            self.keys = keys_of(self.request)  # before any call: CC would refuse a bad prefix
            validation = self._validate(self.request.chain) if self.request.chain else None
            client = self.client = self.client_factory(self.request)
            client.set_deadline(self.deadline)
            keep_out_of_errors(client, self.key)
            obs, decision = self._observe(client, "observe")
            stop = self._before_lock(obs, decision, validation)
        except InputError as error:
            return self._failure(Outcome.INVALID_INPUT, error)
        except RotationError as error:
            return self._failure(Outcome.FAILED, error)
        if stop is not None:
            return stop
        info = lock.LockInfo.new(self.run_id, self.request.timeout_s + lock.LOCK_MARGIN_S)
        try:
            with self.journal.step("lock") as notes:
                held = lock.acquire(client, obs.space_guid, obs.app.name, info)
                notes.append(f"{held.name} created")
                obs, decision = self._observe(client, None, obs)  # fresh, under the lock
                notes.append("state read again under the lock")
        except lock.Locked as error:
            return self._failure(Outcome.FAILED, error)
        except RotationError as error:
            # The create may have landed although its answer was lost: take it back, so
            # that the next run is not blocked until it expires.
            client.set_deadline(time.monotonic() + RELEASE_BUDGET_S)
            note = lock.release_token_quietly(client, obs.space_guid, obs.app.name, info)
            self.warnings += [note] if note else []
            return self._failure(Outcome.FAILED, error)
        report: Report | None = None
        try:
            report = self._locked(client, obs, decision, validation)
        finally:
            client.set_deadline(time.monotonic() + RELEASE_BUDGET_S)
            note = lock.release_quietly(client, held)
            if report is not None and note:
                report = dataclasses.replace(report, warnings=(*report.warnings, note))
        return report

    def _before_lock(
        self, obs: Observation, decision: Decision, validation: material.Validation | None
    ) -> Report | None:
        """The report when the run ends before any write; None when it must go on."""
        leftovers = find_leftovers(obs, self.keys)
        self.warnings += leftovers.notes
        if decision.outcome is not None:
            if _to_complete(leftovers, decision.outcome) and not self.request.dry_run:
                return None  # finish what an earlier run left, under the lock
            self.warnings += [f"left by an earlier run: {line}" for line in leftovers.describe()]
            self.journal.skip("decide", decision.why)
            return self._report(decision.outcome)
        if validation is None and self.request.issuer is None:  # a check: nothing to plan
            self.plan = plan_lines(self.request, obs, Strategy.AUTO, None)
            self.warnings += [f"left by an earlier run: {line}" for line in leftovers.describe()]
            due = (
                decision.why
                if decision.live is None
                else "renew-before says a rotation is due"
                if self.request.renew_before is not None
                else "give renew-before to learn whether a rotation is due"
            )
            self.journal.skip("decide", f"check only, no new certificate given: {due}")
            return self._report(Outcome.DRY_RUN)
        leaf = validation.leaf if validation is not None else None
        self.strategy = self._strategy(obs, leaf)
        self.plan = plan_lines(self.request, obs, self.strategy, self.new)
        if self.request.dry_run:
            self.warnings += [f"left by an earlier run: {line}" for line in leftovers.describe()]
            self.journal.skip("decide", f"dry run: would rotate ({decision.why})")
            return self._report(Outcome.DRY_RUN)
        if validation is None:  # an issuer: asked only now that a rotation is due
            self.issued = self._issue(obs)
            self.strategy = self._strategy(obs, self.issued.leaf)
            self.plan = plan_lines(self.request, obs, self.strategy, self.new)
        return None

    def _strategy(self, obs: Observation, leaf: x509.Certificate | None) -> Strategy:
        """The strategy to start with; refusals known without writing are raised here."""
        strategy = initial_strategy(self.request, obs, leaf)
        if strategy is Strategy.IN_PLACE and leaf is not None:
            require_in_place_possible(obs, leaf)
        if self.request.strategy is Strategy.OVERLAP and not obs.supports_strategy:
            version = ".".join(map(str, obs.api_version))
            raise InputError(
                f"strategy overlap is not possible here: the Cloud Controller API is {version}; "
                "binding strategy `multiple` needs 3.205.0 or later",
                code="overlap-unavailable",
                fix="Use `strategy: auto` (falls back to swap) or ask the platform team for "
                "a Cloud Controller of 3.205.0 or later.",
            )
        return strategy

    def _locked(
        self,
        client: CfClient,
        obs: Observation,
        decision: Decision,
        validation: material.Validation | None,
    ) -> Report:
        """Everything after the lock was taken, from the state read under it."""
        try:
            leftovers = find_leftovers(obs, self.keys)
            if decision.outcome is not None:
                if not _to_complete(leftovers, decision.outcome):
                    self.journal.skip("decide", f"{decision.why} (found under the lock)")
                    return self._report(decision.outcome)
                return self._complete_earlier_run(client, obs, decision.outcome, leftovers)
            validation = validation or self.issued
            assert validation is not None
            keep_out_of_errors(client, self.key)
            self.strategy = self._strategy(obs, validation.leaf)
            self.plan = plan_lines(self.request, obs, self.strategy, self.new)
        except InputError as error:
            return self._failure(Outcome.INVALID_INPUT, error)
        except RotationError as error:
            return self._failure(Outcome.FAILED, error)
        assert self.key is not None
        assert self.new is not None
        ctx = RunContext(
            client=client,
            request=self.request,
            obs=obs,
            journal=self.journal,
            deadline=self.deadline,
            new_leaf=validation.leaf,
            new_facts=self.new,
            env_chain=material.env_chain_pem(validation, keep_root=self.request.keep_root),
            new_key=self.key,
            key_pem=material.key_pkcs8_pem(self.key),
            cancel=self.cancel,
        )
        try:
            self._forward(ctx)
        except (Exception, KeyboardInterrupt) as error:
            return self._undo(ctx, error)
        finally:
            self.warnings += ctx.warnings
            ctx.warnings.clear()
        return self._finish(ctx)

    # -- steps (1)-(3) -------------------------------------------------------------------

    def _issue(self, obs: Observation) -> material.Validation:
        """Step (1) for an issuer (`new_material.issue_step`), then its validation."""
        chain, self.key, warnings = issue_step(self.journal, self.request, obs, self.on_secret)
        self.warnings += warnings
        return self._validate(chain)

    def _validate(self, chain: tuple[x509.Certificate, ...]) -> material.Validation:
        """Step (1): the new material, completely, before any change in Cloud Foundry."""
        assert self.key is not None
        validation, warnings = validate_step(self.journal, chain, self.key, self.request, self.now)
        self.warnings += warnings
        self.new = material.facts(validation.leaf)
        self.leaf_pem = material.leaf_pem(validation.leaf)
        return validation

    def _observe(
        self, client: CfClient, step: str | None, previous: Observation | None = None
    ) -> tuple[Observation, Decision]:
        """Steps (2) and (3): read the landscape, then decide; no write.

        `step` names the journal step (None: part of the step that is running); `previous`
        the reading this one renews (under the lock).
        """
        if step is None:
            obs = self._read(client, previous)
        else:
            with self.journal.step(step) as notes:
                obs = self._read(client, previous)
                version = ".".join(map(str, obs.api_version))
                notes.append(f"CC API {version}, {len(obs.bindings)} binding(s)")
        decision = decide(self.request, obs, self.new, self.now)
        self.warnings += [*obs.warnings, *decision.warnings]
        self.before = decision.live.facts if decision.live else None
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

    # -- steps (4)-(6) and their undo ----------------------------------------------------

    def _forward(self, ctx: RunContext) -> None:
        assert self.strategy is not None
        ctx.check_cancel()
        prepare_test_call(ctx)
        with self.journal.step("set", f"strategy {self.strategy}") as notes:
            binding, self.strategy = register_new_leaf(ctx, self.strategy)
            ctx.kept_binding = binding
            notes.append(f"binding {binding.guid} holds the new leaf ({self.strategy})")
        ctx.check_cancel()
        url = verification_url(ctx, binding)
        if url is None:
            self.journal.skip("test", "NOT TESTED: no verify-path or verify-url given")
            ctx.warnings.append(UNPROVEN)
        else:
            with self.journal.step("test") as notes:
                notes.append(verify_new_certificate(ctx, url))
            self.verified = True
        ctx.check_cancel()
        if self.strategy is Strategy.RESTAGE:
            with self.journal.step("promote", "two env calls and a restage, as the seed"):
                promote_like_the_seed(ctx)
            return
        with self.journal.step("promote", "chain and key in one call"):
            set_env(ctx)
        with self.journal.step("deploy") as notes:
            deployment = roll_out(ctx)
            notes.append(f"deployment {deployment.guid} {deployment.state}/{deployment.reason}")

    def _undo(self, ctx: RunContext, error: BaseException) -> Report:
        """Undo in reverse, then read the app again: the report says what *is* there."""
        changed = self.journal.changed
        log.error("rotation failed: %s", error)
        ctx.client.set_deadline(ctx.rollback_deadline())  # undoing may run past the deadline
        outcome_of_rollback = self.journal.rollback()
        self.warnings += ctx.warnings
        ctx.warnings.clear()
        if not changed:
            nothing = Outcome.INVALID_INPUT if isinstance(error, InputError) else Outcome.FAILED
            return self._failure(nothing, error)
        fresh = read_fresh(ctx.client, ctx.obs, self.request, ctx.rollback_deadline())
        verdict = judge_rollback(fresh, ctx.obs, self.request, ctx.new_leaf)
        if verdict.restored:
            if not outcome_of_rollback.complete:
                self.warnings.append(
                    "an undo step failed ("
                    + "; ".join(outcome_of_rollback.state_left)
                    + "), but reading the app again shows it as the run found it"
                )
            return self._failure(Outcome.ROLLED_BACK, error)
        return self._failure(
            Outcome.ROLLBACK_INCOMPLETE,
            error,
            state_left=verdict.state_left,
            manual_actions=verdict.manual_actions,
        )

    # -- step (7) ----------------------------------------------------------------------------

    def _finish(self, ctx: RunContext) -> Report:
        """Step (7): the new certificate is live; remove the other bindings, record it."""
        ctx.client.set_deadline(ctx.rollback_deadline())  # finishing beats leaving a mess
        cleanup = Cleanup()
        keep = ctx.kept_binding.guid if ctx.kept_binding else ""
        assert self.new is not None
        new = self.new
        with self.journal.step("finish") as notes:
            remove_other_bindings(
                ctx.client,
                ctx.obs.app.guid,
                ctx.obs.instance.guid,
                keep=keep,
                deadline=ctx.rollback_deadline(),
                cleanup=cleanup,
                meanwhile=lambda: record(
                    ctx.client, ctx.obs.app.guid, self.keys, new, run_id=self.run_id,
                    cleanup=cleanup,
                ),
                known=ctx.obs.bindings,
            )  # fmt: skip
            notes.extend(cleanup.notes)
        self.warnings += cleanup.warnings
        new_guid = ctx.new_binding.guid if ctx.new_binding else None
        if cleanup.state_left:
            return self._report(
                Outcome.CLEANUP_INCOMPLETE,
                binding_guid=new_guid,
                deployment_guid=ctx.deployment_guid,
                error="the new certificate is live, but an old binding could not be deleted",
                state_left=tuple(cleanup.state_left),
                manual_actions=tuple(cleanup.manual_actions),
            )
        return self._report(
            Outcome.ROTATED, binding_guid=new_guid, deployment_guid=ctx.deployment_guid
        )

    def _complete_earlier_run(
        self, client: CfClient, obs: Observation, outcome: Outcome, leftovers: Leftovers
    ) -> Report:
        """The certificate asked for is live, but an earlier run left things: finish them.

        Active deployments are waited for and, unless a rotation record names the live
        certificate (its run reached the finish step, so after its deployment), the env is
        deployed first: an old binding may go only once no instance can still use it.
        """
        deadline = max(self.deadline, time.monotonic() + MIN_COMPLETION_S)
        client.set_deadline(deadline + ROLLBACK_BUDGET_S)
        cleanup = Cleanup()
        self.warnings += [f"left by an earlier run: {line}" for line in leftovers.describe()]
        try:
            why = "completing what an earlier run left" if leftovers else "recording it"
            with self.journal.step("finish", why) as notes:
                complete_earlier_run(
                    client, obs, leftovers, self.request, self.keys, run_id=self.run_id,
                    deadline=deadline, cleanup=cleanup,
                )  # fmt: skip
                notes.extend(cleanup.notes)
        except RotationError as error:
            return self._failure(
                Outcome.CLEANUP_INCOMPLETE,
                error,
                state_left=(*leftovers.describe(), *cleanup.state_left),
                manual_actions=tuple(cleanup.manual_actions),
            )
        self.warnings += cleanup.warnings
        if cleanup.state_left:
            return self._report(
                Outcome.CLEANUP_INCOMPLETE,
                error="the live certificate is right, but what an earlier run left could not "
                "all be removed",
                state_left=tuple(cleanup.state_left),
                manual_actions=tuple(cleanup.manual_actions),
            )
        if leftovers:
            self.warnings.append("what an earlier run left was completed (see the finish step)")
        return self._report(outcome)

    # -- the lock ------------------------------------------------------------------------------

    # -- the report ----------------------------------------------------------------------------

    def _failure(
        self,
        outcome: Outcome,
        error: BaseException,
        *,
        state_left: tuple[str, ...] = (),
        manual_actions: tuple[str, ...] = (),
    ) -> Report:
        if isinstance(error, RotationError):
            message, hint = str(error), error.hint()
            code = getattr(error, "code", None)
            code = code if isinstance(code, str) else _kebab(type(error).__name__)
        elif isinstance(error, KeyboardInterrupt):
            message, hint, code = "interrupted", "The run was interrupted.", "cancelled"
        else:
            message = f"internal error ({type(error).__name__}): {error}"
            hint, code = message, "internal-error"
            log.exception("internal error", exc_info=error)
        return self._report(
            outcome,
            error=message,
            error_code=code,
            hint=hint,
            state_left=state_left,
            manual_actions=manual_actions,
        )

    def _report(
        self,
        outcome: Outcome,
        *,
        binding_guid: str | None = None,
        deployment_guid: str | None = None,
        error: str | None = None,
        error_code: str | None = None,
        hint: str | None = None,
        state_left: tuple[str, ...] = (),
        manual_actions: tuple[str, ...] = (),
    ) -> Report:
        return Report(
            outcome=outcome,
            target=self.request.target,
            strategy=self.strategy,
            before=self.before,
            new=self.new,
            binding_guid=binding_guid,
            deployment_guid=deployment_guid,
            steps=self.journal.steps,
            warnings=tuple(dict.fromkeys(self.warnings)),
            plan=self.plan,
            error=error,
            error_code=error_code,
            hint=hint,
            state_left=state_left,
            manual_actions=manual_actions,
            leaf_pem=self.leaf_pem,
            finished_at=datetime.now(UTC),
            verified=self.verified,
        )


def _to_complete(leftovers: Leftovers, outcome: Outcome) -> bool:
    """Whether a run that changes nothing itself must still finish an earlier one: with the
    certificate asked for live, even a missing record is written."""
    return bool(leftovers) or (outcome is Outcome.ALREADY_CURRENT and leftovers.unrecorded)


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
