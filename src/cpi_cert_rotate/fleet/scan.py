"""One scan: log in, list, read per app, assess, plan the matrix. Nothing is written.

  (1) `GET /` (the API version, for overlap) and a UAA token;
  (2) the list calls of `discover` (a fixed handful, 5000 resources a page), then
      `locks.find_locks`: the rotation locks of the spaces found (one call per 100);
  (3) per app, the reads of `read` (its live binding's credentials, its env vars), at
      most `parallel` at a time;
  (4) `assess` each, then `matrix.plan` names environments and builds the `due` matrix.
The whole scan is bounded by `timeout_s`: no call starts after it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from ..cf import CfClient
from ..rotation.annotations import DEFAULT_PREFIX, AnnotationKeys
from .assess import assess
from .discover import discover
from .locks import find_locks, lock_of
from .matrix import check_template, plan
from .models import ScanReport, ScanRequest
from .read import Kind, read_all

log = logging.getLogger(__name__)

ClientFactory = Callable[[ScanRequest], CfClient]


def _default_client(request: ScanRequest) -> CfClient:
    return CfClient(request.api_url, request.auth, timeout_s=30.0)


def scan(request: ScanRequest, *, client_factory: ClientFactory = _default_client) -> ScanReport:
    """Find every app bound to an instance of the plan with an external certificate.

    Raises `InputError` for a bad template or prefix (before any call) and the `cf`
    errors when Cloud Foundry cannot be read (unreachable, login refused, a 404 for a
    place that does not exist); an app that cannot be read is a finding with a problem.
    """
    check_template(request.environment)
    keys = AnnotationKeys(request.annotation_prefix or DEFAULT_PREFIX)
    started = time.monotonic()
    with client_factory(request) as client:
        client.set_deadline(started + request.timeout_s)
        root = client.root()
        client.authenticate()
        found = discover(client, request)
        locks = find_locks(client, found.candidates)
        now = datetime.now(UTC)
        log.info(
            "%d app(s) bound to %s/%s instances in scope; reading their credentials and %s",
            len(found.candidates),
            request.offering,
            request.plan,
            request.chain_env_var or "no env var",
        )
        readings = read_all(
            client,
            found.candidates,
            chain_env_var=request.chain_env_var,
            parallel=request.parallel,
            now=now,
        )
        warnings = tuple(client.warnings)
    skipped = Counter(found.skipped)
    findings = []
    for candidate, reading in zip(found.candidates, readings, strict=True):
        if reading.kind in (Kind.NO_CERTIFICATE, Kind.GENERATED):
            skipped[str(reading.kind)] += 1
            continue
        findings.append(
            assess(
                candidate,
                reading,
                api_version=root.v3_version,
                renew_before=request.renew_before,
                chain_env_var=request.chain_env_var,
                warn_days=request.warn_days,
                keys=keys,
                now=now,
                lock=lock_of(locks, candidate),
            )
        )
    planned = plan(tuple(findings), request.environment, request.matrix_limit)
    return ScanReport(
        api_url=root.api_url,
        api_version=root.v3_version_text,
        scanned_at=now,
        duration_s=time.monotonic() - started,
        renew_before=request.renew_before,
        findings=planned.findings,
        skipped=dict(skipped),
        matrix=planned.matrix,
        left_out=planned.left_out,
        warnings=warnings,
        fail_within_days=request.fail_within_days,
    )
