"""`checkout_kit.checkout_env`: a subprocess imports this checkout's code, from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from checkout_kit import SRC, checkout_env

_WHERE = "import cf_sandbox, cpi_cert_rotate; print(cpi_cert_rotate.__file__, cf_sandbox.__file__)"


def test_a_subprocess_in_another_folder_imports_this_checkouts_src(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WHERE],
        env=checkout_env({"PATH": "/usr/bin:/bin", "PYTHONPATH": "elsewhere"}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    package, sandbox = (Path(p) for p in done.stdout.split())
    assert package == SRC / "cpi_cert_rotate" / "__init__.py"
    assert sandbox == SRC / "cf_sandbox" / "__init__.py"


def test_the_given_pythonpath_is_kept_after_src() -> None:
    env = checkout_env({"PYTHONPATH": "a"}, EXTRA="1")
    assert env["PYTHONPATH"].split(os.pathsep) == [str(SRC), "a"]
    assert env["EXTRA"] == "1"
