"""CC's rules for `metadata` (labels and annotations) in request bodies, with CC's texts.

Sources (cloud_controller_ng): `app/messages/validators/metadata_validator.rb` (what is
checked and in which order), `app/messages/metadata_validator_helper.rb` (the key and
label value rules), `lib/cloud_controller/domain_decorator.rb` (`DOMAIN_REGEX`, which a key
prefix must match: a DNS name with at least one dot, so `cpi-cert-rotate/lock` is refused),
`app/models/helpers/metadata_helpers.rb` (`extract_prefix`), `app/actions/labels_update.rb`
and `annotations_update.rb` (null deletes; the per-resource limits), `errors/v2.yml`
(`LabelLimitExceeded` 390020, `AnnotationLimitExceeded` 390023). Every problem is a
`Metadata ...` message; a request's messages are joined with ", " as CC's
`errors.full_messages` are (`lib/cloud_controller/errors/api_error.rb`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .state import Resource
from .web import ApiError, unprocessable

# metadata_validator_helper.rb: MAX_METADATA_KEY_SIZE, MAX_LABEL_VALUE_SIZE,
# MAX_METADATA_PREFIX_SIZE
MAX_NAME = 63
MAX_LABEL_VALUE = 63
MAX_PREFIX = 253
# metadata_validator.rb: MAX_ANNOTATION_VALUE_SIZE
MAX_ANNOTATION_VALUE = 5000
RESERVED_PREFIX = "cloudfoundry.org"

# domain_decorator.rb DOMAIN_REGEX (/ix, anchored \A..\Z: Ruby's \Z also allows one final "\n").
DOMAIN = re.compile(
    r"\A(?:(?:[a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])\.)+"
    r"(?:[a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])\n?\Z",
    re.IGNORECASE | re.ASCII,
)
# metadata_validator_helper.rb: INVALID_CHAR_REGEX /[^\w\-.]/ (Ruby's \w is ASCII) and
# ALPHANUMERIC_START_END_REGEX /\A(?=[a-zA-Z\d]).*[a-zA-Z\d]\z/ ("." stops at a newline).
_INVALID_CHAR = re.compile(r"[^\w\-.]", re.ASCII)
_ALNUM_START_END = re.compile(r"\A(?=[a-zA-Z\d]).*[a-zA-Z\d]\Z", re.ASCII)


def _blank(text: str) -> bool:
    """Rails' `blank?` for a string: empty or whitespace only."""
    return not text.strip()


def _ruby_to_s(value: Any) -> str:
    """The string CC validates and stores for a scalar JSON value (Ruby's `to_s`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def split_key(key: str) -> tuple[str | None, str]:
    """(prefix, name) as `MetadataHelpers.extract_prefix` (Ruby `split` drops trailing '')."""
    if "/" not in key:
        return None, key
    parts = key.split("/")
    while parts and parts[-1] == "":
        parts.pop()
    if not parts:
        return None, ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def key_error(key: str) -> str | None:
    """`MetadataValidatorHelper#key_error`: the first broken key rule, in CC's order."""
    if _blank(key):
        return "key cannot be empty string"
    if key.count("/") > 1:
        return "key has more than one '/'"
    prefix, name = split_key(key)
    if prefix is not None:
        if not DOMAIN.match(prefix):
            return f"prefix '{prefix}' must be in valid dns format"
        if len(prefix) > MAX_PREFIX:
            return f"prefix '{prefix[:8]}...' is greater than {MAX_PREFIX} characters"
        if prefix.lower() == RESERVED_PREFIX:
            return f"prefix '{RESERVED_PREFIX}' is reserved"
    return _name_error(name, MAX_NAME, empty="key cannot be empty string")


def label_value_error(value: str) -> str | None:
    """`MetadataValidatorHelper#value_error`: empty is fine; else the name rules, 63 chars."""
    if value == "":
        return None
    return _name_error(value, MAX_LABEL_VALUE, empty=None)


def _name_error(text: str, limit: int, *, empty: str | None) -> str | None:
    if empty is not None and _blank(text):
        return empty
    if _INVALID_CHAR.search(text):
        return f"'{text}' contains invalid characters"
    if not _ALNUM_START_END.match(text):
        return f"'{text}' starts or ends with invalid characters"
    if len(text) > limit:
        return f"'{text[:8]}...' is greater than {limit} characters"
    return None


@dataclass(frozen=True)
class MetadataChange:
    """A validated `metadata` object: new values (str) or deletions (None) per kind."""

    requested: bool
    labels: dict[str, str | None]
    annotations: dict[str, str | None]


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _present(value: Any) -> bool:
    """Rails' `present?`: not nil, not false, not a blank string."""
    if value is None or value is False:
        return False
    return not (isinstance(value, str) and _blank(value))


def metadata_problems(metadata: Any) -> list[str]:
    """Every `MetadataValidator#validate` message, in CC's order."""
    if not isinstance(metadata, dict):
        return ["Metadata must be an object"]
    problems: list[str] = []
    unexpected = [k for k in metadata if k not in ("labels", "annotations")]
    if unexpected:
        fields = " ".join(f"'{k}'" for k in unexpected)
        problems.append(f"Metadata has unexpected field(s): {fields}")
    labels, annotations = metadata.get("labels"), metadata.get("annotations")
    if labels:
        if isinstance(labels, dict):
            problems += _label_problems(labels)
        else:
            problems.append("Metadata 'labels' is not an object")
    if annotations:
        if isinstance(annotations, dict):
            problems += _annotation_problems(annotations)
        else:
            problems.append("Metadata 'annotations' is not an object")
    return problems


def _label_problems(labels: dict[str, Any]) -> list[str]:
    """Every label's key, then its value (`validate_labels`)."""
    problems: list[str] = []
    for key, value in labels.items():
        found = key_error(key)
        if found:
            problems.append(f"Metadata label key error: {found}")
        if not _scalar(value):
            problems.append(_NON_SCALAR.format(kind="label", key=key))
            continue
        found = label_value_error(_ruby_to_s(value))
        if found:
            problems.append(f"Metadata label value error: {found}")
    return problems


def _annotation_problems(annotations: dict[str, Any]) -> list[str]:
    """Keys of annotations with a value, then value sizes (`validate_annotations`).

    Only an annotation with a value has its key checked: deleting with null (or setting
    "") passes whatever the key is.
    """
    problems: list[str] = []
    for key, value in annotations.items():
        if not _scalar(value):
            problems.append(_NON_SCALAR.format(kind="annotation", key=key))
            continue
        found = key_error(key) if _present(value) else None
        if found:
            problems.append(f"Metadata annotation key error: {found}")
        if isinstance(value, str) and len(value) > MAX_ANNOTATION_VALUE:
            problems.append(
                f"Metadata annotation value error: '{value[:8]}...' is greater than "
                f"{MAX_ANNOTATION_VALUE} characters"
            )
    return problems


# Not modelled: CC has no validator for object or array values (its database layer decides);
# the sandbox refuses them with its own, labelled text rather than guess CC's answer.
_NON_SCALAR = "Metadata {kind} value error: '{key}' has a non-scalar value (sandbox: not modelled)"


def parse_metadata(body: dict[str, Any]) -> MetadataChange:
    """The body's `metadata`, validated only when the key is present (CC: `requested?`)."""
    if "metadata" not in body:
        return MetadataChange(False, {}, {})
    metadata = body["metadata"]
    problems = metadata_problems(metadata)
    if problems:
        raise unprocessable(", ".join(problems))

    def values(kind: str) -> dict[str, str | None]:
        raw = metadata.get(kind) or {}
        return {k: None if v is None else _ruby_to_s(v) for k, v in raw.items()}

    return MetadataChange(True, values("labels"), values("annotations"))


def _limit_error(name: str, code: int, count: int, limit: int) -> ApiError:
    what = "labels" if name == "LabelLimitExceeded" else "annotations"
    return ApiError(
        422,
        code,
        f"CF-{name}",
        f"Failed to add {count} {what} because it would exceed maximum of {limit}",
    )


def apply_metadata(
    resource: Resource,
    change: MetadataChange,
    *,
    max_labels: int,
    max_annotations: int,
) -> None:
    """Merge a validated change (null deletes) all or nothing, with CC's per-resource limits.

    `labels_update.rb`/`annotations_update.rb`: the limit error fires only when the count
    grew and ends above the limit (a resource already over it may still change values).
    """
    if not change.requested:
        return
    labels = _merged(resource.labels, change.labels)
    if len(labels) > len(resource.labels) and len(labels) > max_labels:
        raise _limit_error("LabelLimitExceeded", 390020, len(change.labels), max_labels)
    annotations = _merged(resource.annotations, change.annotations)
    if len(annotations) > len(resource.annotations) and len(annotations) > max_annotations:
        raise _limit_error(
            "AnnotationLimitExceeded", 390023, len(change.annotations), max_annotations
        )
    resource.labels, resource.annotations = labels, annotations
    resource.touch()


def _merged(current: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
