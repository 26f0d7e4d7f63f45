"""What an earlier run left behind, so that a re-run finishes it instead of hiding it.

A run can stop anywhere: killed with SIGKILL mid-deployment, a cleanup that failed, a
binding create whose answer was lost and that Cloud Controller applied after the run had
rolled back. What remains is always one of:

- bindings of the app to the instance that do not serve the certificate in the app's env
  (an old leaf, a failed create, a stray new leaf): CPI still accepts whatever they
  register, and they count against the operator's binding limit;
- a rolling deployment still ACTIVE (Cloud Controller finishes a deployment whose client
  died): instances may still run the previous env;
- an env that an earlier rotation of this tool changed without reaching its finish step:
  the app's rotation record (annotation) names another certificate than the env, so a
  deployment may never have brought the env to the instances;
- no record at all (`unrecorded`): nothing tells whether a deployment brought the env to
  every instance. Not a leftover by itself (an app this tool never rotated has no
  record), but a run that completes anything deploys first, and a run asked for the
  certificate already live completes it (deploys and records it) once.

Only what provably does not serve the env's certificate is removed; a binding whose
credentials cannot be read is left alone and reported. With no env certificate registered
by any binding the app is in a state this tool did not make, and nothing is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import material
from ..cf import Binding
from .annotations import AnnotationKeys
from .observe import Observation


@dataclass(frozen=True)
class Leftovers:
    """What must be finished before the app is in the state a finished rotation leaves."""

    bindings: tuple[Binding, ...] = ()
    """Bindings that do not serve the env's certificate: to delete."""
    active_deployments: tuple[str, ...] = ()
    """Deployments still ACTIVE: to wait for before anything is deleted."""
    unfinished: str | None = None
    """Why a rolling deployment must bring the env to the instances first (None: no need)."""
    unrecorded: bool = False
    """The env's certificate is registered, but no rotation record names it."""
    notes: tuple[str, ...] = ()
    """What was seen but is left alone (unknown bindings, an unregistered env)."""

    def __bool__(self) -> bool:
        return bool(self.bindings or self.active_deployments or self.unfinished)

    def describe(self) -> list[str]:
        """One line per thing to finish, for warnings and plans."""
        lines = [
            f"binding {b.guid} ({b.operation} {b.state}) does not serve the certificate in "
            "the app's env; CPI still accepts what it registers"
            for b in self.bindings
        ]
        lines += [f"deployment {guid} is still ACTIVE" for guid in self.active_deployments]
        if self.unfinished:
            lines.append(self.unfinished)
        return lines


def find_leftovers(obs: Observation, keys: AnnotationKeys) -> Leftovers:
    """The leftovers of an earlier run in `obs` (empty when the app is as a run leaves it)."""
    leaf = obs.env_leaf
    if leaf is None:
        return Leftovers()  # a first rotation, or an env this tool did not write
    verdicts = {b.guid: obs.serves(b, leaf) for b in obs.bindings}
    if not any(verdicts.values()):
        return Leftovers(
            notes=(
                "no binding of the app registers the certificate in its env (a state this "
                "tool does not leave); nothing is cleaned up",
            )
        )
    unknown = [guid for guid, serves in verdicts.items() if serves is None]
    stray = tuple(b for b in obs.bindings if verdicts[b.guid] is False)
    recorded = obs.app.annotations.get(keys.fingerprint)
    env_fp = material.fingerprint(leaf)
    unfinished = None
    if recorded and recorded != env_fp:
        unfinished = (
            f"the app's rotation record names {recorded[:16]}..., its env {env_fp[:16]}: "
            "an earlier run changed the env and stopped before its finish step, so the "
            "instances may still run the previous env"
        )
    return Leftovers(
        bindings=stray,
        active_deployments=obs.active_deployments,
        unfinished=unfinished,
        unrecorded=recorded is None,
        notes=tuple(
            f"the credentials of binding {guid} could not be read; it is left alone"
            for guid in unknown
        ),
    )
