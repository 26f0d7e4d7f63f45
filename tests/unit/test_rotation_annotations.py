"""The annotation prefix rule, held to Cloud Controller's own cases.

The accepted and refused prefixes are the ones cloud_controller_ng's
`spec/unit/messages/validators/metadata_validator_spec.rb` ("label key prefixes") uses
for `MetadataValidatorHelper#key_error`; keys with a refused prefix get a 422 on write.
"""

from __future__ import annotations

import datetime as dt

import pytest

from cpi_cert_rotate import material
from cpi_cert_rotate.errors import InputError
from cpi_cert_rotate.rotation.annotations import (
    DEFAULT_PREFIX,
    AnnotationKeys,
    check_prefix,
    prefix_problem,
)
from pki_factory import client_pki, utcnow


@pytest.mark.parametrize(
    "prefix",
    [
        "example.com",
        "a" * 61 + ".sub-part." + "b" * 61 + ".com",
        "capi.ci.cf-app.com",
        DEFAULT_PREFIX,
        "Rotation.Example.COM",  # CC's DOMAIN_REGEX is case-insensitive
    ],
)
def test_prefixes_cloud_controller_accepts(prefix: str) -> None:
    assert prefix_problem(prefix) is None
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        ("cpi-cert-rotate", "at least one dot"),  # the keys every earlier version wrote
        ("onlycom", "at least one dot"),
        ("-a", "at least one dot"),
        ("a%a.com", "at least one dot"),
        ("a..com", "at least one dot"),
        (".".join(c * 61 for c in "abcde"), "longer than 253"),
        ("cloudfoundry.org", "reserved"),
        ("CloudFoundry.org", "reserved"),
        ("example.com/capi", "'/'"),
        ("", "at least one dot"),
        ("\u212aelvin.example.com", "ASCII"),  # KELVIN SIGN: Python's re.I folds it to k
        ("\u017fub.example.com", "ASCII"),  # LATIN SMALL LETTER LONG S, folds to s
        ("r\u00f6tation.example.com", "ASCII"),
        ("rotation_x.example.com", "ASCII"),
        ("rotation.example.com.", "empty label"),
        ("a" * 64 + ".com", "longer than 63"),
        ("-a.example.com", "starts or ends with `-`"),
    ],
)
def test_prefixes_cloud_controller_refuses(prefix: str, why: str) -> None:
    problem = prefix_problem(prefix)
    assert problem is not None
    assert why in problem
    with pytest.raises(InputError, match="would be refused by Cloud Controller") as raised:
        check_prefix(prefix, source="--annotation-prefix")
    assert raised.value.code == "bad-annotation-prefix"
    assert str(raised.value).startswith("--annotation-prefix ")
    assert DEFAULT_PREFIX in raised.value.fix


def test_keys_stay_within_cloud_controllers_name_limit() -> None:
    """CC refuses a key name over 63 characters or not starting and ending alphanumeric."""
    keys = AnnotationKeys()
    pki = client_pki()
    facts = material.facts(pki.leaf.cert)
    record = keys.record(facts, run_id="gha:o/r/1/1", rotated_at=utcnow())
    assert set(record) == {
        f"{DEFAULT_PREFIX}/{name}"
        for name in (
            "fingerprint-sha256",
            "not-before",
            "not-after",
            "rotated-at",
            "run-id",
        )
    }
    for key in record:
        name = key.split("/", 1)[1]
        assert len(name) <= 63
        assert name[0].isalnum()
        assert name[-1].isalnum()
    assert record[keys.not_after] == facts.not_after.astimezone(dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_a_refused_prefix_cannot_make_keys() -> None:
    with pytest.raises(InputError):
        AnnotationKeys("cpi-cert-rotate")


def test_a_long_prefix_is_shown_shortened() -> None:
    with pytest.raises(InputError) as raised:
        check_prefix(("a" * 60 + ".") * 5, source="--annotation-prefix")
    assert "a" * 41 not in str(raised.value)


def test_a_look_alike_letter_is_shown_as_its_code_point() -> None:
    """`'Kelvin.example.com'` would not say what is wrong with it."""
    with pytest.raises(InputError) as raised:
        check_prefix("\u212aelvin.example.com", source="--annotation-prefix")
    assert "'\\u212aelvin.example.com'" in str(raised.value)
