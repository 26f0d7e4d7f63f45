"""docs/rotation.md backs each reliability promise with a test: those tests must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_promise_names_tests_that_exist() -> None:
    text = (ROOT / "docs" / "rotation.md").read_text(encoding="utf-8")
    section = text.split("## Reliability promises and the tests that back them", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`tests/" in line]
    assert len(rows) >= 10
    for row in rows:
        refs = re.findall(r"`(tests/[^`:]+)::([A-Za-z0-9_]+)`", row)
        assert refs, row
        for path, name in refs:
            tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
            names = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
            assert name in names, f"{path}::{name} named in docs/rotation.md does not exist"
