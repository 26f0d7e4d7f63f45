"""The cf CLI's commands from the seed's flow, replayed request by request (cf_cli_replay.py).

Each command must run to the end on the sandbox as on real CF: every status the CLI
accepts, every field it decodes, in the order it sends them. The transcripts are compared
with the sequence read from the CLI's source, so a missing endpoint or a changed order fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cf_cli_replay import CfCli

from cf_sandbox import Landscape

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ls() -> Iterator[Landscape]:
    with Landscape(instances=2, start_s=0.05, staging_s=0.1, job_steps_s=0.05) as landscape:
        yield landscape


@pytest.fixture(scope="module")
def cli(ls: Landscape) -> CfCli:
    cf = CfCli(ls)
    cf.login(ls.username, ls.password, ls.origin, ls.org, ls.space)
    return cf


def _paths(cli: CfCli, start: int) -> list[str]:
    return [e.line().split("?")[0] for e in cli.transcript[start:]]


def _leaf(ls: Landscape, cn: str) -> str:
    chain = ls.mint(cn).chain_pem
    return chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"


def test_login_sequence(ls: Landscape) -> None:
    cli = CfCli(ls)
    cli.login(ls.username, ls.password, ls.origin, ls.org, ls.space)
    lines = [e.line() for e in cli.transcript]
    assert lines[0] == "GET / -> 200"
    assert lines[1] == "GET /login -> 200"
    assert lines[2].startswith("POST /oauth/token?login_hint=%7B%22origin%22%3A%22sap.ids%22%7D")
    assert lines[3] == f"GET /v3/organizations?names={ls.org}&page=1&per_page=1 -> 200"
    assert lines[4].startswith("GET /v3/spaces?names=dev&organization_guids=")
    assert cli.space_guid == ls.seed_ids["space_guid"]


def test_bind_then_unbind_then_bind_again_the_seed_order(ls: Landscape, cli: CfCli) -> None:
    """The blog post's `cf unbind-service` + `cf bind-service -c` (no --wait)."""
    start = len(cli.transcript)
    assert cli.unbind_service(ls.app, ls.service_instance) == ["COMPLETE"]
    assert _paths(cli, start)[:4] == [
        "GET /v3/service_instances",
        "GET /v3/apps",
        "GET /v3/service_credential_bindings",
        "DELETE /v3/service_credential_bindings/" + ls.seed_ids["binding_guid"] + " -> 202",
    ]
    parameters = {"key-type": "certificate_external", "X.509": _leaf(ls, "cli-replay")}
    start = len(cli.transcript)
    assert cli.bind_service(ls.app, ls.service_instance, parameters) == "COMPLETE"
    sent = _paths(cli, start)
    assert sent[:3] == [
        "GET /v3/service_instances",
        "GET /v3/apps",
        "POST /v3/service_credential_bindings -> 202",
    ]
    assert all(p.startswith("GET /v3/jobs/") for p in sent[3:])
    # A second plain bind-service: CC's "already bound" 422, which the CLI reports as OK.
    again = {"key-type": "certificate_external", "X.509": _leaf(ls, "cli-replay-2")}
    assert cli.bind_service(ls.app, ls.service_instance, again) == "already bound"
    # --strategy multiple (CLI gate 3.205.0) adds a second binding beside the first.
    assert cli.bind_service(ls.app, ls.service_instance, again, strategy="multiple") == "COMPLETE"
    assert len(ls.state()["bindings"]) == 2
    assert cli.unbind_service(ls.app, ls.service_instance) == ["COMPLETE", "COMPLETE"]


def test_set_env_then_env(ls: Landscape, cli: CfCli) -> None:
    start = len(cli.transcript)
    answer = cli.set_env(ls.app, "CPI_REPLAY", "one, two")
    assert answer["var"]["CPI_REPLAY"] == "one, two"
    document = cli.env(ls.app)
    assert document["environment_variables"]["CPI_REPLAY"] == "one, two"
    assert document["application_env_json"]["VCAP_APPLICATION"]["limits"] == {"fds": 16384}
    assert _paths(cli, start) == [
        "GET /v3/apps",
        f"PATCH /v3/apps/{ls.app_guid}/environment_variables -> 200",
        "GET /v3/apps",
        f"GET /v3/apps/{ls.app_guid}/env -> 200",
    ]


def test_restage_stages_stops_and_starts_and_reads_the_staging_log(
    ls: Landscape, cli: CfCli
) -> None:
    start = len(cli.transcript)
    result = cli.restage(ls.app)
    assert "[STG/0] Staging app and tracing logs..." in result["staging_log"]
    summary = result["summary"]
    assert summary["state"] == "STARTED"
    assert summary["instances"]["web"] == ["RUNNING", "RUNNING"]
    assert summary["routes"] == []
    assert summary["active_deployments"] == []
    sent = _paths(cli, start)
    assert "POST /v3/builds -> 201" in sent
    order = [p for p in sent if not p.startswith(("GET /v3/builds/", "GET /v3/processes/"))]
    stop = order.index(f"POST /v3/apps/{ls.app_guid}/actions/stop -> 200")
    assert order[stop + 1] == f"PATCH /v3/apps/{ls.app_guid}/relationships/current_droplet -> 200"
    assert order[stop + 2] == f"POST /v3/apps/{ls.app_guid}/actions/start -> 200"
    assert sent[-1] == "GET /v3/deployments"  # the app summary's last request


def test_restart_with_rolling_strategy(ls: Landscape, cli: CfCli) -> None:
    before = ls.state()["apps"][0]["instances"]
    start = len(cli.transcript)
    result = cli.restart_rolling(ls.app)
    assert result["deployment"]["status"]["reason"] == "DEPLOYED"
    assert "cancel" not in result["deployment"]["links"]
    after = ls.state()["apps"][0]["instances"]
    assert {i["guid"] for i in after}.isdisjoint({i["guid"] for i in before})
    sent = _paths(cli, start)
    assert sent[:4] == [
        "GET /v3/apps",
        "GET /v3/packages",
        "GET /v3/packages/" + sent[2].split("/")[3] + "/droplets",
        "POST /v3/deployments -> 201",
    ]
    summary = result["summary"]
    assert summary["instances"]["web"] == ["RUNNING", "RUNNING"]


def test_every_replayed_request_cites_a_cli_file(cli: CfCli) -> None:
    assert cli.transcript
    for exchange in cli.transcript:
        assert exchange.source.startswith(("api/", "actor/", "command/", "go-log-cache")), exchange
