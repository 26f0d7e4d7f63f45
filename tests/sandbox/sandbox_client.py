"""A raw CF v3 client for the sandbox's contract tests.

Deliberately dumb (requests + a bearer token): the tests assert status codes, shapes and
texts from reference/cf-api-v3.md, not the sandbox's own code.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from cf_sandbox import Landscape
from cf_sandbox.memtls import client_context, session

# The state file's keys that issue 3 requires ("more may follow").
STATE_FILE_KEYS = frozenset(
    {
        "api_url",
        "ca_pem",
        "username",
        "password",
        "origin",
        "org",
        "space",
        "app",
        "service_instance",
        "cpi_url",
        "trusted_root_pem",
    }
)


class Cf:
    """A raw HTTP client for one landscape, logged in as the sandbox user."""

    def __init__(self, ls: Landscape) -> None:
        self.ls = ls
        self.http = session(client_context(ls.ca_pem))
        self.token = self.login()

    def login(self) -> str:
        resp = self.http.post(
            f"{self.ls.uaa_url}/oauth/token",
            data={
                "grant_type": "password",
                "username": self.ls.username,
                "password": self.ls.password,
            },
            auth=("cf", ""),
            headers={"Accept": "application/json"},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"bearer {self.token}", **kwargs.pop("headers", {})}
        url = path if path.startswith("https://") else f"{self.ls.api_url}{path}"
        return self.http.request(method, url, headers=headers, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("PATCH", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("DELETE", path, **kwargs)

    def ok(self, resp: requests.Response, status: int = 200) -> Any:
        assert resp.status_code == status, f"{resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def wait_job(self, location: str, deadline_s: float = 10.0) -> dict[str, Any]:
        """Poll a job until COMPLETE or FAILED; returns the job; records every state seen."""
        end = time.monotonic() + deadline_s
        while True:
            job = self.ok(self.get(location))
            if job["state"] in ("COMPLETE", "FAILED"):
                return dict(job)
            assert time.monotonic() < end, f"job still {job['state']}"
            time.sleep(0.02)

    def wait_deployment(self, guid: str, deadline_s: float = 20.0) -> dict[str, Any]:
        end = time.monotonic() + deadline_s
        while True:
            dep = self.ok(self.get(f"/v3/deployments/{guid}"))
            if dep["status"]["value"] == "FINALIZED":
                return dict(dep)
            assert time.monotonic() < end, f"deployment still {dep['status']}"
            time.sleep(0.02)

    def error(self, resp: requests.Response, status: int) -> dict[str, Any]:
        """The single CF error of an error envelope with this status."""
        assert resp.status_code == status, f"{resp.status_code} {resp.text}"
        errors = resp.json()["errors"]
        assert len(errors) == 1
        assert set(errors[0]) == {"code", "title", "detail"}
        return dict(errors[0])


def leaf_of(chain_pem: str) -> str:
    """The first certificate of a PEM chain."""
    end = "-----END CERTIFICATE-----"
    return chain_pem.split(end, maxsplit=1)[0] + end + "\n"


def bind_body(ls: Landscape, leaf_pem: str, **extra: Any) -> dict[str, Any]:
    """A `certificate_external` app binding of the seeded app to the seeded instance."""
    return {
        "type": "app",
        "relationships": {
            "service_instance": {"data": {"guid": ls.service_instance_guid}},
            "app": {"data": {"guid": ls.app_guid}},
        },
        "parameters": {"key-type": "certificate_external", "X.509": leaf_pem},
        **extra,
    }
