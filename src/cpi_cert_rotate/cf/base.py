"""`CfBase`: what every Cloud Controller call shares (discovery, auth, paging, jobs).

`client.CfClient` adds the calls themselves. Kept apart so the calls read as a list of
paths and shapes, and the plumbing (re-rooted `next` links, job polling, parse errors)
exists once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests

from .. import __version__
from ..errors import CfApiError, InputError
from ..models import CfAuth
from ..request.rules import https_url
from .auth import UaaAuth
from .http import CfHttp
from .polling import Waited, job_failure, wait_for
from .resources import Job, RootInfo, parse

__all__ = [
    "MIN_VERSION_BINDING_STRATEGY",
    "MIN_VERSION_DEPLOYMENT_OPTIONS",
    "CfBase",
    "filter_values",
    "not_found",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The oldest CC whose messages take every request the tool sends: app binding filters,
# `include=app,service_instance` and `/details` (3.88.0), binding create with a job
# (3.89.0), delete of app bindings (3.92.0); docs/sandbox-conformance.md lists each.
MIN_VERSION_API = (3, 92, 0)
# `"strategy": "multiple"` shipped in capi-release 1.220.0 = CC API 3.205.0; the cf CLI
# gates `bind-service --strategy` on the same version (MinVersionServiceBindingStrategy).
MIN_VERSION_BINDING_STRATEGY = (3, 205, 0)
# A deployment create takes `options` (`max_in_flight`) from CC API 3.173.0
# (cloud_controller_ng `app/messages/deployment_create_message.rb`, commit "Max in flight
# (#3907)" made at `config/version` 3.173.0); before, `options` is an unknown field (422).
MIN_VERSION_DEPLOYMENT_OPTIONS = (3, 173, 0)
# Large pages: a rotation lists few resources, and fewer round trips mean fewer retries.
_PER_PAGE = 200
# A runaway `next` link (a server bug) must not loop for ever.
_MAX_PAGES = 1000
_DEFAULT_USER_AGENT = f"cpi-cert-rotate/{__version__}"


def _normalise_api_url(api_url: str) -> str:
    """The API URL under the input rule (`request.rules.https_url`), scheme added as `cf api`
    does; the request builder has refused anything else before a client exists."""
    url = api_url.strip()
    if "://" not in url:
        url = "https://" + url
    return https_url(url, "the Cloud Foundry API URL")


def _page(data: Mapping[str, Any]) -> tuple[list[Any], str | None]:
    resources = data["resources"]
    if not isinstance(resources, list):
        raise TypeError("resources is not a list")
    pagination = data.get("pagination") or {}
    next_link = pagination.get("next") or {}
    href = next_link.get("href") if isinstance(next_link, Mapping) else None
    return resources, href if isinstance(href, str) and href else None


def filter_values(*values: str) -> str:
    """The value of a list filter (`names`, `app_names`, ...) that matches exactly `values`.

    Cloud Controller splits a filter's value on `,\\s*` and then URL-unescapes each part
    (cloud_controller_ng `app/messages/base_message.rb`, `to_array!`), and names may hold
    any printable character (`app/models/runtime/app_model.rb` APP_NAME_REGEX, likewise
    organization.rb and space.rb). So `%`, `,` and spaces are percent-encoded in each value
    before they are joined: `a,b` is then one name, not two, and `100%41` stays itself
    (the cf CLI encodes the comma only: cloudfoundry/cli
    `api/cloudcontroller/ccv3/query.go`, `FormatQueryParameters`).
    """
    return ",".join(
        value.replace("%", "%25").replace(",", "%2C").replace(" ", "%20") for value in values
    )


def not_found(message: str, path: str) -> CfApiError:
    """A 404 `CfApiError` for a lookup that found nothing (the message says what and where)."""
    return CfApiError(
        message,
        status=404,
        code=10010,
        title="CF-ResourceNotFound",
        detail=message,
        method="GET",
        path=path,
    )


def _require_api(root: RootInfo) -> None:
    """Refuse a Cloud Controller older than `MIN_VERSION_API` before any other call:
    otherwise the first binding lookup fails with a 404 or 400 that names no cause."""
    if root.v3_version < MIN_VERSION_API:
        needed = ".".join(map(str, MIN_VERSION_API))
        raise InputError(
            f"the Cloud Controller at {root.api_url} offers v3 API {root.v3_version_text}; "
            f"this tool needs {needed} or later (service credential bindings of apps, with "
            "their jobs)",
            code="cf-api-too-old",
            fix="Point `cf-api` (`--cf-api`) at a newer Cloud Foundry; every SAP BTP region "
            "runs a far newer one.",
        )


class CfBase:
    """Discovery, auth and the shared plumbing of `CfClient` (see there)."""

    def __init__(
        self,
        api_url: str,
        auth: CfAuth,
        *,
        timeout_s: float = 30.0,
        poll_cap_s: float = 3.0,
        user_agent: str = _DEFAULT_USER_AGENT,
        login: UaaAuth | None = None,
    ) -> None:
        self.api_url = _normalise_api_url(api_url)
        self._http = CfHttp(ca_pem=auth.ca_pem, timeout_s=timeout_s, user_agent=user_agent)
        if login is None:
            login = UaaAuth(self._http, auth, lambda: self.root().token_url)
        else:  # another client's login, shared: its tokens are cut from this client's errors
            login.redact_in(self._http.redact)
        self._auth = login
        self._poll_cap_s = poll_cap_s
        self._job_waited = Waited()  # a job as long as the last one: polls aimed at its end
        self._root: RootInfo | None = None
        self._where: dict[str, str] = {}  # org/space guid -> "org 'o' / space 's'" for errors
        self._credentials: dict[str, dict[str, Any]] = {}  # binding guid -> its credentials

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    @property
    def login(self) -> UaaAuth:
        """This client's UAA login, to share with clients of the same API and user
        (`login=`): they then use its token, and renew it once for all."""
        return self._auth

    def wait_out_outages(self, stop: threading.Event | None) -> None:
        """Wait out UAA outages, and Cloud Controller outages for calls safe to repeat (not
        a POST), from now on, until the deadline or `stop` (the rollback's way,
        `outage.py`); None: fail fast again."""
        self._http.wait_out_outages(stop)

    def set_deadline(self, deadline: float | None) -> None:
        """No call starts, and no retry waits, past `deadline` (`time.monotonic()`)."""
        self._http.set_deadline(deadline)

    @property
    def call_timeout_s(self) -> float:
        """The timeout of one call (before the run's deadline cuts it)."""
        return self._http.timeout_s

    def add_secrets(self, *values: str | None) -> None:
        """Cut these values (e.g. every line of a private key) from any error text."""
        self._http.redact.add(*values)

    @property
    def warnings(self) -> list[str]:
        """`X-Cf-Warnings` and job warnings seen so far, each once, in order."""
        return list(self._http.warnings)

    def root(self) -> RootInfo:
        """`GET /` (no auth), cached: the v3 version and the login/UAA endpoints."""
        if self._root is None:
            what = "the API root (GET /)"
            response = self._http.request("GET", self.api_url + "/")
            root = parse(
                lambda data: RootInfo.from_api(data, self.api_url),
                self._http.json(response, what),
                what,
                status=response.status_code,
            )
            logger.debug("Cloud Controller v3 API %s", root.v3_version_text)
            _require_api(root)
            self._root = root
        return self._root

    def supports_binding_strategy(self) -> bool:
        """True when the API accepts `"strategy": "multiple"` on binding create (>= 3.205.0)."""
        return self.root().v3_version >= MIN_VERSION_BINDING_STRATEGY

    def warm(self, connections: int) -> None:
        """Have `connections` connections to Cloud Controller open now (`CfHttp.warm`):
        for a step that sends that many calls at once."""
        self._http.warm(self.api_url + "/", connections)

    def authenticate(self) -> None:
        """Log in now, so wrong credentials fail before anything else (401 `CfApiError`)."""
        self._auth.login()

    def get_job(self, guid: str) -> Job:
        """An asynchronous job's state, errors and warnings."""
        return self._get(f"/v3/jobs/{guid}", Job.from_api, "a job")

    # -- plumbing for the calls -----------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> requests.Response:
        return self._http.request(
            method, self.api_url + path, bearer=self._auth, json_body=json_body, params=params
        )

    def _json(self, response: requests.Response, what: str) -> Any:
        return self._http.json(response, what)

    def _parse(
        self, response: requests.Response, build: Callable[[Mapping[str, Any]], T], what: str
    ) -> T:
        return parse(build, self._json(response, what), what, status=response.status_code)

    def _get(self, path: str, build: Callable[[Mapping[str, Any]], T], what: str) -> T:
        return self._parse(self._call("GET", path), build, what)

    def _list(
        self, path: str, params: Mapping[str, str], build: Callable[[Mapping[str, Any]], T]
    ) -> list[T]:
        """Every resource of a list, all pages, each built by `build`."""
        what = f"an item of {path}"
        return [parse(build, item, what, status=200) for item in self._pages(path, params)]

    def _pages(self, path: str, params: Mapping[str, str]) -> Iterator[Any]:
        """Follow `pagination.next`, re-rooted on the API URL (the token goes nowhere else)."""
        url: str | None = self.api_url + path
        query: Mapping[str, str | int] | None = {**params, "per_page": _PER_PAGE}
        for _ in range(_MAX_PAGES):
            if url is None:
                return
            response = self._http.request("GET", url, bearer=self._auth, params=query)
            resources, next_href = parse(
                _page, self._json(response, "a list"), f"a list of {path}", status=200
            )
            yield from resources
            url, query = (self._same_origin(next_href), None) if next_href else (None, None)
        raise CfApiError(f"more than {_MAX_PAGES} pages listing {path}", status=200, path=path)

    def _same_origin(self, href: str) -> str:
        api, link = urlsplit(self.api_url), urlsplit(href)
        return urlunsplit((api.scheme, api.netloc, link.path, link.query, ""))

    def _find_one(
        self,
        path: str,
        name: str,
        params: Mapping[str, str],
        build: Callable[[Mapping[str, Any]], T],
        missing: str,
        *,
        exact_case: bool = False,
    ) -> T:
        """The resource of `path` called `name` among those `params` filter, or a 404
        `CfApiError` saying `missing`.

        The exact spelling wins; without `exact_case` a case-folded match is accepted, as
        Cloud Controller's own filter for orgs, spaces and apps is case-insensitive.
        """
        found = self._list(path, {"names": filter_values(name), **params}, build)
        exact = [c for c in found if getattr(c, "name", None) == name]
        folded = [c for c in found if str(getattr(c, "name", "")).lower() == name.lower()]
        for candidate in exact or ([] if exact_case else folded):
            return candidate
        raise not_found(missing, path)

    def _poll(
        self,
        fetch: Callable[[], T],
        done: Callable[[T], bool],
        *,
        deadline: float,
        what: str,
        guid: str | None = None,
        started: float | None = None,
        expected_s: float | None = None,
        progress: Callable[[T], int] | None = None,
        steps: int = 1,
        check: Callable[[], None] | None = None,
        record: Waited | None = None,
    ) -> T:
        """`polling.wait_for` with this client's cap and the server's `Retry-After`."""
        return wait_for(
            fetch,
            done,
            deadline=deadline,
            cap_s=self._poll_cap_s,
            what=what,
            guid=guid,
            started=started,
            expected_s=expected_s,
            progress=progress,
            steps=steps,
            retry_after=lambda: self._http.retry_after_s,
            check=check,
            record=record,
        )

    @staticmethod
    def _job_guid(response: requests.Response, path: str) -> str:
        """The job a 202 names in `Location` (its last path segment)."""
        location = response.headers.get("Location", "")
        guid = location.rstrip("/").rsplit("/", 1)[-1] if "/v3/jobs/" in location else ""
        if not guid:
            raise CfApiError(
                f"Cloud Controller accepted {response.request.method} {path} but named no job",
                status=response.status_code,
                request_id=response.headers.get("X-Vcap-Request-Id", ""),
                path=path,
            )
        return guid

    def _wait_job(
        self, job_guid: str, deadline: float, what: str, *, started: float | None = None
    ) -> Job:
        """Poll a job to COMPLETE; FAILED raises `CfJobFailed`. Job warnings are kept.

        `started`: when the request that created the job was sent. Polls aim at the end
        of a job as long as the last one this client waited for (bind and unbind go to the
        same broker). The resource link of a job disappears with its resource, so the guid
        seen while polling is remembered for the error.
        """
        seen: dict[str, str] = {}

        def fetch() -> Job:
            job = self.get_job(job_guid)
            for warning in job.warnings:
                self._http.add_warning(warning)
            if job.resource_guid:
                seen["resource"] = job.resource_guid
            return job

        job = self._poll(
            fetch,
            lambda j: j.finished,
            deadline=deadline,
            what=what,
            guid=job_guid,
            started=started,
            expected_s=self._job_waited.seconds,
            record=self._job_waited,
        )
        if job.state == "FAILED":
            raise job_failure(
                job, what, binding_guid=seen.get("resource"), redact=self._http.redact
            )
        return job
