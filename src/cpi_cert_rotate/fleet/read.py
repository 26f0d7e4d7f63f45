"""The per-app reads no list call can replace, a bounded number at a time.

Per app: `GET /v3/service_credential_bindings/:guid/details` of its live binding (Cloud
Controller has no list form of binding credentials) and `GET /v3/apps/:guid/
environment_variables` for the chain env var (there is no list form of env vars either).
That is two calls per app, one more for each further it-rt instance it is bound to.

Only public facts leave this module: the leaf certificates and the pinning flag. The
credentials of other key types (a client secret, a key SAP generated) and the app's other
env vars (its private key) are dropped as soon as the response is parsed; none of it is
logged, kept or masked (masking would write it to the log stream, escaped).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar

from cryptography import x509

from ..cf import CfApiError, CfClient
from ..rotation.observe import credentials_of, leaf_of_chain
from .discover import Candidate

T = TypeVar("T")

# Statuses that mean "this user may not read it" (or it vanished since the list):
# Cloud Controller answers 404 for /details to every role but Admin, Admin Read-Only and
# Space Developer, and 403 for env vars to roles without access.
_NOT_READABLE = frozenset({403, 404})


class Kind(StrEnum):
    """What the live binding's credentials say about its key type."""

    EXTERNAL = "external"
    """`certificate` without `key`: a `certificate_external` binding (our business)."""
    GENERATED = "generated"
    """`certificate` with `key`: SAP generated the key pair (key type `certificate`)."""
    NO_CERTIFICATE = "no-certificate"
    """No certificate at all: client id and secret."""
    UNREADABLE = "unreadable"
    NO_LIVE_BINDING = "no-live-binding"


@dataclass(frozen=True)
class Reading:
    """What the per-app reads found for one candidate."""

    kind: Kind
    registered: x509.Certificate | None = None
    pinning: bool | None = None
    details_error: str | None = None
    env_leaf: x509.Certificate | None = None
    env_set: bool = False
    """The chain env var exists and is not empty."""
    env_error: str | None = None
    """Why the env vars could not be read (the user's role)."""
    env_broken: bool = False
    """The chain env var is set but holds no certificate that parses."""
    env_foreign: bool = False
    """The chain env var holds the certificate of another instance the app is bound to."""


@dataclass(frozen=True)
class _Credentials:
    kind: Kind
    leaf: x509.Certificate | None
    pinning: bool | None


@dataclass(frozen=True)
class _EnvChain:
    value: str | None


def _classify(raw: dict[str, Any]) -> _Credentials:
    """Key type from the credentials' shape (it-rt nests them under `oauth`)."""
    oauth = raw.get("oauth") if isinstance(raw.get("oauth"), dict) else raw
    assert isinstance(oauth, dict)
    pem = oauth.get("certificate")
    if not isinstance(pem, str) or not pem.strip():
        return _Credentials(Kind.NO_CERTIFICATE, None, None)
    registered = credentials_of(raw)
    kind = Kind.GENERATED if oauth.get("key") else Kind.EXTERNAL
    return _Credentials(kind, registered.leaf, registered.pinning)


def _why(error: CfApiError) -> str:
    return f"{error.status} {error.title}".strip() if error.title else str(error.status)


def _guarded(call: Callable[[], T]) -> T | CfApiError:
    """Run a read; an error meaning "not readable by this user" is returned, not raised."""
    try:
        return call()
    except CfApiError as error:
        if error.status in _NOT_READABLE:
            return error
        raise


def _credentials(client: CfClient, binding_guid: str) -> _Credentials:
    return _classify(client.binding_credentials(binding_guid))


def _env_chain(client: CfClient, app_guid: str, name: str) -> _EnvChain:
    """Only the chain variable is kept; the rest (the app's key) is dropped here."""
    return _EnvChain(client.get_env_vars(app_guid).get(name))


def _run_all(jobs: Mapping[str, Callable[[], T]], parallel: int) -> dict[str, T | CfApiError]:
    """Run every job, `parallel` at a time; the first failure cancels what has not
    started and is raised (a landscape that fails one read will fail the next ones)."""
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="scan") as pool:
        futures = {pool.submit(_guarded, job): key for key, job in jobs.items()}
        try:
            return {futures[f]: f.result() for f in as_completed(futures)}
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def read_all(
    client: CfClient,
    candidates: Sequence[Candidate],
    *,
    chain_env_var: str,
    parallel: int,
    now: datetime,
) -> list[Reading]:
    """One `Reading` per candidate, in order; at most `parallel` calls in flight.

    Unreadable parts become errors in the reading; any other failure (unreachable,
    5xx after retries, the run's deadline) ends the scan.
    """
    details_of = sorted({c.live.guid for c in candidates if c.live is not None})
    env_of = sorted({c.app.guid for c in candidates}) if chain_env_var else []
    found_details = _run_all({g: partial(_credentials, client, g) for g in details_of}, parallel)
    found_envs = _run_all(
        {g: partial(_env_chain, client, g, chain_env_var) for g in env_of}, parallel
    )
    return [_reading(c, found_details, found_envs, now) for c in candidates]


def _env_reading(env: _EnvChain | CfApiError | None, now: datetime) -> Reading:
    """A reading with only the env var's part filled in (no live binding yet)."""
    if isinstance(env, CfApiError):
        return Reading(Kind.NO_LIVE_BINDING, env_error=f"env vars not readable ({_why(env)})")
    if env is None or not env.value:
        return Reading(Kind.NO_LIVE_BINDING)
    leaf = leaf_of_chain(env.value, now)
    return Reading(Kind.NO_LIVE_BINDING, env_leaf=leaf, env_set=True, env_broken=leaf is None)


def _reading(
    candidate: Candidate,
    details: dict[str, _Credentials | CfApiError],
    envs: dict[str, _EnvChain | CfApiError],
    now: datetime,
) -> Reading:
    reading = _env_reading(envs.get(candidate.app.guid), now)
    live = candidate.live
    if live is None:
        return reading
    found = details[live.guid]
    if isinstance(found, CfApiError):
        why = (
            f"binding credentials not readable ({_why(found)}): that needs Space Developer, "
            "or the binding was deleted since the list"
        )
        return replace(reading, kind=Kind.UNREADABLE, details_error=why)
    unparsed = found.kind is Kind.EXTERNAL and found.leaf is None
    return replace(
        reading,
        kind=found.kind,
        registered=found.leaf,
        pinning=found.pinning,
        details_error="the binding's certificate could not be parsed" if unparsed else None,
    )
