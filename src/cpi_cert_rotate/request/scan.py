"""Inputs -> `ScanRequest`: the scan action's inputs and `scan`'s flags, checked once.

The scan's fields are the `SCAN` section of `fields` (the login rows are the rotation's),
its rules those of `rules`, its login the rotation's (`build.cf_login`): an adapter hands
over its values keyed by the scan action's input names with its `Dialect`, and gets a
checked request or one `InputError` listing every problem, before any call.

A name absent from the values takes its default; a name given empty does too, except
`chain-env-var`, where empty means "read no env var" (one call per app fewer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from ..fleet.models import Place, ScanRequest
from ..models import CfAuth, RenewBefore
from ..rotation.annotations import check_prefix
from . import rules
from .build import Text, cf_login, check_basics, number
from .certificate import JwtSource
from .fields import SCAN
from .problems import Dialect, Problems

_DEFAULTS = SCAN.defaults


def build_scan(
    values: Mapping[str, str | bytes],
    dialect: Dialect,
    *,
    cf_jwt: JwtSource | None = None,
    mask: Callable[[str], None] = lambda _token: None,
) -> ScanRequest:
    """Check every value and build the scan; raise one `InputError` for all problems.

    `cf_jwt` gives the token of an OIDC login (`cf-oidc`), as for `build.build`."""
    problems = Problems(dialect)
    check_basics(values, problems, SCAN)
    problems.raise_if_any()  # nothing below reads an oversized or undecodable value
    text = Text(values)
    d = dialect

    def given(name: str) -> str:
        return text(name) or _DEFAULTS.get(name, "")

    api = text("cf-api").rstrip("/")
    if not api:
        problems.missing("cf-api")
    auth = cf_login(values, problems, jwt=cf_jwt, mask=mask)
    places = _places(text("scope"), problems)
    offering, plan = given("offering"), given("plan")
    chain_var = text("chain-env-var") if "chain-env-var" in values else _DEFAULTS["chain-env-var"]
    if chain_var:
        problems.check(lambda: rules.env_var_name(chain_var, d.ref("chain-env-var")))
    raw_renew = given("renew-before")
    renew_before = problems.value(
        lambda: RenewBefore.parse(raw_renew, label=d.ref("renew-before")), None
    )
    prefix = text("annotation-prefix") or None
    if prefix is not None:
        problems.check(lambda: check_prefix(prefix, source=d.ref("annotation-prefix")))
    template = given("environment")
    problems.check(lambda: rules.environment_template(template, d.ref("environment")))
    given_text = Text({name: given(name) for name in SCAN.by_name})
    limit = number(
        given_text, "matrix-limit", problems, low=1, high=rules.MATRIX_MAX, unit="entries",
        example="`64`",
    )  # fmt: skip
    fail_within = number(text, "fail-if-expires-within", problems, low=0, high=rules.DAYS_MAX)
    parallel = number(
        given_text, "parallel", problems, low=1, high=rules.SCAN_PARALLEL_MAX, unit="reads",
        example="`4`",
    )  # fmt: skip
    warn_days = (  # a command-line flag only
        number(given_text, "warn-days", problems, low=0, high=rules.DAYS_MAX)
        if d.has("warn-days")
        else int(_DEFAULTS["warn-days"])
    )
    timeout = problems.value(
        lambda: rules.seconds(
            given("timeout"),
            d.ref("timeout"),
            low=1,
            high=rules.SCAN_TIMEOUT_MAX_S,
            fix="Write for example `300` (5 minutes, the default).",
        ),
        None,
    )
    problems.raise_if_any()
    assert isinstance(auth, CfAuth)
    assert renew_before is not None
    assert limit is not None
    assert parallel is not None
    assert warn_days is not None
    assert timeout is not None
    return ScanRequest(
        api_url=api,
        auth=auth,
        places=places,
        offering=offering,
        plan=plan,
        chain_env_var=chain_var,
        renew_before=renew_before,
        warn_days=warn_days,
        annotation_prefix=prefix,
        environment=template,
        parallel=parallel,
        timeout_s=timeout,
        fail_within_days=fail_within,
        matrix_limit=limit,
    )


def _places(text: str, problems: Problems) -> tuple[Place, ...]:
    """`scope`: items separated by blanks, commas or new lines, each `ORG` or `ORG/SPACE`."""
    label = problems.dialect.ref("scope")
    places = []
    for item in text.replace(",", " ").split():
        parsed = problems.value(partial(rules.place, item, label), None)
        if parsed is not None:
            places.append(Place(*parsed))
    return tuple(places)
