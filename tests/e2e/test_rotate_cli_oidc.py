"""`cpi-cert-rotate rotate --cf-oidc` as a CI script runs it: the token from a variable.

A CI system that hands its jobs an OIDC token in a variable (GitLab's `id_tokens:`, a
token fetched by a step) logs in with `--cf-assertion-env NAME`; the token never appears
on the command line, in the output or in an error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rotation_kit import assert_consistent

from cf_sandbox import Landscape
from cf_sandbox.oidc_landscape import DIRECT_AUDIENCE, DIRECT_ORIGIN, PLATFORM_ORIGIN
from checkout_kit import checkout_env

pytestmark = pytest.mark.e2e


def _run(
    ls: Landscape, tmp_path: Path, token: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    ca, roots = tmp_path / "cf-ca.pem", tmp_path / "trusted-roots.pem"
    ca.write_text(ls.ca_pem)
    roots.write_text(ls.trusted_root_pem)  # the sandbox's root is not on SAP's list
    minted = ls.mint(cn="ntifext-client", days=90)
    command = [
        sys.executable, "-m", "cpi_cert_rotate", "rotate",
        "--cf-api", ls.api_url, "--cf-ca-cert", str(ca),
        "--cf-oidc", "user", "--cf-assertion-env", "CI_OIDC_TOKEN",
        "--cf-org", ls.org, "--cf-space", ls.space,
        "--app", ls.app, "--service-instance", ls.service_instance,
        "--chain-env", "TEST_CHAIN", "--key-env", "TEST_KEY", "--trusted-roots", str(roots),
        "--verify-path", "/http/ping", "--json",
        *extra,
    ]  # fmt: skip
    env = checkout_env(CI_OIDC_TOKEN=token, TEST_CHAIN=minted.chain_pem, TEST_KEY=minted.key_pem)
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert token not in done.stdout + done.stderr + " ".join(command)
    return done


@pytest.fixture
def ls(landscape_factory: Callable[..., Landscape]) -> Landscape:
    return landscape_factory(oidc=True, instances=1)


def test_a_ci_token_logs_in_through_ias_and_rotates(ls: Landscape, tmp_path: Path) -> None:
    assert ls.oidc is not None
    token = ls.oidc.github.mint(ls.oidc.ias.issuer)
    done = _run(ls, tmp_path, token, "--cf-origin", PLATFORM_ORIGIN)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "rotated"
    assert_consistent(ls)


def test_the_ias_exchange_from_the_command_line(ls: Landscape, tmp_path: Path) -> None:
    assert ls.oidc is not None
    token = ls.oidc.github.mint(ls.oidc.ias.issuer)
    done = _run(
        ls,
        tmp_path,
        token,
        "--cf-oidc-exchange-url", ls.oidc.ias.token_url,
        "--cf-oidc-exchange-client-id", ls.oidc.platform_client_id,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [c["path"] for c in ls.calls() if c["server"] == "ias"] == ["/oauth2/token"]


def test_an_expired_ci_token_exits_1_with_the_flag_to_fix(ls: Landscape, tmp_path: Path) -> None:
    assert ls.oidc is not None
    token = ls.oidc.github.mint(DIRECT_AUDIENCE, exp=1)
    done = _run(ls, tmp_path, token, "--cf-origin", DIRECT_ORIGIN)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["error_code"] == "oidc-token-expired"
    assert "export a fresh token" in report["hint"]
