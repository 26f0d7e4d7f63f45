"""End-to-end: rotations that log in with an OIDC token, against the sandbox's UAA and IAS.

Every way the sandbox models (cf_sandbox/oidc_landscape.py) rotates; a CF token that
expires mid-run is renewed with the refresh grant, or, where UAA issues none, with a fresh
OIDC token; every refusal ends the run before any write with the code that names the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from rotation_kit import assert_consistent, request_for, write_calls

from cf_sandbox import Landscape
from cf_sandbox.oidc_issuer import OidcIssuer
from cf_sandbox.oidc_landscape import (
    DIRECT_AUDIENCE,
    DIRECT_ORIGIN,
    FEDERATED_CLIENT,
    PLATFORM_ORIGIN,
    ROTATOR_EMAIL,
)
from cf_sandbox.uaa_jwt_bearer import JWT_BEARER, UaaClient
from cpi_cert_rotate.errors import ExitCode
from cpi_cert_rotate.models import CfAssertion, CfAuth, OidcGrant, Outcome, Report
from cpi_cert_rotate.rotation import rotate

pytestmark = pytest.mark.e2e


class Job:
    """The job's token source: GitHub's stand-in, asked for one audience; counts fetches."""

    def __init__(self, issuer: OidcIssuer, audience: str, **claims: Any) -> None:
        self.issuer, self.audience, self.claims = issuer, audience, claims
        self.fetched = 0

    def __call__(self) -> str:
        self.fetched += 1
        return self.issuer.mint(self.audience, **self.claims)


def _oidc(ls: Landscape) -> Any:
    assert ls.oidc is not None
    return ls.oidc


def _auth(ls: Landscape, job: Job, grant: OidcGrant = OidcGrant.USER, **fields: Any) -> CfAuth:
    exchange = fields.pop("exchange", False)
    oidc = _oidc(ls)
    assertion = CfAssertion(
        grant,
        fetch=job,
        exchange_url=oidc.ias.token_url if exchange else None,
        exchange_client_id=oidc.platform_client_id if exchange else None,
        source="the job's token",
    )
    return CfAuth(ca_pem=ls.ca_pem, assertion=assertion, **fields)


def _rotate(ls: Landscape, auth: CfAuth) -> Report:
    minted = ls.mint(cn="ntifext-client", days=90)
    request = replace(request_for(ls, minted.chain_pem, minted.key_pem), auth=auth)
    report = rotate(request)
    if report.outcome is Outcome.ROTATED:
        assert assert_consistent(ls) == minted.leaf_sha256
    return report


@pytest.fixture
def ls(landscape_factory: Callable[..., Landscape]) -> Landscape:
    return landscape_factory(oidc=True, instances=1)


def test_one_step_uaa_passes_the_jobs_token_to_ias(ls: Landscape) -> None:
    oidc = _oidc(ls)
    job = Job(oidc.github, oidc.ias.issuer)
    report = _rotate(ls, _auth(ls, job, origin=PLATFORM_ORIGIN))
    assert report.outcome is Outcome.ROTATED, report.hint
    assert job.fetched == 1
    assert [e["user"] for e in oidc.ias.exchanges] == [ROTATOR_EMAIL]
    assert not [c for c in ls.calls() if c["server"] == "ias"]  # UAA called IAS, not the job


def test_two_step_the_job_exchanges_at_ias_then_logs_in(ls: Landscape) -> None:
    oidc = _oidc(ls)
    job = Job(oidc.github, oidc.ias.issuer)
    report = _rotate(ls, _auth(ls, job, exchange=True))
    assert report.outcome is Outcome.ROTATED, report.hint
    exchanges = [c for c in ls.calls() if c["server"] == "ias"]
    assert [(c["method"], c["path"], c["status"]) for c in exchanges] == [
        ("POST", "/oauth2/token", 200)
    ]


def test_direct_trust_and_a_federated_client_rotate(ls: Landscape) -> None:
    github = _oidc(ls).github
    direct = _rotate(ls, _auth(ls, Job(github, DIRECT_AUDIENCE), origin=DIRECT_ORIGIN))
    assert direct.outcome is Outcome.ROTATED, direct.hint
    client_job = Job(github, f"{ls.uaa_url}/oauth/token")
    client = _rotate(ls, _auth(ls, client_job, OidcGrant.CLIENT, client_id=FEDERATED_CLIENT))
    assert client.outcome is Outcome.ROTATED, client.hint


@pytest.mark.parametrize("restricted", [False, True], ids=["refresh", "no-refresh-token"])
def test_an_expiring_cf_token_is_renewed_mid_run(
    landscape_factory: Callable[..., Landscape], restricted: bool
) -> None:
    # 3 s tokens (renewed after about 1.5 s) and a rolling deployment of 3 instances that
    # start in 0.6 s each: the run outlives several tokens.
    ls = landscape_factory(oidc=True, instances=3, token_ttl_s=3.0, start_s=0.6)
    ls.set_options(uaa_restrict_refresh_grant=restricted)
    oidc = _oidc(ls)
    job = Job(oidc.github, oidc.ias.issuer)
    report = _rotate(ls, _auth(ls, job, origin=PLATFORM_ORIGIN))
    assert report.outcome is Outcome.ROTATED, report.hint
    logins = [c for c in ls.calls() if c["server"] == "uaa" and c["path"] == "/oauth/token"]
    assert len(logins) >= 2
    if restricted:  # no refresh token: every renewal is a new login with a new OIDC token
        assert job.fetched == len(logins)
    else:  # the refresh grant renews; the OIDC token was needed once
        assert job.fetched == 1


REFUSALS = [
    ("wrong-audience", {"audience": "https://github.com/acme"}, {}, "oidc-exchange-refused"),
    (
        "direct-wrong-audience",
        {"audience": "uaa"},
        {"origin": DIRECT_ORIGIN},
        "oidc-wrong-audience",
    ),
    (
        "unknown-origin",
        {"iss": "https://token.other.example"},
        {"origin": "typo"},
        "oidc-untrusted-issuer",
    ),
    ("other-repository", {"sub": "repo:evil/fork:environment:x"}, {}, "oidc-exchange-refused"),
    (
        "expired",
        {"audience": DIRECT_AUDIENCE, "exp": 1},
        {"origin": DIRECT_ORIGIN},
        "oidc-token-expired",
    ),
]


@pytest.mark.parametrize(
    ("claims", "fields", "code"),
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
def test_a_refused_login_changes_nothing_and_names_the_cause(
    ls: Landscape, claims: dict[str, Any], fields: dict[str, Any], code: str
) -> None:
    oidc = _oidc(ls)
    audience = claims.pop("audience", oidc.ias.issuer)
    fields.setdefault("origin", PLATFORM_ORIGIN)
    job = Job(oidc.github, audience, **claims)
    report = _rotate(ls, _auth(ls, job, **fields))
    assert report.outcome is Outcome.FAILED
    assert report.exit_code is ExitCode.FAILED
    assert report.error_code == code, report.hint
    assert write_calls(ls) == []


def test_a_uaa_client_without_the_grant_is_named(ls: Landscape) -> None:
    ls.jwt_bearer.clients["cf"].grant_types.discard("urn:ietf:params:oauth:grant-type:jwt-bearer")
    oidc = _oidc(ls)
    report = _rotate(ls, _auth(ls, Job(oidc.github, oidc.ias.issuer), origin=PLATFORM_ORIGIN))
    assert report.error_code == "oidc-grant-not-allowed"
    assert "`cf`" in (report.hint or "")


def test_a_uaa_client_whose_secret_has_a_plus_logs_in(ls: Landscape) -> None:
    """UAA URL-decodes Basic credentials (uaa `ClientBasicAuthenticationFilter.java`)."""
    secret = "pipe+line/secret="
    ls.jwt_bearer.clients["pipeline"] = UaaClient("pipeline", secret, {JWT_BEARER})
    job = Job(_oidc(ls).github, DIRECT_AUDIENCE)
    auth = _auth(ls, job, origin=DIRECT_ORIGIN, client_id="pipeline", client_secret=secret)
    report = _rotate(ls, auth)
    assert report.outcome is Outcome.ROTATED, report.hint


def test_a_uaa_client_not_allowed_for_the_origin_is_named(ls: Landscape) -> None:
    """uaa `UaaAuthorizationRequestManager.checkClientIdpAuthorization`."""
    ls.jwt_bearer.clients["cf"].allowed_providers = {PLATFORM_ORIGIN}
    job = Job(_oidc(ls).github, DIRECT_AUDIENCE)
    report = _rotate(ls, _auth(ls, job, origin=DIRECT_ORIGIN))
    assert report.error_code == "oidc-origin-not-allowed", report.hint
    assert "`allowedproviders`" in (report.hint or "")
    assert write_calls(ls) == []


def test_a_client_token_of_another_job_is_refused(ls: Landscape) -> None:
    job = Job(
        _oidc(ls).github, f"{ls.uaa_url}/oauth/token", sub="repo:acme/cpi-ops:ref:refs/heads/x"
    )
    report = _rotate(ls, _auth(ls, job, OidcGrant.CLIENT, client_id=FEDERATED_CLIENT))
    assert report.error_code == "oidc-client-refused"
    assert "Wrong client_assertion" in (report.error or "")
