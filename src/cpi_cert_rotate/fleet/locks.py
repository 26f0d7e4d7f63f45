"""Which scanned apps a rotation holds: the lock instances of their spaces, listed.

A rotation's lock is a user-provided service instance named `cpi-cert-rotate-lock-<app>`
in the app's space, its owner, expiry and token in its tags (rotation/lock.py). The scan
finds every one with one list call per 100 spaces of the apps found, not one lookup per
app: `GET /v3/service_instances?type=user-provided&space_guids=...&per_page=5000`. A
listed instance belongs to the app whose `lock_name` it carries in the same space; its
tags are read by `LockInfo.from_tags`, the rotation's own parser.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..cf import CfClient
from ..rotation.lock import NAME_PREFIX, LockInfo, lock_name
from .discover import Candidate
from .models import LockSeen

Locks = Mapping[tuple[str, str], LockSeen]
"""(space guid, instance name) -> the instance."""


def find_locks(
    client: CfClient, candidates: Iterable[Candidate]
) -> dict[tuple[str, str], LockSeen]:
    """The instances named like a lock in the spaces of `candidates` (no call without any)."""
    spaces = sorted({c.app.space_guid for c in candidates if c.app.space_guid})
    if not spaces:
        return {}
    return {
        (si.space_guid, si.name): LockSeen(si.name, si.guid, LockInfo.from_tags(si.tags))
        for si in client.list_user_provided_instances(spaces)
        if si.space_guid and si.name.startswith(NAME_PREFIX)
    }


def lock_of(locks: Locks, candidate: Candidate) -> LockSeen | None:
    """The lock of the candidate's app: its `lock_name`, in its space."""
    return locks.get((candidate.app.space_guid or "", lock_name(candidate.app.name)))
