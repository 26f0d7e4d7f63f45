"""The by-hand rotation of docs/cli.md runs as written, against a fresh sandbox."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _block(heading: str) -> str:
    """The first ```bash block under `heading` in docs/cli.md."""
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split(f"\n{heading}\n", 1)[1]
    return section.split("```bash\n", 1)[1].split("\n```", 1)[0]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the block calls curl")
def test_the_sandbox_rotation_by_hand_rotates(tmp_path: Path) -> None:
    script = "set -euo pipefail\n" + _block("## Try it on the sandbox")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ROTATED: app ntifext in demo-org/dev" in done.stdout
    assert "finish    ok" in done.stdout
    assert not (tmp_path / "sandbox.json").exists()  # the sandbox stopped and cleaned up
    assert not (tmp_path / "minted.json").exists()
