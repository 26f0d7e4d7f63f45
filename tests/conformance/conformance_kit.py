"""A plain HTTP client for the conformance tests: real TLS to the sandbox, a UAA token.

It knows no sandbox internals; assertions compare answers with the texts and shapes of
cloud_controller_ng, uaa and the cf CLI, cited in each test.
"""

from __future__ import annotations

from typing import Any

import requests

from cf_sandbox import Landscape
from cf_sandbox.memtls import client_context, session


class Api:
    """Requests to one landscape's CC (and UAA), logged in as the sandbox user."""

    def __init__(self, ls: Landscape) -> None:
        self.ls = ls
        self.http = session(client_context(ls.ca_pem))
        resp = self.http.post(
            f"{ls.uaa_url}/oauth/token",
            data={"grant_type": "password", "username": ls.username, "password": ls.password},
            auth=("cf", ""),
            headers={"Accept": "application/json"},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        self.token = str(resp.json()["access_token"])

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"bearer {self.token}", **kwargs.pop("headers", {})}
        url = path if path.startswith("https://") else f"{self.ls.api_url}{path}"
        return self.http.request(method, url, headers=headers, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def ok(self, resp: requests.Response, status: int = 200) -> Any:
        assert resp.status_code == status, f"{resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def error(self, resp: requests.Response, status: int) -> dict[str, Any]:
        """The one error of a CC error envelope with this status."""
        assert resp.status_code == status, f"{resp.status_code} {resp.text}"
        [error] = resp.json()["errors"]
        return dict(error)
