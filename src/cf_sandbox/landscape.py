"""`Landscape`: the whole sandbox (CC + UAA + it-rt broker + CPI + app instances + probe).

```python
with Landscape(instances=3) as ls:
    ls.api_url, ls.ca_pem, ls.username, ls.password   # what a CF client needs
    minted = ls.mint("new-client")                    # a chain + key CPI will trust
    ls.probe_start(rps=20); ...; ls.probe()           # how many calls failed
```

Every server listens on 127.0.0.1 (port 0 unless given) with its own certificate from
the sandbox's server CA, whose key, like every sandbox key, is loaded through a memfd
and never written anywhere. Starting takes well under 2 s; `stop()` joins every thread.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import secrets
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509

from . import memtls
from .broker import ItRtBroker
from .cc_app_parts import AppPartRoutes
from .cc_apps import AppRoutes
from .cc_bindings import BindingRoutes
from .cc_builds import BuildRoutes
from .cc_deployments import DeploymentRoutes
from .cc_lookups import LookupRoutes
from .cc_root import RootRoutes
from .cc_user_provided import UserProvidedRoutes
from .context import Ctx
from .control import ControlRoutes, state_json
from .cpi import Cpi
from .faults import Faults
from .fleet_seed import FleetSeeder, SeededApp
from .gateway import CallLog, Gateway, RateLimiter
from .instances import Runtime
from .jobs import JobRunner, Scheduler
from .logcache import LogCacheRoutes, LogStore
from .oidc_landscape import OidcParts, uaa_clients
from .pki import Minted, Pki, cert_pem
from .probe import Probe
from .rollout import Rollouts
from .seed import SEED_APP, SEED_INSTANCE, SEED_ORG, SEED_SPACE, Seeder
from .server import TlsServer
from .state import App, Options, ServiceInstance, Space, Store
from .uaa import Accounts, TokenIssuer, Uaa
from .uaa_jwt_bearer import JwtBearer
from .web import Request, Response, Router


def _not_ready(req: Request) -> Response:
    return Response(503, "starting\n")


class Landscape:
    """A running local Cloud Foundry + UAA + Cloud Integration landscape."""

    def __init__(
        self,
        *,
        api_version: str = "3.228.0",
        bindings_limit: int = 5,
        instances: int = 3,
        pinning: bool = True,
        token_ttl_s: float = 600.0,
        start_s: float = 0.05,
        staging_s: float = 0.2,
        job_steps_s: float = 0.05,
        cpi_propagation_s: float = 0.0,
        rate_limit: int | None = None,
        broker_async: bool = False,
        bindings_retrievable: bool = False,
        temporary_enable_v2: bool = False,
        cc_port: int = 0,
        uaa_port: int = 0,
        cpi_port: int = 0,
        username: str = "rotator@example.com",
        origin: str = "sap.ids",
        seed: bool = True,
        fleet_apps: int = 0,
        oidc: bool = False,
    ) -> None:
        options = Options().update(
            {
                "api_version": api_version,
                "bindings_limit": bindings_limit,
                "pinning": pinning,
                "token_ttl_s": token_ttl_s,
                "start_s": start_s,
                "staging_s": staging_s,
                "job_steps_s": job_steps_s,
                "cpi_propagation_s": cpi_propagation_s,
                "rate_limit": rate_limit,
                "broker_async": broker_async,
                "bindings_retrievable": bindings_retrievable,
                "temporary_enable_v2": temporary_enable_v2,
            }
        )
        self._instances = instances
        self._seed_enabled = seed
        self._fleet_apps = fleet_apps
        self.fleet: list[SeededApp] = []
        """The apps `fleet_apps` seeded (fleet_seed.py), besides the seed app."""
        self._stopping = threading.Event()
        self._started = False
        self.store = Store(options)
        self.pki = Pki()
        self.faults_ = Faults()
        self.call_log = CallLog()
        self.username, self.origin = username, origin
        self.password = secrets.token_urlsafe(18)
        self.client_id, self.client_secret = "cpi-rotator", secrets.token_urlsafe(18)
        self.org, self.space, self.app, self.service_instance = (
            SEED_ORG,
            SEED_SPACE,
            SEED_APP,
            SEED_INSTANCE,
        )
        self.seed_ids: dict[str, str] = {}

        self._cc = self._server("cc", cc_port)
        self._uaa = self._server("uaa", uaa_port)
        self._cpi = self._server("cpi", cpi_port, client_ca_pem=self.pki.trusted_root.pem)
        self._log_cache = self._server("log-cache", 0)
        self.api_url, self.uaa_url, self.cpi_url = self._cc.url, self._uaa.url, self._cpi.url
        self.log_cache_url = self._log_cache.url
        self.logs = LogStore()
        self.login_url = self.uaa_url
        self.ca_pem = self.pki.server_ca.pem
        self.trusted_root_pem = self.pki.trusted_root.pem
        self.untrusted_root_pem = self.pki.untrusted_root.pem

        self.scheduler = Scheduler()
        self.runtime = Runtime(self.store, self.scheduler, self.api_url)
        self.broker = ItRtBroker(self.store, self.pki, self.cpi_url, f"{self.uaa_url}/oauth/token")
        self.jobs = JobRunner(self.store, self.scheduler, self.faults_, self.broker)
        self.rollouts = Rollouts(self.store, self.runtime, self.faults_, self._stopping)
        self.cpi = Cpi(self.store, self.faults_, self._stopping)
        self.issuer = TokenIssuer(
            self.store,
            Accounts(self.username, self.password, origin, self.client_id, self.client_secret),
            self.uaa_url,
        )
        self.seeder = Seeder(self.store, self.runtime, self.broker, self.pki)
        self._probe: Probe | None = None
        self.jwt_bearer = JwtBearer(f"{self.uaa_url}/oauth/token")
        uaa_clients(self.jwt_bearer, (self.client_id, self.client_secret))
        self.oidc: OidcParts | None = None
        self._oidc_servers: list[TlsServer] = []
        if oidc:
            self._oidc_servers = [self._server("github", 0), self._server("ias", 0)]
            github, ias = self._oidc_servers
            self.oidc = OidcParts(github.url, ias.url, self.jwt_bearer)
        self._wire()

    # -- construction -----------------------------------------------------------

    def _server(self, name: str, port: int, client_ca_pem: str | None = None) -> TlsServer:
        chain, key = self.pki.server_credentials()
        ctx = memtls.server_context(chain, key, client_ca_pem=client_ca_pem)
        return TlsServer(name, ctx, _not_ready, port=port, client_certs=client_ca_pem is not None)

    def _wire(self) -> None:
        ctx = Ctx(
            self.store,
            self.runtime,
            self.jobs,
            self.rollouts,
            self.faults_,
            self.scheduler,
            self.api_url,
            self.uaa_url,
            self.login_url,
        )
        self._ctx = ctx
        cc = Router()
        for routes in (
            RootRoutes(ctx, self.log_cache_url),
            LookupRoutes(ctx),
            AppRoutes(ctx),
            AppPartRoutes(ctx),
            BuildRoutes(ctx, self.logs),
            BindingRoutes(ctx),
            DeploymentRoutes(ctx),
            UserProvidedRoutes(ctx),
        ):
            routes.register(cc)
        self.jobs.register(cc)
        uaa = Router()
        Uaa(self.issuer, self.jwt_bearer).register(uaa)
        limiter = RateLimiter(self.store)
        self._cc.app = Gateway(
            "cc",
            cc,
            faults=self.faults_,
            calls=self.call_log,
            issuer=self.issuer,
            limiter=limiter,
            stopping=self._stopping,
            control=ControlRoutes(self).router(),
        )
        self._uaa.app = Gateway(
            "uaa",
            uaa,
            faults=self.faults_,
            calls=self.call_log,
            issuer=None,
            limiter=None,
            stopping=self._stopping,
        )
        self._cpi.app = self.cpi
        if self.oidc is not None:
            github, ias = Router(), Router()
            self.oidc.github.register(github)
            self.oidc.ias.register(ias)
            for server, router in zip(self._oidc_servers, (github, ias), strict=True):
                server.app = Gateway(
                    server.name,
                    router,
                    faults=self.faults_,
                    calls=self.call_log,
                    issuer=None,
                    limiter=None,
                    stopping=self._stopping,
                )
        log_cache = Router()
        LogCacheRoutes(self.logs).register(log_cache)
        self._log_cache.app = Gateway(
            "log-cache",
            log_cache,
            faults=self.faults_,
            calls=self.call_log,
            issuer=self.issuer,
            limiter=None,
            stopping=self._stopping,
        )

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> Landscape:
        """Seed (unless `seed=False`) and start serving."""
        if self._started:
            return self
        self.scheduler.start()
        if self._seed_enabled:
            self.seed_ids = self.seeder.demo(self._instances)
        if self._fleet_apps:
            self.fleet = FleetSeeder(self.seeder).add(self._fleet_apps)
        for server in (self._cc, self._uaa, self._cpi, self._log_cache, *self._oidc_servers):
            server.start()
        self._started = True
        return self

    def stop(self) -> None:
        """Stop everything and join every thread."""
        if self._probe is not None:
            self._probe.stop()
        self._stopping.set()
        self.rollouts.join()
        for server in (self._cc, self._uaa, self._cpi, self._log_cache, *self._oidc_servers):
            server.stop()
        self.scheduler.stop()
        self.runtime.close()
        self._started = False

    def __enter__(self) -> Landscape:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def advertise_uaa(self, url: str) -> None:
        """Name `url` as the login and UAA endpoint in `GET /` (the links clients post
        tokens to): a relay in front of UAA, as the benchmark's latency proxy is."""
        self.uaa_url = self.login_url = url
        self._ctx.uaa_url = self._ctx.login_url = url

    # -- identifiers --------------------------------------------------------------

    @property
    def app_guid(self) -> str:
        """Guid of the seeded app."""
        return self.seed_ids["app_guid"]

    @property
    def service_instance_guid(self) -> str:
        """Guid of the seeded it-rt instance."""
        return self.seed_ids["service_instance_guid"]

    # -- the Python API -------------------------------------------------------------

    def mint(
        self,
        cn: str = "client",
        days: float = 90,
        trusted: bool = True,
        key: str = "rsa-2048",
        not_before: datetime.datetime | None = None,
    ) -> Minted:
        """A new client chain (leaf + intermediate) and PKCS#8 key, trusted by CPI or not."""
        return self.pki.mint(cn, days=days, trusted=trusted, key=key, not_before=not_before)

    def sign_intermediate(self, csr_pem: str) -> str:
        """Sign an external issuing CA's CSR (PEM) with the trusted root; the CA's PEM.

        Leaves that CA issues are then accepted by the broker and by CPI, like minted ones.
        """
        csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
        return cert_pem(self.pki.sign_intermediate(csr))

    def state(self) -> dict[str, Any]:
        """The `/_sandbox/state` document."""
        return state_json(self.store, self.runtime)

    def calls(self) -> list[dict[str, Any]]:
        """Every CC/UAA call so far, in order."""
        return self.call_log.to_json()

    def clear_calls(self) -> None:
        """Forget the recorded CC/UAA calls."""
        self.call_log.clear()

    def cpi_calls(self) -> list[dict[str, Any]]:
        """Every iFlow call CPI answered, with its verdict."""
        return self.cpi.calls()

    def add_fault(self, rule: dict[str, Any]) -> None:
        """Add a fault rule (see `faults.py`); ValueError when it is invalid."""
        self.faults_.add(rule)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.faults_.clear()

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules with their counters."""
        return self.faults_.to_json()

    def probe_start(self, rps: float = 20) -> None:
        """Start (or restart, resetting counters) the probe against the seeded app."""
        if self._probe is None:
            if "app_guid" not in self.seed_ids:
                raise ValueError("the probe calls through the seeded app; start with seed=True")
            self._probe = Probe(self.runtime, self.app_guid, self.ca_pem)
        self._probe.start(rps)

    def probe_stop(self) -> None:
        """Stop the probe; its results stay readable."""
        if self._probe is not None:
            self._probe.stop()

    def probe(self) -> dict[str, Any]:
        """`{"calls","failures","longest_outage_s","timeline"}`."""
        if self._probe is None:
            return {
                "running": False,
                "rps": 0.0,
                "calls": 0,
                "failures": 0,
                "longest_outage_s": 0.0,
                "timeline": [],
            }
        return self._probe.result()

    def options(self) -> dict[str, Any]:
        """The current options."""
        with self.store.lock:
            return dataclasses.asdict(self.store.options)

    def set_options(self, **changes: Any) -> None:
        """Change options live (bindings_limit, api_version, pinning, durations, ...).

        `pinning` applies to bindings created afterwards: the broker records it per
        binding, as SAP records it per service key.
        """
        with self.store.lock:
            self.store.options = self.store.options.update(changes)

    def state_file(self) -> dict[str, Any]:
        """What a client needs to use this landscape; holds no private key."""
        return {
            "api_url": self.api_url,
            "ca_pem": self.ca_pem,
            "username": self.username,
            "password": self.password,
            "origin": self.origin,
            "org": self.org,
            "space": self.space,
            "app": self.app,
            "service_instance": self.service_instance,
            "cpi_url": self.cpi_url,
            "trusted_root_pem": self.trusted_root_pem,
            "uaa_url": self.uaa_url,
            "login_url": self.login_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "untrusted_root_pem": self.untrusted_root_pem,
            **({"oidc": self.oidc.state()} if self.oidc else {}),
        }

    def write_state_file(self, path: Path) -> None:
        """Write `state_file()` as JSON, readable by the owner only (it holds a password)."""
        data = json.dumps(self.state_file(), indent=2).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    # -- extra landscape contents (tests) ---------------------------------------------

    def _space_guid(self, space: str | None) -> str:
        with self.store.lock:
            for s in self.store.spaces.values():
                if s.name == (space or self.space):
                    return s.guid
        raise KeyError(f"no space {space!r}")

    def add_space(self, name: str) -> Space:
        """Another space in the seeded org."""
        with self.store.lock:
            org = next(o for o in self.store.orgs.values() if o.name == self.org)
        return self.seeder.space(name, org.guid)

    def add_app(
        self, name: str, *, space: str | None = None, instances: int = 1, started: bool = False
    ) -> App:
        """Another app (with a droplet), STOPPED unless `started`."""
        app = self.seeder.app(name, self._space_guid(space), instances=instances)
        if started:
            self.seeder.start(app)
        return app

    def add_service_instance(
        self,
        name: str,
        *,
        space: str | None = None,
        plan: str = "integration-flow",
        label: str = "it-rt",
        bindable: bool = True,
        user_provided: bool = False,
        operation_state: str = "succeeded",
    ) -> ServiceInstance:
        """Another service instance (it-rt by default, or user-provided)."""
        return self.seeder.service_instance(
            name,
            self._space_guid(space),
            label=label,
            plan=plan,
            bindable=bindable,
            user_provided=user_provided,
            operation_state=operation_state,
        )

    def token(self) -> str:
        """A fresh access token for the sandbox user (tests' shortcut around UAA)."""
        subject = {
            "client_id": "cf",
            "cid": "cf",
            "sub": self.issuer.user_guid,
            "user_id": self.issuer.user_guid,
            "user_name": self.username,
            "origin": self.origin,
        }
        return str(self.issuer.grant(subject, "password")["access_token"])
