"""One rotation per app at a time: a user-provided service instance named for the app.

Cloud Foundry has no compare-and-swap on metadata (Cloud Controller supports no
`If-Match`), so an annotation cannot be a lock: two runs that write it at the same moment
each read their own value back. A service instance's name, though, is unique in its space
under a database index (`si_space_id_name_index`, cloud_controller_ng
`app/models/services/service_instance.rb`), and a user-provided instance involves no
broker. Creating `cpi-cert-rotate-lock-<app>` is therefore a true create-if-absent: of any
number of concurrent runs exactly one gets 201, the others 422 "The service instance name
is taken: NAME." (`app/actions/mixins/service_instance_create.rb`).

The instance's tags say who holds it, until when, and a random token that tells two runs
with the same run id apart (`cpi-cert-rotate-lock`, `owner=<run id>`,
`expires=<ISO time>`, `token=<hex>`). Tags are shown by `cf service NAME` to every role
that can see the space (Space Auditor included); nothing in them is secret, and the
credentials are left empty, so binding the instance by mistake reveals nothing either.

- A run deletes only the instance it created (or adopted by its token), by its guid: a
  run never removes another run's lock, even one created under the same name a moment
  later (that one has a guid of its own).
- A lock whose answer was lost (a dropped connection, a 5xx after CC acted) is recognised
  by its token when the name is found taken, and adopted.
- A lock past its expiry (its run was killed with SIGKILL) is taken over by deleting that
  instance by guid and creating a new one. If another run was faster, the create is refused
  again and this run stops, naming the new holder: the takeover can lose, but cleanly.
- A GitHub re-run of the same workflow run (a higher attempt) takes over at once: the
  attempts of one run never overlap. A run on the same machine takes over a lock whose
  process has ended (a command-line run killed with SIGKILL): the lock names its process
  by pid and by a digest of the host name and boot id (the machine's name is not shown).

Creating and deleting a user-provided instance needs the Space Developer role in the app's
space, which a rotation needs anyway, and CC's `service_instance_creation` feature flag
(on by default) for users who are not admins.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..cf import CfApiError, CfClient, CfUnreachable, ServiceInstance
from ..errors import RotationError
from ..models import iso, parse_iso

log = logging.getLogger(__name__)

LOCK_MARGIN_S = 600.0
"""A lock outlives the run's own timeout by this much: the rollback budget (300 s) plus
room for clocks that disagree between runners."""
LOCK_TAG = "cpi-cert-rotate-lock"
NAME_PREFIX = "cpi-cert-rotate-lock-"
_MAX_NAME = 255  # CC's validates_max_length for service instance names
ACQUIRE_ATTEMPTS = 3
"""Create tries: a lost answer and a takeover each cost one."""
_NAME_TAKEN = "The service instance name is taken"
_GITHUB_RUN = re.compile(r"^gha:(?P<run>.+)/(?P<attempt>\d+)$")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def this_process() -> tuple[str, int]:
    """(host digest, pid) of this process: the host name and boot id, hashed."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot:
            boot_id = boot.read().strip()
    except OSError:
        boot_id = ""
    digest = hashlib.sha256(f"{socket.gethostname()}\0{boot_id}".encode()).hexdigest()[:16]
    return digest, os.getpid()


def _process_ended(pid: int) -> bool:
    """True only when no process with `pid` exists here (a reused pid counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def lock_name(app_name: str) -> str:
    """`cpi-cert-rotate-lock-<app>`, shortened with a digest when CC's limit needs it."""
    name = NAME_PREFIX + app_name.strip()
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(app_name.encode()).hexdigest()[:12]
    return f"{name[: _MAX_NAME - 13]}-{digest}"


@dataclass(frozen=True)
class LockInfo:
    """What a lock instance says in its tags."""

    owner: str
    expires: datetime | None
    token: str
    host: str = ""
    """Digest of the holder's host name and boot id ('' when unknown)."""
    pid: int = 0

    @classmethod
    def new(cls, owner: str, ttl_s: float, clock: Clock = _utcnow) -> LockInfo:
        """A lock for `owner`, valid `ttl_s` from now, with a fresh token."""
        host, pid = this_process()
        expires = (clock() + timedelta(seconds=ttl_s)).replace(microsecond=0)  # as tagged
        return cls(owner, expires, secrets.token_hex(8), host, pid)

    def tags(self) -> tuple[str, ...]:
        """The tags to create the instance with."""
        until = iso(self.expires) if self.expires else "unknown"
        return (
            LOCK_TAG,
            f"owner={self.owner}",
            f"expires={until}",
            f"token={self.token}",
            f"process={self.host}:{self.pid}",
        )

    @classmethod
    def from_tags(cls, tags: tuple[str, ...]) -> LockInfo | None:
        """The lock an instance's tags describe; None when it is not such a lock."""
        if LOCK_TAG not in tags:
            return None
        values = dict(tag.split("=", 1) for tag in tags if "=" in tag)
        expires = parse_iso(values.get("expires"))
        host, _, pid = values.get("process", "").partition(":")
        return cls(
            values.get("owner", "unknown"),
            expires,
            values.get("token", ""),
            host,
            int(pid) if pid.isdigit() else 0,
        )

    def describe(self) -> str:
        """`<owner> until <time>` for messages."""
        return f"{self.owner} until {iso(self.expires) if self.expires else 'an unknown time'}"

    def superseded_by(self, owner: str, now: datetime) -> str | None:
        """Why `owner` may take this lock over now (None: it may not)."""
        if self.expires is None or self.expires <= now:
            return "it expired" if self.expires else "its expiry is unreadable"
        mine, theirs = _GITHUB_RUN.match(owner), _GITHUB_RUN.match(self.owner)
        if (
            mine
            and theirs
            and mine["run"] == theirs["run"]
            and int(theirs["attempt"]) < int(mine["attempt"])
        ):
            return "it belongs to an earlier attempt of this workflow run, which has ended"
        host, pid = this_process()
        same_host = bool(self.host) and self.host == host
        if same_host and self.pid not in (0, pid) and _process_ended(self.pid):
            return f"its process ({self.pid}) on this machine has ended"
        return None


@dataclass(frozen=True)
class HeldLock:
    """The lock this run holds: the instance's guid and name, and what its tags say."""

    guid: str
    name: str
    info: LockInfo


class Locked(RotationError):
    """Another run holds the app's lock; this run changed nothing."""

    def __init__(self, message: str, *, name: str, holder: LockInfo | None) -> None:
        super().__init__(message)
        self.name = name
        self.holder = holder
        self.code = "locked"

    def hint(self) -> str:
        until = (
            f" at {iso(self.holder.expires)}"
            if self.holder is not None and self.holder.expires
            else ""
        )
        return (
            f"{self}\n\nWait for the other run to finish, then run again. If that run was "
            f"killed, its lock expires by itself{until} and the next run takes it over; a "
            f"person who is sure no rotation of this app runs can delete it now: "
            f"`cf delete-service {self.name} -f`."
        )


class LockNameTaken(RotationError):
    """A service instance that is not a lock already has the lock's name."""

    code = "lock-name-taken"


def _name_taken(error: CfApiError) -> bool:
    return error.status == 422 and _NAME_TAKEN in (error.detail or "")


def _outcome_unknown(error: CfApiError) -> bool:
    """A refusal after which the create may still have happened (a 5xx, a timeout)."""
    return error.status >= 500 or error.status == 408


def acquire(
    client: CfClient,
    space_guid: str,
    app_name: str,
    info: LockInfo,
    *,
    clock: Clock = _utcnow,
) -> HeldLock:
    """Create the app's lock instance or raise `Locked` naming the holder.

    Raises `LockNameTaken` when the name belongs to something else, and `CfApiError` /
    `CfUnreachable` when Cloud Controller cannot say (the caller then calls
    `release_token`, in case the create happened after all).
    """
    name = lock_name(app_name)
    last: RotationError | None = None
    for attempt in range(1, ACQUIRE_ATTEMPTS + 1):
        try:
            created = client.create_user_provided_instance(space_guid, name, tags=info.tags())
            log.info("took the lock %s (%s)", name, created.guid)
            return HeldLock(created.guid, name, info)
        except CfApiError as error:
            if not _name_taken(error) and not _outcome_unknown(error):
                raise
            last = None if _name_taken(error) else error
            log.info("lock %s: create attempt %d: %s", name, attempt, error.detail or error)
        except CfUnreachable as error:
            last = error
            log.info("lock %s: create attempt %d: %s", name, attempt, error)
        holder = client.find_service_instance_named(space_guid, name)
        if holder is None:
            continue  # gone in between, or our create never arrived: try again
        held = _lock_of(holder)
        if held.token == info.token:
            log.info("the lock %s is ours (the answer to its create was lost)", name)
            return HeldLock(holder.guid, name, info)
        why = held.superseded_by(info.owner, clock())
        if why is None:
            raise Locked(
                f"another rotation ({held.owner}) holds the lock {name} until "
                f"{iso(held.expires) if held.expires else 'an unknown time'}; nothing was "
                "changed",
                name=name,
                holder=held,
            )
        log.warning("taking over the lock %s of %s: %s", name, held.owner, why)
        client.delete_user_provided_instance(holder.guid)  # that one only; 404: already gone
    holder = client.find_service_instance_named(space_guid, name)
    held_by: LockInfo | None = None
    if holder is None:
        if last is not None:
            raise last  # nobody holds it: Cloud Controller kept failing the create
    else:
        held_by = _lock_of(holder)
        if held_by.token == info.token:
            return HeldLock(holder.guid, name, info)
    raise Locked(
        f"the lock {name} could not be taken in {ACQUIRE_ATTEMPTS} attempts"
        + (f"; it is held by {held_by.describe()}" if held_by else "")
        + "; nothing was changed",
        name=name,
        holder=held_by,
    )


def _lock_of(instance: ServiceInstance) -> LockInfo:
    held = LockInfo.from_tags(instance.tags) if instance.type == "user-provided" else None
    if held is None:
        raise LockNameTaken(
            f"a service instance named {instance.name} ({instance.guid}) exists in the space "
            "and is not a rotation lock; rename it (`cf rename-service`), since this name is "
            "reserved for the rotation lock of the app"
        )
    return held


def release(client: CfClient, lock: HeldLock) -> str | None:
    """Delete this run's lock; None when done, else why it was left alone (a warning).

    One call: the lock is deleted by the guid of the instance this run created (or
    adopted by its token). Guids are never reused, and no run changes another's lock in
    place: a takeover (after expiry) deletes that instance by its guid and creates a new
    one, and so does a person who deletes and re-creates it. So this delete can only ever
    remove this run's own instance; when it is gone (404) the lock is left to whoever
    holds the name now.
    """
    for attempt in (1, 2):  # a 500 is not retried by the transport; this delete is safe to
        try:  # repeat (by guid, and a lock already gone is a 404)
            if not client.delete_user_provided_instance(lock.guid):
                return (
                    f"the lock {lock.name} was already gone when this run ended (deleted by "
                    "hand, or taken over after it expired)"
                )
            break
        except CfApiError as error:
            if attempt == 2 or error.status < 500:
                raise
    log.info("released the lock %s", lock.name)
    return None


def release_token(client: CfClient, space_guid: str, app_name: str, info: LockInfo) -> bool:
    """After a create whose outcome is unknown: delete the lock if it carries `info`'s
    token. True when one was found and deleted."""
    found = client.find_service_instance_named(space_guid, lock_name(app_name))
    if found is None or found.type != "user-provided":
        return False
    held = LockInfo.from_tags(found.tags)
    if held is None or held.token != info.token:
        return False
    return client.delete_user_provided_instance(found.guid)


def release_quietly(client: CfClient, lock: HeldLock) -> str | None:
    """`release`, with a failure turned into a warning that says how the lock goes away."""
    try:
        return release(client, lock)
    except RotationError as error:
        until = iso(lock.info.expires) if lock.info.expires else "its expiry"
        return (
            f"the lock {lock.name} could not be removed ({error}); it expires at {until}, "
            f"or delete it: `cf delete-service {lock.name} -f`"
        )


def release_token_quietly(
    client: CfClient, space_guid: str, app_name: str, info: LockInfo
) -> str | None:
    """`release_token`, with a failure turned into a warning."""
    try:
        release_token(client, space_guid, app_name, info)
    except RotationError as error:
        name = lock_name(app_name)
        return (
            f"a lock this run may have created could not be checked ({error}); it expires by "
            f"itself, or delete it once no rotation of the app runs: "
            f"`cf delete-service {name} -f`"
        )
    return None
