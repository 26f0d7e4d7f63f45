"""CC's request-body validation for app environment variables, with CC's texts.

Sources (cloud_controller_ng): `app/messages/update_environment_variables_message.rb` and
`app/messages/validators.rb` (`EnvironmentVariablesStringValuesValidator`). Every problem
of one body is reported, joined with ", " as CC's `errors.full_messages` are. Metadata
rules live in `metadata.py`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .web import check_fields, unprocessable


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
        elif re.match(r"VCAP_", key, re.IGNORECASE):
            problems.append("Var cannot start with VCAP_")
        elif re.match(r"VMC", key, re.IGNORECASE):  # CC's regex is /\AVMC/i (no underscore)
            problems.append("Var cannot start with VMC_")
        elif re.fullmatch(r"PORT", key, re.IGNORECASE):
            problems.append("Var cannot set PORT")
        elif value is not None and not isinstance(value, str):
            shown = json.dumps(value, separators=(",", ":"))  # Ruby's to_json
            problems.append(
                f"Non-string value in environment variable for key '{key}', value '{shown}'"
            )
    if problems:
        raise unprocessable(", ".join(problems))
    return var
