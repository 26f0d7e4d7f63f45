"""`cpi-cert-rotate demo`: a full rotation against a fresh local sandbox, measured.

Starts the sandbox (CF + UAA + CPI with running app instances), mints a new chain and
key under its trusted root (or, with `--issuer openbao`, starts a local OpenBao whose
PKI intermediate that root signs, so the Action issues the certificate itself), keeps a
probe calling the iFlow through the app, and runs
the *GitHub Action* on it exactly as a runner would (`python -m cpi_cert_rotate.action`
with `INPUT_*` variables and `GITHUB_OUTPUT`/`GITHUB_STEP_SUMMARY` files). It prints the
workflow log as the runner would show it (masks applied), the job summary, the outputs
and what the probe saw. Exit 0 only if the rotation succeeded, for overlap not one
probe call failed, and with OpenBao exactly one certificate was issued: the one the app
now holds, under OpenBao's intermediate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from ..errors import ExitCode, InputError
from ..material import facts
from ..models import Strategy
from .runner_log import parse_outputs, render_runner_log

if TYPE_CHECKING:  # the sandbox is not in the image: imported lazily at run time
    from cf_sandbox.openbao import OpenBao

PROBE_RPS = 20
ACTION_TIMEOUT_S = 600
ISSUERS = ("none", "openbao")
BAO_MOUNT = "pki-cpi"
BAO_ROLE = "cpi-client"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `demo`."""
    parser.add_argument(
        "--strategy",
        choices=[s.value for s in Strategy],
        default="auto",
        help="the Action's strategy input (default: %(default)s)",
    )
    parser.add_argument(
        "--instances", type=int, default=3, help="app instances (default: %(default)s)"
    )
    parser.add_argument(
        "--bindings-limit",
        type=int,
        default=5,
        help="operator limit of bindings per app and instance; 1 forces swap "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--api-version",
        default="3.228.0",
        help="CC API version to simulate; below 3.205.0 there is no overlap (default: %(default)s)",
    )
    parser.add_argument(
        "--start-s",
        type=float,
        default=0.5,
        help="seconds an app instance takes to start (default: %(default)s)",
    )
    parser.add_argument(
        "--issuer",
        choices=ISSUERS,
        default="none",
        help="where the new certificate comes from: none (minted by the demo and passed as "
        "cert-chain/private-key; default) or openbao (a local OpenBao PKI signs a CSR)",
    )
    parser.add_argument("--json", action="store_true", help="print outputs and probe as JSON")


def run(args: argparse.Namespace) -> int:
    """Start the sandbox, run the Action under load, print what a workflow would show."""
    try:
        from cf_sandbox import Landscape
    except ImportError as error:
        raise InputError(
            "the demo needs the local sandbox (cf_sandbox), which this install does not include",
            code="sandbox-missing",
            fix="Run it from a source checkout: `scripts/demo`.",
        ) from error
    issued: _Issued | None = None
    with (
        Landscape(
            instances=args.instances,
            bindings_limit=args.bindings_limit,
            api_version=args.api_version,
            start_s=args.start_s,
            pinning=Strategy(args.strategy) is not Strategy.IN_PLACE,
        ) as landscape,
        tempfile.TemporaryDirectory(prefix="cpi-demo-runner-") as runner_dir,
        contextlib.ExitStack() as stack,
    ):
        inputs = {
            "cf-api": landscape.api_url,
            "cf-username": landscape.username,
            "cf-password": landscape.password,
            "cf-origin": landscape.origin,
            "cf-ca-cert": landscape.ca_pem,
            "cf-org": landscape.org,
            "cf-space": landscape.space,
            "app": landscape.app,
            "service-instance": landscape.service_instance,
            "strategy": args.strategy,
            "verify-path": "/http/ping",
            # The landscape's own root is not on SAP's list: trust it explicitly, as a
            # user whose CA SAP Note 2801396 lists would pass that CA's root.
            "trusted-roots": landscape.trusted_root_pem,
        }
        pki: _BaoPki | None = None
        if args.issuer == "openbao":
            pki = stack.enter_context(_openbao_pki(landscape))
            inputs.update(pki.inputs())
        else:
            minted = landscape.mint(cn="ntifext-client", days=90)
            inputs.update({"cert-chain": minted.chain_pem, "private-key": minted.key_pem})
        landscape.probe_start(rps=PROBE_RPS)
        try:
            code, log, outputs, summary = _run_action(inputs, Path(runner_dir))
        finally:
            landscape.probe_stop()
        probe = {k: landscape.probe()[k] for k in ("calls", "failures", "longest_outage_s")}
        if pki is not None:
            issued = pki.check(_env_chain(landscape))
    ok = (
        code == 0
        and outputs.get("rotated") == "true"
        and (outputs.get("strategy") != Strategy.OVERLAP or probe["failures"] == 0)
        and (issued is None or issued.ok)
    )
    if args.json:
        document = {"exit_code": code, "outputs": outputs, "probe": probe, "ok": ok}
        if issued is not None:
            document["issuer"] = issued.as_json()
        json.dump(document, sys.stdout, indent=2)
        print()
    else:
        print("== workflow log (as the runner shows it) ==")
        print(log)
        print("\n== job summary ==")
        print(summary.strip())
        print("\n== outputs ==")
        for name, value in outputs.items():
            if name != "leaf-pem":
                print(f"{name}: {value}")
        print(
            f"\nprobe: {probe['calls']} calls through the app at {PROBE_RPS}/s, "
            f"{probe['failures']} failed, longest outage {probe['longest_outage_s']:.2f}s"
        )
        if issued is not None:
            print(issued.line())
        print("demo: OK" if ok else "demo: FAILED")
    return int(ExitCode.OK) if ok else (code or int(ExitCode.FAILED))


@dataclass(frozen=True)
class _Issued:
    """What OpenBao issued during the run, and whether the app ended up with it."""

    address: str
    mount: str
    role: str
    serials: tuple[str, ...]  # every certificate the mount issued, hex as in the outputs
    env_serial: str  # the app's env leaf, in the same notation
    chains: bool  # the env leaf is signed by OpenBao's intermediate, which follows it

    @property
    def ok(self) -> bool:
        """Exactly one certificate issued, and it is the one the app holds."""
        return self.serials == (self.env_serial,) and self.chains

    def line(self) -> str:
        """One line for a person: issuer, serial, and what was checked."""
        where = f"OpenBao PKI {self.address}, mount {self.mount}, role {self.role}"
        count = f"{len(self.serials)} certificate(s) issued"
        if not self.ok:
            return (
                f"issuer: {where}: {count} ({', '.join(self.serials) or 'none'}); "
                f"app env leaf {self.env_serial}, chains to the intermediate: {self.chains}"
            )
        return f"issuer: {where}: {count}, serial {self.env_serial}, live in the app's env"

    def as_json(self) -> dict[str, Any]:
        """The JSON form of `line()`."""
        return {
            "name": "openbao",
            "mount": self.mount,
            "role": self.role,
            "issued_serials": list(self.serials),
            "env_serial": self.env_serial,
            "chains_to_intermediate": self.chains,
            "ok": self.ok,
        }


@dataclass(frozen=True)
class _BaoPki:
    """A PKI mount on the demo's OpenBao and the token the Action signs with."""

    bao: OpenBao
    intermediate: x509.Certificate
    token: str

    def inputs(self) -> dict[str, str]:
        """The Action's `with:` that replaces cert-chain and private-key."""
        return {
            "vault-addr": self.bao.address,
            "vault-token": self.token,
            "vault-role": BAO_ROLE,
            "vault-pki-mount": BAO_MOUNT,
            "vault-ca-cert": self.bao.ca_pem,
        }

    def check(self, env_chain: list[x509.Certificate]) -> _Issued:
        """LIST `<mount>/certs` and compare with the chain the app now has in its env."""
        leaf, *issuers = env_chain
        try:
            leaf.verify_directly_issued_by(self.intermediate)
            chains = issuers[:1] == [self.intermediate]
        except (ValueError, TypeError, InvalidSignature):
            chains = False
        return _Issued(
            address=self.bao.address,
            mount=BAO_MOUNT,
            role=BAO_ROLE,
            # OpenBao lists `11:7a:...`; the Action's `serial` output is `117a...`
            serials=tuple(sorted(s.replace(":", "") for s in self.bao.issued_serials(BAO_MOUNT))),
            env_serial=facts(leaf).serial,
            chains=chains,
        )


@contextlib.contextmanager
def _openbao_pki(landscape: Any) -> Iterator[_BaoPki]:
    """A running OpenBao whose PKI intermediate the landscape's trusted root signed.

    The role copies O and C of the seeded live certificate (`sign` takes only the CN
    from the CSR), issues for 90 days like the seed, and the token may only sign.
    """
    from cf_sandbox.openbao import OpenBao, OpenBaoMissing, sign_policy

    live = _env_chain(landscape)[0].subject
    try:
        with OpenBao.start() as bao:
            pem = bao.enable_pki(
                BAO_MOUNT, landscape.sign_intermediate, common_name="OpenBao Demo Issuing CA"
            )
            bao.create_role(
                BAO_MOUNT,
                BAO_ROLE,
                organization=_attributes(live, NameOID.ORGANIZATION_NAME),
                country=_attributes(live, NameOID.COUNTRY_NAME),
                ttl="2160h",
            )
            token = bao.token_with_policy(sign_policy(BAO_MOUNT, BAO_ROLE))
            yield _BaoPki(bao, x509.load_pem_x509_certificate(pem.encode("ascii")), token)
    except OpenBaoMissing as error:
        raise InputError(f"--issuer openbao: {error}", code="openbao-missing") from error


def _env_chain(landscape: Any) -> list[x509.Certificate]:
    """The chain in the app's `CLI_CHAIN` env var (the key beside it is never read)."""
    app = next(a for a in landscape.state()["apps"] if a["name"] == landscape.app)
    return x509.load_pem_x509_certificates(app["env"]["CLI_CHAIN"].encode("ascii"))


def _attributes(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attribute.value) for attribute in name.get_attributes_for_oid(oid)]


def _run_action(inputs: dict[str, str], runner_dir: Path) -> tuple[int, str, dict[str, str], str]:
    """Run the Action in a child process as the runner does; return code, log, outputs, summary.

    Inputs travel as environment variables (`INPUT_CF-API`, hyphens kept), never on the
    command line; the output and summary files hold no secret (the Action writes none).
    """
    output_file = runner_dir / "set_output"
    summary_file = runner_dir / "step_summary"
    output_file.touch()
    summary_file.touch()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INPUT_")},
        **{f"INPUT_{name.upper()}": value for name, value in inputs.items()},
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(output_file),
        "GITHUB_STEP_SUMMARY": str(summary_file),
        "PYTHONUNBUFFERED": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "cpi_cert_rotate.action"],
        env=env,
        capture_output=True,
        text=True,
        timeout=ACTION_TIMEOUT_S,
        check=False,
    )
    log = render_runner_log(done.stdout)
    if done.stderr.strip():
        log += "\n" + render_runner_log(done.stderr)
    outputs: dict[str, Any] = parse_outputs(output_file.read_text())
    return done.returncode, log, outputs, summary_file.read_text()
