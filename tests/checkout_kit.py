"""Subprocesses that run this checkout's code, not whatever the venv's editable install names.

The venv's editable install points at one checkout (the main one); a test in a git
worktree that starts `python -m cpi_cert_rotate`, the `cpi-cert-rotate` script or a script
importing the package would run that checkout's code, and pass or fail for the wrong
branch. `checkout_env` puts this checkout's `src` first on PYTHONPATH, as an absolute path
(the subprocess may run in another folder), which Python searches before site-packages.
A subprocess started with `-E` or `-I` ignores PYTHONPATH: see
`tests/action/runner_kit.py` `run_entrypoint` for that case.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def checkout_env(base: Mapping[str, str] | None = None, /, **extra: str) -> dict[str, str]:
    """`base` (default: this process's environment) and `extra`, with this checkout's `src`
    first on PYTHONPATH; entries `base` had there are kept after it."""
    env = {**(os.environ if base is None else base), **extra}
    kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(SRC)]
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *kept])
    return env
