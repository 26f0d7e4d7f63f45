"""One rotation per app at a time: a lock held as an app annotation.

Cloud Foundry offers no compare-and-swap on metadata, so the lock is best effort: write,
read back, and back off if another owner's value is there. Workflows should still use a
`concurrency` group per target; this lock catches what they cannot (a local run beside a
scheduled one). A lock carries its expiry, so a run killed with SIGKILL blocks the next
one only until then.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..cf import CfClient
from ..errors import RotationError
from .annotations import AnnotationKeys

log = logging.getLogger(__name__)

LOCK_MARGIN_S = 600.0
"""A lock outlives the run's own timeout by this much, to cover the rollback budget."""


class Locked(RotationError):
    """Another run holds the lock; nothing was changed."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key

    def hint(self) -> str:
        return (
            f"{self}\n\nWait for the other run to finish. If it was killed, the lock expires "
            f"by itself; or remove the `{self.key}` annotation of the app by hand."
        )


@dataclass(frozen=True)
class LockValue:
    """`<owner> until <ISO time>`, the annotation's value."""

    owner: str
    expires: datetime

    def render(self) -> str:
        return f"{self.owner} until {self.expires.strftime('%Y-%m-%dT%H:%M:%SZ')}"

    @classmethod
    def parse(cls, text: str) -> LockValue | None:
        owner, sep, when = text.rpartition(" until ")
        if not sep:
            return None
        try:
            expires = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            return None
        return cls(owner, expires)


def acquire(
    client: CfClient,
    app_guid: str,
    annotations: dict[str, str],
    *,
    keys: AnnotationKeys,
    owner: str,
    now: datetime,
    timeout_s: float,
) -> None:
    """Take the lock or raise `Locked` naming the holder and its expiry."""
    held = LockValue.parse(annotations.get(keys.lock, ""))
    if held is not None and held.owner != owner and held.expires > now:
        raise Locked(
            f"another rotation ({held.owner}) holds the lock until {held.render()}", key=keys.lock
        )
    if held is not None and held.expires <= now:
        log.warning("taking over an expired lock of %s", held.owner)
    mine = LockValue(owner, now + timedelta(seconds=timeout_s + LOCK_MARGIN_S)).render()
    app = client.patch_app_annotations(app_guid, {keys.lock: mine})
    if app.annotations.get(keys.lock) != mine:
        raise Locked(
            f"another rotation took the lock at the same moment: {app.annotations.get(keys.lock)}",
            key=keys.lock,
        )


def release(
    client: CfClient,
    app_guid: str,
    *,
    keys: AnnotationKeys,
    extra: Mapping[str, str | None] | None = None,
) -> None:
    """Remove the lock (and write `extra` annotations in the same call)."""
    client.patch_app_annotations(app_guid, {**(extra or {}), keys.lock: None})
