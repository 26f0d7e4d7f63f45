"""Show an Action's stdout the way the GitHub runner would, for the demo.

The runner consumes workflow commands and replaces every masked value with `***`; the
raw stdout contains `::add-mask::` lines that carry key material, so it must never be
printed as it is. This renders it safely: masks applied, commands turned into readable
markers, stop-commands honoured.
"""

from __future__ import annotations

import re

_COMMAND = re.compile(r"^::(?P<name>[a-zA-Z-]+)(?: [^:]*)?::(?P<message>.*)$")
_HEREDOC = re.compile(r"^(?P<name>[^=<]+)<<(?P<delimiter>.+)$")


def _unescape(data: str) -> str:
    return data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def render_runner_log(stdout: str) -> str:
    """The log a person sees in the Actions UI for this stdout."""
    masks: set[str] = set()
    shown: list[str] = []
    stop_token: str | None = None
    for line in stdout.splitlines():
        if stop_token is not None:
            if line == f"::{stop_token}::":
                stop_token = None
            else:
                shown.append(line)
            continue
        match = _COMMAND.match(line)
        if match is None:
            shown.append(line)
            continue
        name, message = match["name"], _unescape(match["message"])
        if name == "add-mask":
            masks.update(part for part in message.split("\n") if part)
        elif name == "stop-commands":
            stop_token = message
        elif name == "group":
            shown.append(f"> {message}")
        elif name in ("warning", "error", "notice"):
            shown.append(f"{name.upper()}: {message}")
        elif name in {"endgroup", "debug"}:
            continue
        else:
            shown.append(line)
    text = "\n".join(shown)
    for secret in sorted(masks, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def parse_outputs(text: str) -> dict[str, str]:
    """Read a `GITHUB_OUTPUT` file (`name<<DELIMITER` blocks and `name=value` lines)."""
    outputs: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        heredoc = _HEREDOC.match(line)
        if heredoc:
            body: list[str] = []
            for inner in lines:
                if inner == heredoc["delimiter"]:
                    break
                body.append(inner)
            outputs[heredoc["name"]] = "\n".join(body)
        elif "=" in line:
            name, _, value = line.partition("=")
            outputs[name] = value
    return outputs
