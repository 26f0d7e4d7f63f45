"""CC's request-body validations for env vars and metadata (CC `app/messages/validators*`).

Each function raises the 422 CC answers, with its text; all problems of one body are
joined with ", " as CC's `errors.full_messages` are.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .state import Resource
from .web import check_fields, unprocessable

_KEY_NAME = re.compile(r"^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MAX_NAME = 63
_MAX_PREFIX = 253
_MAX_ANNOTATION = 5000


def env_var_changes(body: dict[str, Any]) -> dict[str, str | None]:
    """The `var` of an env-var PATCH, validated."""
    check_fields(body, {"var"})
    var = body.get("var")
    if not isinstance(var, dict):
        raise unprocessable("Var must be an object")
    problems: list[str] = []
    for key, value in var.items():
        if len(key) < 1:
            problems.append("Var key must be a minimum length of 1")
        elif re.match(r"^VCAP_", key, re.IGNORECASE):
            problems.append("Var cannot start with VCAP_")
        elif re.match(r"^VMC_", key, re.IGNORECASE):
            problems.append("Var cannot start with VMC_")
        elif re.match(r"^PORT$", key, re.IGNORECASE):
            problems.append("Var cannot set PORT")
        if value is not None and not isinstance(value, str):
            shown = json.dumps(value) if not isinstance(value, str) else value
            problems.append(
                f"Non-string value in environment variable for key '{key}', value '{shown}'"
            )
    if problems:
        raise unprocessable(", ".join(problems))
    return var


def _key_problem(kind: str, key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if not name:
        return f"Metadata {kind} key error: key cannot be empty string"
    if len(name) > _MAX_NAME:
        return f"Metadata {kind} key error: '{key}' is greater than {_MAX_NAME} characters"
    if not _KEY_NAME.match(name) or (prefix and not _PREFIX.match(prefix)):
        return f"Metadata {kind} key error: '{key}' contains invalid characters"
    if len(prefix) > _MAX_PREFIX:
        return f"Metadata {kind} key error: prefix '{prefix}' is greater than 253 characters"
    return None


def metadata_changes(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(labels, annotations) changes of a `metadata` object, validated."""
    metadata = body.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise unprocessable("Metadata must be an object")
    check_fields(metadata, {"labels", "annotations"})
    problems: list[str] = []
    result: list[dict[str, Any]] = []
    for kind in ("labels", "annotations"):
        changes = metadata.get(kind) or {}
        if not isinstance(changes, dict):
            raise unprocessable(f"Metadata {kind} must be an object")
        for key, value in changes.items():
            problem = _key_problem(kind, key)
            if problem:
                problems.append(problem)
            elif value is not None and not isinstance(value, str):
                problems.append(f"Metadata {kind} value error: '{key}' must be a string")
            elif kind == "annotations" and value is not None and len(value) > _MAX_ANNOTATION:
                problems.append(
                    f"Metadata annotations value error: '{key}' is greater than "
                    f"{_MAX_ANNOTATION} characters"
                )
            elif (
                kind == "labels"
                and value
                and (len(value) > _MAX_NAME or not _KEY_NAME.match(value))
            ):
                problems.append(
                    f"Metadata labels value error: '{value}' contains invalid characters"
                )
        result.append(changes)
    if problems:
        raise unprocessable(", ".join(problems))
    return result[0], result[1]


def apply_metadata(resource: Resource, body: dict[str, Any]) -> None:
    """Merge validated metadata into a resource (null deletes a key)."""
    labels, annotations = metadata_changes(body)
    for target, changes in ((resource.labels, labels), (resource.annotations, annotations)):
        for key, value in changes.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    resource.touch()
