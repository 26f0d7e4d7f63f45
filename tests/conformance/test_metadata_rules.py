"""CC's metadata rules through `PATCH /v3/apps/:guid`, case for case from CC's own spec.

Sources: cloud_controller_ng `spec/unit/messages/validators/metadata_validator_spec.rb`
(the cases and their expected messages), `app/messages/validators/metadata_validator.rb`,
`app/messages/metadata_validator_helper.rb`, `lib/cloud_controller/domain_decorator.rb`
(DOMAIN_REGEX), `app/controllers/v3/application_controller.rb` (`unprocessable!`: 422
CF-UnprocessableEntity 10008) and `lib/cloud_controller/errors/api_error.rb` (messages
joined with ", ").
"""

from __future__ import annotations

from typing import Any

import pytest
from conformance_kit import Api

# The keys the engine wrote before issue 8: CC refuses every one of them.
OLD_KEYS = (
    "cpi-cert-rotate/lock",
    "cpi-cert-rotate/fingerprint-sha256",
    "cpi-cert-rotate/not-before",
    "cpi-cert-rotate/not-after",
    "cpi-cert-rotate/rotated-at",
    "cpi-cert-rotate/run-id",
)
_LONG_DOMAIN = ".".join(c * 61 for c in "abcde")  # 309 characters, valid labels

pytestmark = pytest.mark.e2e


def _patch(api: Api, metadata: Any) -> Any:
    return api.call("PATCH", f"/v3/apps/{api.ls.app_guid}", json={"metadata": metadata})


def _refused(api: Api, metadata: Any) -> str:
    error = api.error(_patch(api, metadata), 422)
    assert (error["code"], error["title"]) == (10008, "CF-UnprocessableEntity")
    return str(error["detail"])


def _clear(api: Api, annotations: dict[str, str], labels: dict[str, str]) -> None:
    body = {
        "annotations": dict.fromkeys(annotations),
        "labels": dict.fromkeys(labels),
    }
    assert _patch(api, body).status_code == 200


def test_the_old_dotless_lock_key_gets_ccs_exact_422(api: Api) -> None:
    detail = _refused(api, {"annotations": {"cpi-cert-rotate/lock": "run 42"}})
    assert detail == (
        "Metadata annotation key error: prefix 'cpi-cert-rotate' must be in valid dns format"
    )


def test_every_old_key_is_refused_and_nothing_is_stored(api: Api) -> None:
    before = api.ok(api.get(f"/v3/apps/{api.ls.app_guid}"))["metadata"]
    detail = _refused(api, {"annotations": dict.fromkeys(OLD_KEYS, "x")})
    expected = "Metadata annotation key error: prefix 'cpi-cert-rotate' must be in valid dns format"
    assert detail == ", ".join([expected] * len(OLD_KEYS))
    assert api.ok(api.get(f"/v3/apps/{api.ls.app_guid}"))["metadata"] == before


def test_deleting_an_old_key_with_null_passes(api: Api) -> None:
    """metadata_validator.rb checks an annotation key only when its value is present."""
    app = api.ok(_patch(api, {"annotations": {"cpi-cert-rotate/lock": None}}))
    assert "cpi-cert-rotate/lock" not in app["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("onlycom/key4", "prefix 'onlycom' must be in valid dns format"),
        ("-a/key1", "prefix '-a' must be in valid dns format"),
        ("a%a.com/key2", "prefix 'a%a.com' must be in valid dns format"),
        ("a..com/key3", "prefix 'a..com' must be in valid dns format"),
        ("example.com/capi/tests", "key has more than one '/'"),
        ("cloudfoundry.org/key", "prefix 'cloudfoundry.org' is reserved"),
        ("CloudFoundry.org/key", "prefix 'cloudfoundry.org' is reserved"),
        (f"{_LONG_DOMAIN}/key", "prefix 'aaaaaaaa...' is greater than 253 characters"),
        ("potato mashed", "'potato mashed' contains invalid characters"),
        ("-a", "'-a' starts or ends with invalid characters"),
        ("a-", "'a-' starts or ends with invalid characters"),
        ("_a", "'_a' starts or ends with invalid characters"),
        ("b" * 64, "'bbbbbbbb...' is greater than 63 characters"),
        ("", "key cannot be empty string"),
        ("example.com/", "key cannot be empty string"),
    ],
)
def test_label_key_rules(api: Api, key: str, message: str) -> None:
    assert _refused(api, {"labels": {key: "v"}}) == f"Metadata label key error: {message}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mashed!", "'mashed!' contains invalid characters"),
        ("-a", "'-a' starts or ends with invalid characters"),
        ("b" * 64, "'bbbbbbbb...' is greater than 63 characters"),
    ],
)
def test_label_value_rules(api: Api, value: str, message: str) -> None:
    assert _refused(api, {"labels": {"key": value}}) == f"Metadata label value error: {message}"


def test_valid_labels_and_annotations_from_ccs_spec(api: Api) -> None:
    long_key = ("a" * 61) + ".sub-part." + ("b" * 61) + ".com/release"
    labels = {
        "potato": "mashed",
        "p_otato": "mashed",
        "p.otato": "mashed",
        "p-otato": "mashed",
        "empty": "",
        "example.com/potato": "mashed",
        long_key: "stable",
        "capi.ci.cf-app.com/dashboard": "green",
        "a" * 63: "a" * 63,
    }
    annotations = {
        "cpi-cert-rotate.example.com/lock": "x" * 5000,
        "contacts": "Bill tel(1111111) email(bill@fixme)",
        "a" * 63: "b",
    }
    app = api.ok(_patch(api, {"labels": labels, "annotations": annotations}))
    assert app["metadata"] == {"labels": labels, "annotations": annotations}
    _clear(api, annotations, labels)


def test_annotation_value_over_5000_and_key_errors_together(api: Api) -> None:
    detail = _refused(api, {"annotations": {"b" * 64: "v", "key": "a" * 5001}})
    assert detail == (
        "Metadata annotation key error: 'bbbbbbbb...' is greater than 63 characters, "
        "Metadata annotation value error: 'aaaaaaaa...' is greater than 5000 characters"
    )


def test_labels_are_checked_before_annotations(api: Api) -> None:
    detail = _refused(api, {"annotations": {"x/y": "v"}, "labels": {"x/y": "v"}})
    assert detail == (
        "Metadata label key error: prefix 'x' must be in valid dns format, "
        "Metadata annotation key error: prefix 'x' must be in valid dns format"
    )


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (None, "Metadata must be an object"),
        ("x", "Metadata must be an object"),
        ({"labels": "potato"}, "Metadata 'labels' is not an object"),
        ({"annotations": "potato"}, "Metadata 'annotations' is not an object"),
        ({"tags": {}, "other": 1}, "Metadata has unexpected field(s): 'tags' 'other'"),
    ],
)
def test_metadata_shape(api: Api, metadata: Any, message: str) -> None:
    assert _refused(api, metadata) == message


def test_null_deletes_and_empty_string_stays(api: Api) -> None:
    """annotations_update.rb: nil destroys; "" is stored."""
    key = "rotation.example.com/note"
    api.ok(_patch(api, {"annotations": {key: "one"}}))
    assert api.ok(_patch(api, {"annotations": {key: ""}}))["metadata"]["annotations"][key] == ""
    assert key not in api.ok(_patch(api, {"annotations": {key: None}}))["metadata"]["annotations"]


def test_annotation_limit_per_resource(api: Api) -> None:
    """annotations_update.rb with the operator's `max_annotations_per_resource`."""
    api.ls.set_options(max_annotations_per_resource=2)
    try:
        api.ok(_patch(api, {"annotations": {"a": "1", "b": "2"}}))
        error = api.error(_patch(api, {"annotations": {"c": "3"}}), 422)
        assert error == {
            "code": 390023,
            "title": "CF-AnnotationLimitExceeded",
            "detail": "Failed to add 1 annotations because it would exceed maximum of 2",
        }
        api.ok(_patch(api, {"annotations": {"a": "changed"}}))  # not growing: allowed
    finally:
        api.ls.set_options(max_annotations_per_resource=200)
        _clear(api, {"a": "", "b": "", "c": ""}, {})


def test_metadata_is_validated_before_the_app_is_looked_up(api: Api) -> None:
    """apps_controller.rb `update`: the message is checked first (422, not 404)."""
    resp = api.call("PATCH", "/v3/apps/no-such-app", json={"metadata": {"labels": {"-": "v"}}})
    assert api.error(resp, 422)["detail"].startswith("Metadata label key error")
