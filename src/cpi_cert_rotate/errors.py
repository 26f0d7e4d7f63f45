"""The errors every layer raises, and the exit codes the adapters map them to.

`material`, `cf` and `rotation` raise these and never print or exit; only `cli` and
`action` catch them, render `str()` and `hint()`, and exit. No message may contain key
material, passwords or tokens: callers build messages from facts (names, codes,
fingerprints), never from secret inputs.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes shared by the command line and the Action."""

    OK = 0
    """Rotated, or nothing to do (not due, already current, dry run)."""
    FAILED = 1
    """Failed; anything changed was rolled back (or nothing had changed yet)."""
    BAD_INPUT = 2
    """Bad input or invalid certificate material; nothing in Cloud Foundry changed."""
    ROLLBACK_INCOMPLETE = 3
    """Failed and the rollback did not complete; the report says what is where."""


class RotationError(Exception):
    """Base class: `str()` says what happened, `hint()` says what to do (Markdown)."""

    exit_code: ExitCode = ExitCode.FAILED

    def hint(self) -> str:
        """A Markdown fix for a person; the default repeats the message."""
        return str(self)


class InputError(RotationError):
    """Bad input: nothing in Cloud Foundry was changed.

    `code` is a stable identifier (for material problems the problem code, e.g.
    `key-mismatch`) that tests and users can match on. An error that reports several
    problems at once (`invalid-inputs`) holds each in `problems`.
    """

    exit_code = ExitCode.BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid-input",
        fix: str = "",
        problems: tuple[InputError, ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.fix = fix
        self.problems = problems or (self,)

    def hint(self) -> str:
        return f"{self}\n\n{self.fix}" if self.fix else str(self)


class CfApiError(RotationError):
    """Cloud Controller or UAA answered with an error envelope.

    Carries the HTTP status, the CF error `code` and `title` (e.g. 10008,
    `CF-UnprocessableEntity`), the `detail` text and the `X-Vcap-Request-Id` so a person
    can quote it to their platform team; `retry_after_s` is the answer's `Retry-After` in
    seconds (None without one), for a caller that tries again later.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: int | None = None,
        title: str = "",
        detail: str = "",
        request_id: str = "",
        method: str = "",
        path: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.request_id = request_id
        self.method = method
        self.path = path

    def hint(self) -> str:
        tips = {
            401: "Check the CF user, password and origin (`cf-origin`); a technical user must "
            "be allowed the password grant.",
            403: "The user needs the Space Developer role in the target space.",
            404: "Check the org, space, app and service instance names (service instance "
            "names are case-sensitive).",
            429: "The Cloud Controller rate limit was hit; run again later or lower the "
            "number of parallel rotations.",
        }
        tip = tips.get(self.status, "")
        rid = f" (request id `{self.request_id}`)" if self.request_id else ""
        return f"{self}{rid}" + (f"\n\n{tip}" if tip else "")


class LoginRefused(RotationError):
    """UAA, or the identity provider it trusts, refused an OIDC login; nothing changed.

    `code` names the cause (`oidc-wrong-audience`, `oidc-untrusted-issuer`, ...) and `fix`
    what to configure where; the message quotes what the server said (never a token).
    """

    def __init__(
        self, message: str, *, code: str, fix: str = "", status: int = 0, request_id: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.fix = fix
        self.status = status
        self.request_id = request_id

    def hint(self) -> str:
        rid = f" (request id `{self.request_id}`)" if self.request_id else ""
        return f"{self}{rid}" + (f"\n\n{self.fix}" if self.fix else "")


class CfJobFailed(CfApiError):
    """An asynchronous Cloud Controller job ended FAILED (e.g. a broker error 10009).

    `status` is 0 (a job has no HTTP status); `job_guid` names the job and
    `binding_guid` the binding it was about, when Cloud Controller said so.
    """

    def __init__(
        self,
        message: str,
        *,
        job_guid: str = "",
        binding_guid: str | None = None,
        code: int | None = None,
        title: str = "",
        detail: str = "",
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(
            message, status=0, code=code, title=title, detail=detail, method=method, path=path
        )
        self.job_guid = job_guid
        self.binding_guid = binding_guid


class CfTimeout(RotationError, TimeoutError):
    """A Cloud Foundry job, build or deployment did not finish before the run's deadline.

    The operation may still complete later; `resource_guid` names what it was about.
    """

    def __init__(self, message: str, *, resource_guid: str | None = None) -> None:
        super().__init__(message)
        self.resource_guid = resource_guid


class CfUnreachable(RotationError):
    """The Cloud Controller, UAA or the iFlow endpoint could not be reached at all."""

    def hint(self) -> str:
        return (
            f"{self}\n\nCheck the API URL, DNS and proxy settings; for a private CA pass "
            "`cf-ca-cert` (verification is never turned off)."
        )


class VerificationFailed(RotationError):
    """The new certificate did not work against the iFlow endpoint (test before promote)."""


class Cancelled(RotationError):
    """The run was interrupted (SIGINT/SIGTERM) and stopped at a safe point."""
