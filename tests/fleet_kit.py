"""The fleet scan's expectation, computed from the sandbox's store (not from the scan).

Shared by the scan's end-to-end test and the plan-then-rotate workflow test.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from cf_sandbox import Landscape
from cf_sandbox.pki import load_pem_certs

RENEW_DAYS = 30

Row = tuple[str, str, str, str]
"""(org, space, app, service instance)"""


def _fp(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def expected(ls: Landscape, renew_days: int = RENEW_DAYS) -> dict[Row, tuple[dt.datetime, bool]]:
    """From the store: (org, space, app, instance) -> (not after, due) of every app bound
    to an it-rt integration-flow instance with a certificate.

    The row's certificate is the app's CLI_CHAIN leaf (what it presents), except when the
    app is bound to several such instances and CLI_CHAIN holds another one's certificate:
    then it is the row's own binding's.
    """
    store, now = ls.store, dt.datetime.now(dt.UTC)
    rows: dict[Row, tuple[dt.datetime, bool]] = {}
    with store.lock:
        groups = defaultdict(list)
        for b in store.bindings.values():
            si = store.instances[b.service_instance_guid]
            plan, offering = store.plan_of(si), store.offering_of(si)
            if (
                b.type == "app"
                and plan
                and offering
                and (offering.label, plan.name)
                == (
                    "it-rt",
                    "integration-flow",
                )
            ):
                groups[(b.app_guid, si.guid)].append(b)
        per_app = Counter(app_guid for app_guid, _ in groups)
        for (app_guid, si_guid), bindings in groups.items():
            live = max((b for b in bindings if b.is_("create", "succeeded")), key=lambda b: b.seq)
            assert live.leaf_der is not None
            own = x509.load_der_x509_certificate(live.leaf_der)
            app = store.apps[app_guid]
            cert = own
            if app.env_vars.get("CLI_CHAIN"):
                env = load_pem_certs(app.env_vars["CLI_CHAIN"])[0]
                if per_app[app_guid] == 1 or _fp(env) == _fp(own):
                    cert = env
            space = store.spaces[app.space_guid]
            row = (
                store.orgs[space.org_guid].name,
                space.name,
                app.name,
                store.instances[si_guid].name,
            )
            not_after = cert.not_valid_after_utc
            rows[row] = (not_after, not_after - now <= dt.timedelta(days=renew_days))
    return rows
