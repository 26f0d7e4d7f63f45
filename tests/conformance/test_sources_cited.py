"""Every sandbox module that models the platform names the public source it follows.

A rule without a source is a rule from our own reading, which is how the dot-less
annotation prefix got through (issue 8). Modules that are the sandbox's own machinery
(servers, control routes, fault injection, PKI, the probe) model no platform behaviour
and are listed with the reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SANDBOX = Path(__file__).resolve().parents[2] / "src" / "cf_sandbox"
MACHINERY = {
    "__init__.py": "exports only",
    "context.py": "wiring shared by the route modules",
    "control.py": "the sandbox's own /_sandbox routes",
    "faults.py": "fault injection for tests",
    "landscape.py": "starts and stops the servers",
    "memtls.py": "in-memory TLS keys for the sandbox's servers and instances",
    "openbao.py": "runs a real OpenBao, which needs no model",
    "pki.py": "the sandbox's own certificate authorities",
    "probe.py": "measures failed calls",
    "seed.py": "the starting landscape, created directly",
    "fleet_seed.py": "a fleet of apps for the scan, created directly through seed.py",
    "server.py": "HTTPS listeners",
}
# A public repository or document set, named so that a reader can find the file.
_SOURCE = re.compile(
    r"cloud_controller_ng|cloudfoundry/[\w-]+|\bcf CLI\b|\buaa\b|go-log-cache|SAP-docs/|"
    r"capi-release|docs-dev-guide|cf-python-client|RFC \d+"
)
_FILE = re.compile(r"`[\w./-]+\.(rb|go|java|md|erb|yml|py)\b")


def _modules() -> list[Path]:
    return sorted(p for p in SANDBOX.glob("*.py") if p.name not in MACHINERY)


def test_machinery_list_names_existing_modules() -> None:
    assert {p.name for p in SANDBOX.glob("*.py")} >= set(MACHINERY)


@pytest.mark.parametrize("module", _modules(), ids=lambda p: p.name)
def test_module_docstring_cites_a_public_source_and_file(module: Path) -> None:
    doc = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8"))) or ""
    assert _SOURCE.search(doc), f"{module.name}: its docstring names no public source"
    assert _FILE.search(doc), f"{module.name}: its docstring names no source file"
    assert "reference/" not in doc, f"{module.name}: cite the public source, not our notes"
