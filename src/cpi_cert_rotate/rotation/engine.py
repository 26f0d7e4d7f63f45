"""The rotation engine: one run of material, observe, decide, set, test, promote, finish.

The steps (DESIGN.md):
  (1) material: validate the new chain and key completely; nothing is called before.
  (2) observe: resolve org, space, app, instance, bindings, env vars; no change.
  (3) decide: already current or not due -> stop here with zero writes; dry run -> plan.
      With an issuer instead of given material, (1) runs here: only a rotation that is
      due (and not a dry run) asks the issuer for a certificate.
  (4) set: register the new leaf through a binding, by strategy (overlap, swap, ...).
  (5) test: call the iFlow with the new chain and key over in-memory mTLS.
  (6) promote: one PATCH of chain and key, then a rolling deployment to DEPLOYED.
  (7) finish: delete the old binding(s), annotate the app, release the lock.
Every change in (4)-(6) has a compensation in the journal; any failure there undoes them
in reverse. Failures in (7) leave the new certificate live and say what remains.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography import x509

from .. import material
from ..cf import Binding, CfClient
from ..errors import InputError, RotationError
from ..models import CertFacts, Outcome, PrivateKey, Report, RotationRequest, Strategy
from . import lock
from .annotations import AnnotationKeys, keys_of
from .context import RunContext
from .decide import Decision, decide, initial_strategy, plan_lines
from .journal import Compensation, Journal
from .observe import Observation, observe
from .promote import roll_out, set_env, set_env_like_the_seed
from .register import (
    delete_binding_when_settled,
    register_new_leaf,
    require_in_place_possible,
)
from .verify import verification_url, verify_new_certificate

log = logging.getLogger(__name__)

UNPROVEN = (
    "NOTHING PROVED THAT THE NEW CERTIFICATE WORKS: no verify-path or verify-url was given, "
    "so no call with the new chain and key reached the iFlow before promotion. The chain "
    "was checked offline (complete, trusted root), but only Cloud Integration decides; "
    "give verify-path to gate promotion on a real mTLS call"
)
"""The warning of a rotation without a test call (the report also says `verified: false`)."""

CLEANUP_ATTEMPTS = 2
"""An old binding's delete is tried twice: a failed broker job is often transient."""

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

    def execute(self) -> Report:
        try:
            self.keys = keys_of(self.request)  # before any call: CC would refuse a bad prefix
            client, obs, decision, validation = self._prepare()
            stop = self._plan(obs, decision, validation)
        except InputError as error:
            return self._failure(Outcome.INVALID_INPUT, error)
        except RotationError as error:
            return self._failure(Outcome.FAILED, error)
        if stop is not None:
            return stop
        assert validation is not None
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
        return self._change(ctx, decision)

    def _plan(
        self, obs: Observation, decision: Decision, validation: material.Validation | None
    ) -> Report | None:
        """Strategy and plan; the report when the run ends here, without any change."""
        if decision.outcome is not None:
            self.journal.skip("decide", decision.why)
            return self._report(decision.outcome)
        if validation is None and self.request.issuer is None:  # a check: nothing to plan
            self.plan = plan_lines(self.request, obs, Strategy.AUTO, None)
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
        self.strategy = initial_strategy(self.request, obs, leaf)
        if self.strategy is Strategy.IN_PLACE and leaf is not None:
            require_in_place_possible(obs, leaf)
        self.plan = plan_lines(self.request, obs, self.strategy, self.new)
        if self.request.dry_run or validation is None:
            self.journal.skip("decide", f"dry run: would rotate ({decision.why})")
            return self._report(Outcome.DRY_RUN)
        return None

    def _prepare(self) -> tuple[CfClient, Observation, Decision, material.Validation | None]:
        """Steps (1)-(3). Validation is None only for a dry run with an issuer or with
        no new certificate at all (a check of the live one)."""
        issuer = self.request.issuer
        validation = self._validate(self.request.chain) if self.request.chain else None
        client = self.client_factory(self.request)
        client.set_deadline(self.deadline)
        self._keep_out_of_errors(client, self.key)
        obs, decision = self._observe(client)
        if decision.outcome is None and issuer is not None and not self.request.dry_run:
            validation = self._issue(obs)
            self._keep_out_of_errors(client, self.key)
        return client, obs, decision, validation

    @staticmethod
    def _keep_out_of_errors(client: CfClient, key: PrivateKey | None) -> None:
        """Every spelling of the new key is cut from Cloud Foundry's error texts."""
        if key is not None:
            forms = material.secret_forms(key)
            client.add_secrets(*forms, *material.secret_lines(forms))

    def _issue(self, obs: Observation) -> material.Validation:
        """Step (1) for an issuer: a certificate for a key made here, then validated.

        The CSR copies the subject of the certificate instances present now, so that a
        renewal keeps the DN that CPI and an iFlow's subject check compare.
        """
        issuer = self.request.issuer
        assert issuer is not None
        live = obs.env_leaf or obs.registered.leaf
        with self.journal.step("issue", issuer.describe()) as notes:
            issued = issuer.issue(copy_subject_from=live, on_secret=self.on_secret)
            for form in material.secret_forms(issued.key):
                self.on_secret(form)
            notes.append(f"serial {issued.chain[0].serial_number:x}")
        if live is not None and issued.chain[0].subject != live.subject:
            self.warnings.append(
                f"the issued certificate's subject ({issued.chain[0].subject.rfc4514_string()}) "
                f"differs from the live one ({live.subject.rfc4514_string()}); an iFlow that "
                "authorises by subject DN must be updated (the issuer's role sets O, OU, C)"
            )
        self.key = issued.key
        return self._validate(issued.chain)

    def _validate(self, chain: tuple[x509.Certificate, ...]) -> material.Validation:
        """Step (1): the new material, completely, before any change in Cloud Foundry."""
        assert self.key is not None
        with self.journal.step("material"):
            validation = material.validate(
                chain,
                self.key,
                now=self.now,
                trusted_roots=self.request.trusted_roots,
                warn_days=self.request.warn_days,
            )
            material.raise_for_problems(validation)
        self.warnings += [p.message for p in validation.warnings]
        self.new = material.facts(validation.leaf)
        self.leaf_pem = material.leaf_pem(validation.leaf)
        return validation

    def _observe(self, client: CfClient) -> tuple[Observation, Decision]:
        """Steps (2) and (3): read the landscape, then decide; no write."""
        with self.journal.step("observe") as notes:
            obs = observe(
                client, self.request.target, chain_env_var=self.request.chain_env_var, now=self.now
            )
            previous_key = obs.env.get(self.request.key_env_var)
            if previous_key:
                self.on_secret(previous_key)
                client.add_secrets(previous_key, *material.secret_lines((previous_key,)))
            version = ".".join(map(str, obs.api_version))
            notes.append(f"CC API {version}, {len(obs.bindings)} binding(s)")
        decision = decide(self.request, obs, self.new, self.now)
        self.warnings += [*obs.warnings, *decision.warnings]
        self.before = decision.live.facts if decision.live else None
        return obs, decision

    def _change(self, ctx: RunContext, decision: Decision) -> Report:
        """Steps (4)-(7) under the lock; any failure in (4)-(6) is undone."""
        try:
            with self.journal.step("lock"):
                lock.acquire(
                    ctx.client,
                    ctx.obs.app.guid,
                    ctx.obs.app.annotations,
                    keys=self.keys,
                    owner=self.run_id,
                    now=self.now,
                    timeout_s=self.request.timeout_s,
                )
        except lock.Locked as error:
            return self._failure(Outcome.FAILED, error)
        except RotationError as error:
            # The write may have landed although its answer was lost: take our lock back
            # so that the next run is not blocked until it expires.
            self._release_lock_quietly(ctx)
            return self._failure(Outcome.FAILED, error)
        try:
            self._forward(ctx)
        except (Exception, KeyboardInterrupt) as error:
            return self._undo(ctx, error)
        finally:
            self.warnings += ctx.warnings
            ctx.warnings.clear()
        return self._finish(ctx)

    def _forward(self, ctx: RunContext) -> None:
        assert self.strategy is not None
        ctx.check_cancel()
        with self.journal.step("set", f"strategy {self.strategy}") as notes:
            binding, self.strategy = register_new_leaf(ctx, self.strategy)
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
                app_guid = ctx.obs.app.guid
                # Pushed first so that it runs last: instances start with the restored env.
                self.journal.push(
                    Compensation(
                        description=f"restart {ctx.obs.app.name} (a failed restage may stop it)",
                        undo=lambda: _restart(ctx.client, app_guid),
                        state_if_failed=f"{ctx.obs.app.name} may be stopped",
                        manual_action=f"cf restart {ctx.obs.app.name}",
                    )
                )
                set_env_like_the_seed(ctx)
                ctx.client.restage(app_guid, deadline=ctx.deadline)
            return
        with self.journal.step("promote", "chain and key in one call"):
            set_env(ctx)
        with self.journal.step("deploy") as notes:
            deployment = roll_out(ctx)
            notes.append(f"deployment {deployment.guid} {deployment.state}/{deployment.reason}")

    def _undo(self, ctx: RunContext, error: BaseException) -> Report:
        changed = self.journal.changed
        log.error("rotation failed: %s", error)
        ctx.client.set_deadline(ctx.rollback_deadline())  # undoing may run past the deadline
        outcome_of_rollback = self.journal.rollback()
        self._release_lock_quietly(ctx)
        if not changed:
            nothing = Outcome.INVALID_INPUT if isinstance(error, InputError) else Outcome.FAILED
            return self._failure(nothing, error)
        if outcome_of_rollback.complete:
            return self._failure(Outcome.ROLLED_BACK, error)
        return self._failure(
            Outcome.ROLLBACK_INCOMPLETE,
            error,
            state_left=outcome_of_rollback.state_left,
            manual_actions=outcome_of_rollback.manual_actions,
        )

    def _release_lock_quietly(self, ctx: RunContext) -> None:
        ctx.client.set_deadline(ctx.rollback_deadline())
        try:
            lock.release(ctx.client, ctx.obs.app.guid, keys=self.keys)
        except RotationError as error:
            self.warnings.append(
                f"the lock annotation could not be removed ({error}); it expires by itself"
            )

    def _finish(self, ctx: RunContext) -> Report:
        """Step (7): the new certificate is live; remove the old bindings, annotate."""
        ctx.client.set_deadline(ctx.rollback_deadline())  # finishing beats leaving a mess
        state_left: list[str] = []
        manual: list[str] = []
        new_guid = ctx.new_binding.guid if ctx.new_binding else None
        with self.journal.step("finish") as notes:
            for old in _old_bindings(ctx.obs, new_guid, self.strategy):
                if self._delete_old(ctx, old.guid):
                    notes.append(f"deleted old binding {old.guid}")
                else:
                    state_left.append(
                        f"old binding {old.guid} still exists, so CPI still accepts the old "
                        "certificate"
                    )
                    manual.append(f"cf curl -X DELETE /v3/service_credential_bindings/{old.guid}")
            assert self.new is not None
            stamp = self.keys.record(self.new, run_id=self.run_id, rotated_at=datetime.now(UTC))
            try:
                lock.release(ctx.client, ctx.obs.app.guid, keys=self.keys, extra=stamp)
                notes.append("annotations written, lock released")
            except RotationError as error:
                self.warnings.append(f"the app's annotations could not be written: {error}")
        if state_left:
            return self._report(
                Outcome.CLEANUP_INCOMPLETE,
                binding_guid=new_guid,
                deployment_guid=ctx.deployment_guid,
                error="the new certificate is live, but an old binding could not be deleted",
                state_left=tuple(state_left),
                manual_actions=tuple(manual),
            )
        return self._report(
            Outcome.ROTATED, binding_guid=new_guid, deployment_guid=ctx.deployment_guid
        )

    def _delete_old(self, ctx: RunContext, guid: str) -> bool:
        try:
            delete_binding_when_settled(
                ctx, guid, ctx.rollback_deadline(), attempts=CLEANUP_ATTEMPTS
            )
        except RotationError as error:
            log.error("old binding %s could not be deleted: %s", guid, error)
            return False
        return True

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


def _old_bindings(
    obs: Observation, new_guid: str | None, strategy: Strategy | None
) -> list[Binding]:
    """Bindings to remove in finish: every pre-existing one, for overlap only."""
    if strategy is not Strategy.OVERLAP:
        return []
    return [b for b in obs.bindings if b.guid != new_guid]


def _restart(client: CfClient, app_guid: str) -> None:
    """Stop and start: every instance takes the app's current env (the seed's downtime)."""
    client.stop_app(app_guid)
    client.start_app(app_guid)


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
